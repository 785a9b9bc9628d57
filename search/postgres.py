"""The PostgreSQL side of the index: extensions, the unaccent wrapper and the text search
configurations (created by migration 0002, checked again by `search_reindex`).

- `crm_unaccent(text)`: unaccent() is only STABLE (it reads a dictionary that could change),
  so it cannot appear in an index expression; this IMMUTABLE wrapper names its dictionary
  explicitly and may. The trigram index (typo fallback) is built on it.
- `crm_simple`: the simple configuration with unaccent before it for words: names, emails,
  phone digits and companies are matched word for word, accents ignored ("Müller" finds
  "Muller" and back).
- `crm_<language>` (SEARCH_LANGUAGE, english by default): the same for prose, with the
  language's stemmer ("proposals" finds "proposal").
"""

import re

from django.conf import settings

SIMPLE = "crm_simple"


def language_configuration() -> str:
    return f"crm_{_language()}"


def _language() -> str:
    language = settings.SEARCH_LANGUAGE.strip().lower()
    if not re.fullmatch(r"[a-z_]{2,40}", language):  # it goes into DDL below
        raise ValueError(f"SEARCH_LANGUAGE must be a text search configuration: {language!r}")
    return language


def install(cursor) -> None:
    """Create what the index needs (idempotent)."""
    cursor.execute("CREATE EXTENSION IF NOT EXISTS unaccent")
    cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    cursor.execute(
        "CREATE OR REPLACE FUNCTION crm_unaccent(text) RETURNS text "
        "LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT "
        "AS $$ SELECT public.unaccent('public.unaccent'::regdictionary, $1) $$"
    )
    configuration_ensure(cursor, SIMPLE, "simple")
    configuration_ensure(cursor, language_configuration(), _language())


def configuration_ensure(cursor, name: str, template: str) -> None:
    cursor.execute("SELECT 1 FROM pg_ts_config WHERE cfgname = %s", [name])
    if cursor.fetchone():
        return
    cursor.execute(f"CREATE TEXT SEARCH CONFIGURATION {name} (COPY = pg_catalog.{template})")
    cursor.execute(
        f"ALTER TEXT SEARCH CONFIGURATION {name} ALTER MAPPING FOR "
        f"hword, hword_part, word WITH public.unaccent, "
        f"{'simple' if template == 'simple' else template + '_stem'}"
    )


# The names alone (weight A of `vector`) have an index of their own: a word that half the
# records have in an email domain or a note is still found at once in the names, which
# `vector` could only tell by reading every one of those records (GIN keeps no weights).
NAMES_VECTOR = "to_tsvector('crm_simple'::regconfig, names)"

GIN_INDEXES = {
    "search_entry_vector_idx": "USING gin (vector)",
    "search_entry_names_idx": f"USING gin ({NAMES_VECTOR}) WHERE chunk = 0",
    "search_entry_names_trgm_idx": "USING gin (crm_unaccent(lower(names)) gin_trgm_ops) "
    "WHERE chunk = 0",
}


def gin_indexes_create() -> None:
    for name in GIN_INDEXES:
        gin_index_create(name)


# What a GIN build collects in memory before it writes it into the index. Less than
# PostgreSQL's 64MB default is faster here: the 100k seed's vector index took 3.2-3.5 s of
# CPU with 4-16MB against 4.3-5.0 s with 64MB (and came out 54 MB instead of 56 MB), the
# sorted keys staying in the processor's cache; the names' indexes do not mind.
GIN_BUILD_MEMORY = "16MB"


def gin_index_create(name: str) -> None:
    """One of GIN_INDEXES, unless it is there."""
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT set_config('maintenance_work_mem', %s, true)", [GIN_BUILD_MEMORY])
        definition = GIN_INDEXES[name]
        cursor.execute(f"CREATE INDEX IF NOT EXISTS {name} ON search_searchentry {definition}")


def gin_indexes_drop() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        for name in GIN_INDEXES:
            cursor.execute(f"DROP INDEX IF EXISTS {name}")
