"""The entries of the customers a CSV import creates, written while the import goes on, on a
connection of their own, from the values the import writes (PostgreSQL).

Why: an import is one transaction, single-threaded, half Python and half waiting on its
database connection, so while it runs one of the machine's cores is mostly idle. Written
after its commit, by tasks, the entries of a 50,000-row import took 1.9-2.6 s more (15-25 %
of the import) before its rows could be found. Written here, while the import checks its
next rows, they cost it 3-7 % (bench import_50k), and its rows are searchable the moment
it commits.

How: the import raises CUSTOMERS_INSERTED for each batch of new customers it writes (in its
transaction, crm.reactions); `new_customers_index` hands their values to one thread of this
process, which writes their entries (search.bulk.NEW_CUSTOMERS, the same text as from their
rows) and commits them. These customers cannot be read from their table yet: the import has
not committed them. At the import's end, CUSTOMERS_CHANGED (search.services.customers_index)
waits for this thread (`written_alongside`) and indexes, as before, only what was not
written here: the customers the import updated, and any batch that failed.

The entries are committed before their customers, so:
- until the import commits, nobody can find them: every search keeps the entries of the
  records that exist and that the user may see (search.selectors), admins included;
- if it rolls back they are orphans that no search returns, removed at this thread's next
  change to customers (CUSTOMERS_CHANGED), or by `search_reindex` (the worker was killed);
- a full rebuild, which removes the entries of customers it cannot see, waits for every
  import writing here (IMPORT_LOCK, held shared by the import's transaction) before it does.

Only in a transaction of the import's own (its Celery task): inside a caller's transaction
(a test's), which may roll back what the import did, the entries would outlive it.
"""

import functools
import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from django.db import connection, transaction

from customers.models import Customer
from search import bulk
from search.models import orphan_entries
from search.text import BODY_CHARS

log = logging.getLogger(__name__)

# The advisory lock key ("search" in ASCII): held shared by each import's transaction while
# it writes entries alongside, alone by a rebuild's removal of orphans (imports_finished).
IMPORT_LOCK = 0x736561726368
# Batches handed to the thread and not yet written: the import waits for a place beyond
# that, so what it holds in memory stays a few batches whatever the thread's pace.
IN_FLIGHT = 3
# The longest the import waits for the thread (a place, or the last batches at its end);
# past it, those customers are indexed after commit like the others.
WAIT_SECONDS = 60
# lock_timeout of the thread's writes. PostgreSQL cannot see the import waiting for this
# thread: a lock the thread waited for, held by a transaction waiting for the import, would
# be a deadlock it never detects.
LOCK_TIMEOUT = "5s"
POLL_SECONDS = 0.5  # imports_finished's pace


@dataclass(eq=False)  # compared by identity
class Batch:
    ids: list[int]
    written: Future  # of the ids written


_state = threading.local()  # .batches: handed to the thread, kept until their import commits
_places = threading.BoundedSemaphore(IN_FLIGHT)
_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def new_customers_index(*, customers: list[dict], **_event) -> None:
    """CUSTOMERS_INSERTED: a batch of new customers, as written (a value for each column the
    import wrote, by attname; their "id" and "tag_names"), in the import's transaction."""
    if not customers or not _may_write_alongside():
        return  # CUSTOMERS_CHANGED indexes them with the others
    if not _places.acquire(timeout=WAIT_SECONDS):
        return  # the thread is stuck: CUSTOMERS_CHANGED indexes these after commit
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock_shared(%s)", [IMPORT_LOCK])
        # As given: their values are taken on the thread, while this one waits on its
        # connection (the import's rows are not changed after they are written).
        future = _pool().submit(_write, customers)
    except BaseException:
        _places.release()
        raise
    future.add_done_callback(lambda _: _places.release())
    _batches().append(Batch([customer["id"] for customer in customers], future))


def written_alongside(ids: list[int]) -> set[int]:
    """Which of these customers have their entries written alongside their import (waiting
    for what is still being written). The entries of an earlier import of this thread that
    did not commit are removed."""
    batches = _batches()
    if not batches:
        return set()
    wanted = set(ids)
    mine = [batch for batch in batches if wanted.issuperset(batch.ids)]
    orphans = [pk for batch in batches if batch not in mine for pk in batch.ids]
    written: set[int] = set()
    for batch in mine:
        try:
            written.update(batch.written.result(timeout=WAIT_SECONDS))
        except Exception:
            # Indexed as if nothing had been written here: by CUSTOMERS_CHANGED's tasks.
            log.exception("Writing %s search entries alongside their import failed", len(batch.ids))
    # Kept until the import commits: if it rolls back after this (a later reaction, its
    # COMMIT), they are orphans for the next call.
    batches[:] = mine
    transaction.on_commit(lambda: _forget(mine))
    if orphans:
        _pool().submit(_orphans_delete, orphans)
    return written


def imports_finished(*, timeout: float) -> bool:
    """In a transaction: True once no import writes entries alongside (none starts until
    the transaction ends); False if imports still did after `timeout` seconds. It asks
    again and again rather than waiting in the lock's queue: an import asking for its lock
    behind a waiting rebuild, while another import waited for that one (two new customers
    with one email), would be a deadlock."""
    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while True:
            cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [IMPORT_LOCK])
            if cursor.fetchone()[0]:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(POLL_SECONDS)


def _may_write_alongside() -> bool:
    return (
        bulk.supports("customer")
        and connection.in_atomic_block
        and not connection.savepoint_ids  # the outermost block: a transaction of its own
    )


def _write(customers: list[dict]) -> list[int]:
    """On the thread: one batch, committed. A connection per batch (Django keeps one per
    thread; a new one costs a few milliseconds here): none is left open between imports,
    to go stale or hold one of the server's connections."""
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT set_config('lock_timeout', %s, true)", [LOCK_TIMEOUT])
            bulk.new_customers_upsert(
                customers=[_values(customer) for customer in customers], body_chars=BODY_CHARS
            )
        return [customer["id"] for customer in customers]
    finally:
        connection.close()


def _orphans_delete(ids: list[int]) -> None:
    """On the thread: the entries of customers an import wrote and never committed."""
    try:
        orphan_entries("customer", Customer).filter(record_id__in=ids).delete()
    except Exception:  # left for search_reindex; no search shows them meanwhile
        log.exception("Removing %s entries of an import that rolled back failed", len(ids))
    finally:
        connection.close()


def _forget(done: list[Batch]) -> None:
    batches = _batches()
    batches[:] = [batch for batch in batches if batch not in done]


def _batches() -> list[Batch]:
    if not hasattr(_state, "batches"):
        _state.batches = []
    return _state.batches


def _pool() -> ThreadPoolExecutor:
    """One thread per process, started when first needed (in a Celery worker's child, after
    the fork): batches are written in order, one at a time, beside the import."""
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="search-alongside")
        return _executor


def _values(customer: dict) -> dict:
    """What the entries need of a customer as written: a column the import did not write
    holds the model's default."""
    values = {column: customer.get(column, default) for column, default in _defaults().items()}
    values["id"] = customer["id"]
    values["tag_names"] = customer["tag_names"]
    return values


@functools.cache
def _defaults() -> dict:
    return {
        column: Customer._meta.get_field(column.removesuffix("_id")).get_default()
        for column in bulk.NEW_CUSTOMER_COLUMNS
        if column != "id"
    }
