"""The entries of the customers a CSV import creates, written while the import goes on, on a
connection of their own, from the values the import writes (PostgreSQL).

Why: an import is one transaction, single-threaded, half Python and half waiting on its
database connection, so while it runs one of the machine's cores is mostly idle. Written
after its commit, by tasks, the entries of a 50,000-row import took 2.0-2.5 s more, about a
sixth of the import, before its rows could be found. Written here, while the import checks
its next rows, they cost it 0.3-0.6 s, and its rows are searchable the moment it commits.

How: the import raises CUSTOMERS_INSERTED for each batch of new customers it writes (in its
transaction, crm.reactions); `new_customers_index` hands their values to one thread of this
process, which writes their entries (search.bulk.NEW_CUSTOMERS, the same text as from their
rows) and commits them. These customers cannot be read from their table yet: the import has
not committed them. At the import's end, CUSTOMERS_CHANGED (search.services.customers_index)
waits for this thread (`written_alongside`) and indexes, as before, only what was not
written here: the customers the import updated, and any batch that failed.

The entries are committed before their customers, so:
- until the import commits, nobody can find them (every search starts from the records a
  user may see, search.selectors), and if it rolls back they are orphans that no search
  returns: removed by the next import's end in this process, or by `search_reindex`;
- a full rebuild, which removes the entries of customers it cannot see, waits for every
  import writing here (IMPORT_LOCK, held shared by the import's transaction) before it does.

Only in a transaction of the import's own (its Celery task): inside a caller's transaction
(a test's), which may roll back what the import did, the entries would outlive it.
"""

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor

from django.db import connection, transaction

from customers.models import Customer
from search import bulk
from search.text import BODY_CHARS

log = logging.getLogger(__name__)

# The advisory lock key ("search" in ASCII): held shared by each import's transaction while
# it writes entries alongside, alone by a rebuild's removal of orphans.
IMPORT_LOCK = 0x736561726368

_pending = threading.local()  # .writes: [(customer ids, Future of the ids written)]
_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()
_defaults: dict | None = None


def new_customers_index(*, customers: list[dict], **_event) -> None:
    """CUSTOMERS_INSERTED: a batch of new customers, as written (a value for each column the
    import wrote, by attname; their "id" and "tag_names"), in the import's transaction."""
    if not customers or not _may_write_alongside():
        return  # CUSTOMERS_CHANGED indexes them with the others, after commit
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock_shared(%s)", [IMPORT_LOCK])
    defaults = _column_defaults()
    values = [{**defaults, **customer} for customer in customers]
    ids = [customer["id"] for customer in customers]
    _writes().append((ids, _pool().submit(_write, values)))


def written_alongside(ids: list[int]) -> set[int]:
    """Which of these customers have their entries written alongside their import (waiting
    for what is still being written); those of an earlier import of this thread that rolled
    back are removed."""
    writes = _writes()
    if not writes:
        return set()
    wanted = set(ids)
    written: set[int] = set()
    orphans: list[int] = []
    for batch, future in writes:
        if not wanted.issuperset(batch):  # an import that rolled back: never committed
            orphans.extend(batch)
            continue
        try:
            written.update(future.result())
        except Exception:
            # Written as if nothing had been written here: by CUSTOMERS_CHANGED's tasks.
            log.exception("Writing %s search entries alongside their import failed", len(batch))
    writes.clear()
    if orphans:
        _pool().submit(_orphans_delete, orphans)
    _pool().submit(_connection_close)  # the thread's, until the next import
    return written


def _may_write_alongside() -> bool:
    return (
        bulk.supports("customer")
        and connection.in_atomic_block
        and not connection.savepoint_ids  # the outermost block: a transaction of its own
    )


def _write(customers: list[dict]) -> list[int]:
    with transaction.atomic():
        bulk.new_customers_upsert(customers=customers, body_chars=BODY_CHARS)
    return [customer["id"] for customer in customers]


def _orphans_delete(ids: list[int]) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM search_searchentry e WHERE e.record = 'customer' "
            "AND e.record_id = ANY(%s) "
            "AND NOT EXISTS (SELECT 1 FROM customers_customer c WHERE c.id = e.record_id)",
            [ids],
        )


def _connection_close() -> None:
    connection.close()  # this thread's connection (Django keeps one per thread)


def _writes() -> list[tuple[list[int], Future]]:
    if not hasattr(_pending, "writes"):
        _pending.writes = []
    return _pending.writes


def _pool() -> ThreadPoolExecutor:
    """One thread per process, started when first needed (in a Celery worker's child, after
    the fork): batches are written in order, one at a time, beside the import."""
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="search-alongside")
        return _executor


def _column_defaults() -> dict:
    """What a column the import did not write holds: the model's default."""
    global _defaults
    if _defaults is None:
        _defaults = {
            column: Customer._meta.get_field(column.removesuffix("_id")).get_default()
            for column in bulk.NEW_CUSTOMER_COLUMNS
            if column != "id"
        }
    return _defaults
