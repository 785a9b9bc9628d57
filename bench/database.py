"""The bench database: created, dropped and seeded here, never the development one.

The runner points DATABASE_URL at a dedicated PostgreSQL database (crm_bench by default)
before Django starts; these helpers refuse to drop anything whose name lacks "bench".
"""

import io
import time
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote

import psycopg
from django.conf import settings
from django.core.cache import cache
from django.core.management import call_command
from django.db import connection, connections
from psycopg import sql

# The 100k data set: what seed_100k times and what the 100k page scenarios read.
SEED_100K = {"customers": 100_000, "deals": 100_000, "reset": False}


def _database_name() -> str:
    name = settings.DATABASES["default"]["NAME"]
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        raise RuntimeError("The benchmarks run on PostgreSQL; set BENCH_DATABASE_URL to one.")
    if "bench" not in name:
        raise RuntimeError(f"Refusing to drop or create {name!r}: its name must contain 'bench'.")
    return name


def _maintenance_connection() -> psycopg.Connection:
    db = settings.DATABASES["default"]
    return psycopg.connect(
        dbname="postgres",
        user=db.get("USER") or None,
        password=db.get("PASSWORD") or None,
        host=db.get("HOST") or None,
        port=db.get("PORT") or None,
        autocommit=True,
    )


def _exists(name: str) -> bool:
    with _maintenance_connection() as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()


def _migrate() -> None:
    call_command("migrate", interactive=False, verbosity=0)


def recreate_database() -> None:
    """Drop and create the bench database, migrate it and empty the bench cache."""
    name = _database_name()
    connections.close_all()
    ident = sql.Identifier(name)
    with _maintenance_connection() as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(ident))
    _migrate()
    cache.clear()


def ensure_database() -> None:
    """Create the bench database when missing and apply any new migrations."""
    name = _database_name()
    if not _exists(name):
        recreate_database()
    else:
        _migrate()


def seed_demo(**options) -> str:
    """Run seed_demo quietly; its output, for the log."""
    out = io.StringIO()
    call_command("seed_demo", stdout=out, allow_without_debug=True, **options)
    return out.getvalue()


def analyze() -> None:
    """VACUUM ANALYZE, as autovacuum would have done soon after a bulk load in production."""
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")


def checkpoint() -> None:
    """Write out what earlier steps left in the write-ahead log, so that a timed run does
    not pay for a checkpoint they caused (a few seconds, at random, in a 12 s import)."""
    with connection.cursor() as cursor:
        cursor.execute("CHECKPOINT")


def ensure_seeded_100k() -> None:
    """The 100k data set, seeded (untimed) on a fresh database when it is not there yet."""
    from customers.models import Customer

    if _exists(_database_name()):
        _migrate()
        if Customer.objects.count() >= SEED_100K["customers"]:
            return
    print("  bench database has fewer than 100k customers: seeding it (untimed)…", flush=True)
    started = time.perf_counter()
    recreate_database()
    seed_demo(**SEED_100K)
    analyze()
    print(f"  seeded in {time.perf_counter() - started:.1f} s", flush=True)


def database_url(name: str) -> str:
    """A postgres:// URL for the database `name` on the bench's server, with its credentials
    (for processes the bench starts, which read DATABASE_URL)."""
    db = settings.DATABASES["default"]
    credentials = quote(db.get("USER") or "", safe="")
    if db.get("PASSWORD"):
        credentials += ":" + quote(db["PASSWORD"], safe="")
    host = db.get("HOST") or "127.0.0.1"
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{credentials}{'@' if credentials else ''}{host}{port}/{name}"


def clone_database(suffix: str) -> str:
    """A copy of the bench database named `<bench database>_<suffix>` (replacing an older
    copy), for a scenario whose writes must not change the data set the others read; drop it
    with drop_database(). CREATE DATABASE ... TEMPLATE copies the files, so a 100k database
    takes seconds; it needs no one connected to the bench database meanwhile."""
    source = _database_name()
    copy = f"{source}_{suffix}"
    connections.close_all()
    with _maintenance_connection() as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(copy))
        )
        # PostgreSQL 15 logs every copied block to the WAL unless told to copy the files.
        strategy = " STRATEGY FILE_COPY" if conn.info.server_version >= 150000 else ""
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}" + strategy).format(
                sql.Identifier(copy), sql.Identifier(source)
            )
        )
    return copy


def drop_database(name: str) -> None:
    """Drop a database this module made (its name must contain "bench"), connections and all."""
    if "bench" not in name:
        raise RuntimeError(f"Refusing to drop {name!r}: its name must contain 'bench'.")
    with _maintenance_connection() as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@contextmanager
def using_database(name: str) -> Iterator[None]:
    """Run the block on the database `name` (which must contain "bench"): the default
    connection is closed and reopened on it, then switched back; the cache gets a key prefix
    of its own meanwhile, so nothing cached for one data set is read for another."""
    if "bench" not in name:
        raise RuntimeError(f"Refusing to use {name!r}: its name must contain 'bench'.")
    original = settings.DATABASES["default"]["NAME"]
    prefix = cache.key_prefix
    connections.close_all()
    settings.DATABASES["default"]["NAME"] = connection.settings_dict["NAME"] = name
    cache.key_prefix = f"{prefix}{name}:"
    try:
        yield
    finally:
        connections.close_all()
        settings.DATABASES["default"]["NAME"] = connection.settings_dict["NAME"] = original
        cache.key_prefix = prefix
