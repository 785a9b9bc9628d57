"""Keeping the index current: the other apps' services say which records changed
(crm.reactions: CUSTOMERS_CHANGED, RECORDS_CHANGED) and these functions rebuild their entries
in the caller's transaction, so a search never shows what was rolled back and a committed
change is found at once. Deletes need nothing: an entry goes with its record (Django's
delete cascades to it; one left by a raw delete is never shown, and goes at the next refresh
of that record or reindex). `search_reindex` (the management command) rebuilds everything in
batches.

One batch is one read of the records (with their notes, tags and activities prefetched), one
INSERT ... ON CONFLICT UPDATE of their entries, one DELETE of the entries they no longer have
(a document's shorter text, an old version) and, on PostgreSQL, one UPDATE that computes the
weighted tsvectors in the database:

    name (A), email/domain/phone/company/website/tags (B) with `crm_simple`;
    notes and descriptions (C), document text (D) with `crm_<SEARCH_LANGUAGE>`.
"""

import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Prefetch, Q

from campaigns.models import EmailCampaign, EmailTemplate
from crm.bulk import analyze, filter_in
from customers.models import Customer, CustomerNote
from documents.models import Document
from sales.models import Sale, SaleActivity, Task
from search import alongside, bulk, postgres
from search.models import Kind, SearchEntry, orphan_entries
from search.selectors import INDEX_RECOVERING_KEY
from search.text import (
    BODY_CHARS,
    clean,
    email_terms,
    fold,
    join,
    phone_terms,
    tag_field,
    website_terms,
    without_phone_suffixes,
)

log = logging.getLogger(__name__)

BATCH_SIZE = 1000
BULK_BATCH_SIZE = 5000  # search.bulk's INSERT ... SELECT
INLINE_LIMIT = 500  # more changed records than this are indexed after commit, by tasks
TASK_BATCH = 5000
REBUILD_WORKERS = 2  # connections a rebuild writes on at once (the bench machine's cores)
BULK_LOAD_SHARE = 10  # a rebuild builds the GIN indexes at its end when the index holds
# fewer entries than a tenth of the records it indexes
CHUNK_CHARS = 10_000  # a piece of a document's text: its tsvector stays far under 1 MB,
# and ts_headline, which re-reads the piece that matched, stays quick
TITLE_CHARS = 300


def _entry(**fields) -> SearchEntry:
    fields["title"] = clean(fields.get("title"), TITLE_CHARS)
    fields["subtitle"] = clean(fields.get("subtitle"), TITLE_CHARS)
    return SearchEntry(**fields)


# One builder per indexed model: the records of a batch of ids -> their entries. ---------


def _customer_entries(ids: list[int]) -> Iterator[SearchEntry]:
    notes = CustomerNote.objects.only("customer_id", "text").order_by("-created_at")
    customers = Customer.objects.filter(pk__in=ids).prefetch_related(
        "tags", Prefetch("note_entries", queryset=notes)
    )
    for customer in customers:
        tags = [tag.name for tag in customer.tags.all()]
        notes_text = "\n".join(
            [customer.notes, *(note.text for note in customer.note_entries.all())]
        )
        is_lead = customer.lifecycle_stage == Customer.LifecycleStage.LEAD
        yield _entry(
            kind=Kind.LEAD if is_lead else Kind.CUSTOMER,
            customer=customer,
            title=customer.name,
            subtitle=" · ".join(p for p in (customer.company, customer.email) if p),
            names=join(customer.name),
            keys=join(
                email_terms(customer.email),
                phone_terms(customer.phone),
                customer.company,
                website_terms(customer.website),
                customer.job_title,
                tags,
            ),
            body=clean(notes_text, BODY_CHARS),
            owner_id=customer.owner_id,
            stage=customer.lifecycle_stage,
            tags=tag_field(tags),
            activity_at=customer.updated_at,
        )


def _sale_entries(ids: list[int]) -> Iterator[SearchEntry]:
    activities = SaleActivity.objects.only("sale_id", "text").order_by("-occurred_at")
    sales = (
        Sale.objects.filter(pk__in=ids)
        .select_related("customer")
        .prefetch_related(Prefetch("activities", queryset=activities))
    )
    for sale in sales:
        customer = sale.customer
        yield _entry(
            kind=Kind.DEAL,
            sale=sale,
            title=sale.title,
            subtitle=" · ".join(p for p in (customer.name, sale.get_status_display()) if p),
            names=join(sale.title),
            keys=join(customer.name, customer.company, email_terms(customer.email)),
            body=clean("\n".join(a.text for a in sale.activities.all()), BODY_CHARS),
            owner_id=sale.assigned_to_id,
            stage=sale.status.lower(),
            activity_at=sale.last_activity_at or sale.updated_at,
        )


def _document_entries(ids: list[int]) -> Iterator[SearchEntry]:
    """The newest version of each document (what lists show): its title and description,
    then its extracted text in pieces of CHUNK_CHARS, each an entry of its own."""
    documents = (
        Document.objects.filter(pk__in=ids, is_active=True)
        .select_related("customer", "sale", "category")
        .defer("preview_text")
    )
    for document in documents:
        common = {
            "kind": Kind.DOCUMENT,
            "document": document,
            "title": document.title,
            "subtitle": document.original_name,
            "owner_id": document.uploaded_by_id,
            "activity_at": document.uploaded_at,
        }
        yield _entry(
            **common,
            names=join(document.title),
            keys=join(
                document.original_name,
                document.category.name if document.category else "",
                document.customer.name if document.customer else "",
                document.sale.title if document.sale else "",
            ),
            body=clean(document.description, BODY_CHARS),
            stage=document.document_type,
        )
        yield from (
            _entry(**common, chunk=number, body=piece)
            for number, piece in enumerate(_pieces(clean(document.extracted_text)), start=1)
        )


def _pieces(text: str) -> Iterator[str]:
    """Consecutive pieces of about CHUNK_CHARS, cut at a space where there is one."""
    start = 0
    while start < len(text):
        end = start + CHUNK_CHARS
        if end < len(text):
            space = text.rfind(" ", start + CHUNK_CHARS // 2, end)
            end = space if space > 0 else end
        piece = text[start:end].strip()
        if piece:
            yield piece
        start = end


def _task_entries(ids: list[int]) -> Iterator[SearchEntry]:
    tasks = Task.objects.filter(pk__in=ids).select_related("sale", "customer")
    for task in tasks:
        yield _entry(
            kind=Kind.TASK,
            task=task,
            title=task.title,
            subtitle=" · ".join(
                p
                for p in (
                    task.sale.title if task.sale else "",
                    task.customer.name if task.customer else "",
                )
                if p
            ),
            names=join(task.title),
            keys=join(
                task.customer.name if task.customer else "", task.sale.title if task.sale else ""
            ),
            body=clean(task.description, BODY_CHARS),
            owner_id=task.assigned_to_id,
            stage="done" if task.completed_at else "open",
            activity_at=task.completed_at or task.due_at,
        )


def _template_entries(ids: list[int]) -> Iterator[SearchEntry]:
    for template in EmailTemplate.objects.filter(pk__in=ids):
        yield _entry(
            kind=Kind.TEMPLATE,
            template=template,
            title=template.name,
            subtitle=template.subject,
            names=join(template.name),
            keys=join(template.subject, template.get_category_display()),
            body=clean(template.text_body, BODY_CHARS),
            owner_id=template.created_by_id,
            stage=template.category,
            activity_at=template.updated_at,
        )


def _campaign_entries(ids: list[int]) -> Iterator[SearchEntry]:
    for campaign in EmailCampaign.objects.filter(pk__in=ids).select_related("template"):
        yield _entry(
            kind=Kind.CAMPAIGN,
            campaign=campaign,
            title=campaign.name,
            subtitle=" · ".join(
                (campaign.subject or campaign.template.subject, campaign.get_status_display())
            ),
            names=join(campaign.name),
            keys=join(campaign.subject or campaign.template.subject, campaign.template.name),
            owner_id=campaign.created_by_id,
            stage=campaign.status,
            activity_at=campaign.updated_at,
        )


@dataclass(frozen=True)
class Indexed:
    field: str  # SearchEntry's foreign key
    model: type
    entries: Callable[[list[int]], Iterable[SearchEntry]]


INDEXED = {
    "customer": Indexed("customer", Customer, _customer_entries),
    "sale": Indexed("sale", Sale, _sale_entries),
    "document": Indexed("document", Document, _document_entries),
    "task": Indexed("task", Task, _task_entries),
    "template": Indexed("template", EmailTemplate, _template_entries),
    "campaign": Indexed("campaign", EmailCampaign, _campaign_entries),
}
_WRITTEN = ["kind", "title", "subtitle", "names", "keys", "body", "owner", "stage", "tags",
            "activity_at", "plain"]  # fmt: skip


# Writing ---------------------------------------------------------------------------------


@transaction.atomic
def search_entries_refresh(*, model: str, ids: Iterable[int]) -> int:
    """Rebuild the entries of these records of `model` (a key of INDEXED); returns how many
    entries were written. Records that are gone (or a document's old versions) lose theirs.
    On PostgreSQL customers, deals and tasks are built in SQL (search.bulk), the rest here."""
    indexed = INDEXED[model]
    ids = sorted({int(pk) for pk in ids if pk is not None})
    written = 0
    in_sql = bulk.supports(model)
    size = BULK_BATCH_SIZE if in_sql else BATCH_SIZE
    for start in range(0, len(ids), size):
        batch = ids[start : start + size]
        if in_sql:
            written += bulk.entries_upsert(model=model, ids=batch, body_chars=BODY_CHARS)
        else:
            written += _write(indexed.field, batch, list(indexed.entries(batch)))
    return written


def _write(field: str, ids: list[int], entries: list[SearchEntry]) -> int:
    postgresql = connection.vendor == "postgresql"
    if not postgresql:
        for entry in entries:
            keys = without_phone_suffixes(entry.keys)
            entry.plain = fold(" ".join((entry.names, keys, entry.body, entry.tags)))
    if entries:
        for entry in entries:
            entry.record, entry.record_id = field, getattr(entry, f"{field}_id")
        SearchEntry.objects.bulk_create(
            entries,
            update_conflicts=True,
            unique_fields=["record", "record_id", "chunk"],
            update_fields=_WRITTEN,
        )
    # What the records no longer have: a document's pieces past its new end, old versions.
    last_piece: dict[int, int] = dict.fromkeys(ids, -1)  # -1: no entry at all any more
    for entry in entries:
        last_piece[entry.record_id] = max(last_piece[entry.record_id], entry.chunk)
    by_last: dict[int, list[int]] = {}
    for record_id, last in last_piece.items():
        by_last.setdefault(last, []).append(record_id)
    stale = Q(*(Q(record_id__in=i, chunk__gt=last) for last, i in by_last.items()), _connector=Q.OR)
    if by_last:
        SearchEntry.objects.filter(stale, record=field).delete()
    if postgresql and entries:
        entry_ids = [entry.pk for entry in entries]
        _vectorize(entry_ids)
        with connection.cursor() as cursor:
            cursor.execute(
                postgres.WORDS_INSERT.format(
                    entries="SELECT names FROM search_searchentry WHERE id = ANY(%s) AND chunk = 0"
                ),
                [entry_ids],
            )
    return len(entries)


def _vectorize(entry_ids: list[int]) -> None:
    """The weighted tsvector of each entry, computed where the configurations live; the
    `keys` it is made of are not kept (search.models)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE search_searchentry SET vector = "
            "setweight(to_tsvector(%s::regconfig, names), 'A') "
            "|| setweight(to_tsvector(%s::regconfig, keys || ' ' || tags), 'B') "
            "|| setweight(to_tsvector(%s::regconfig, body), "
            "CASE WHEN chunk = 0 THEN 'C' ELSE 'D' END::\"char\"), keys = '' "
            "WHERE id = ANY(%s)",
            [postgres.SIMPLE, postgres.SIMPLE, postgres.language_configuration(), entry_ids],
        )


# What the other apps' changes call (crm.reactions) ----------------------------------------


def customers_index(*, customer_ids: list[int], **_event) -> None:
    """CUSTOMERS_CHANGED: the customers, and their deals (which show the customer's name).
    Many customers (those an import updates) are indexed after commit, each task finding its
    customers' deals itself: the import does not wait for their deals to be looked up. Those
    an import creates have their entries already (search.alongside)."""
    ids = list(customer_ids)
    if written := alongside.written_alongside(ids):
        ids = [pk for pk in ids if pk not in written]
    if not ids:
        return
    if len(ids) > INLINE_LIMIT:
        from search.tasks import index_customers

        _after_commit(index_customers, ids)
        return
    search_entries_refresh(model="customer", ids=ids)
    records_index(model="sale", ids=_deal_ids(ids))


@transaction.atomic
def customers_entries_refresh(*, ids: Iterable[int]) -> int:
    """Rebuild the entries of these customers and of their deals; how many were written."""
    ids = list(ids)
    written = search_entries_refresh(model="customer", ids=ids)
    return written + search_entries_refresh(model="sale", ids=_deal_ids(ids))


def _deal_ids(customer_ids: list[int]) -> list[int]:
    deals = filter_in(Sale.objects.all(), "customer", customer_ids)
    return list(deals.values_list("pk", flat=True))


def records_index(*, model: str, ids: list[int]) -> None:
    """RECORDS_CHANGED: any indexed model's records. A change made by a person (a few
    records) is indexed in the caller's transaction: found the moment it is saved. A bulk
    change (a bulk reassignment, the customers a CSV import updates: more than INLINE_LIMIT
    records) is indexed right after it commits, by tasks of TASK_BATCH records, so that it
    does not take twice as long; its records become searchable a few seconds later. (The
    customers an import creates are indexed while it runs: search.alongside.)"""
    ids = list(ids)
    if len(ids) <= INLINE_LIMIT:
        search_entries_refresh(model=model, ids=ids)
        return
    from search.tasks import index_records

    _after_commit(index_records, ids, model)


def _after_commit(task, ids: list[int], *arguments) -> None:
    """`task.delay(*arguments, batch)` for each TASK_BATCH of the ids, once committed."""
    for start in range(0, len(ids), TASK_BATCH):
        batch = ids[start : start + TASK_BATCH]
        transaction.on_commit(lambda batch=batch: task.delay(*arguments, batch))


def search_index_rebuild(
    *, models: Iterable[str] | None = None, progress=None, workers: int = REBUILD_WORKERS
) -> int:
    """Every record of every indexed model (the reindex command, the demo seed): batches of
    BULK_BATCH_SIZE (BATCH_SIZE for the models built in Python), each in its own
    transaction, on `workers` connections at once on PostgreSQL; `progress(done, total)` is
    told after each."""
    postgresql = connection.vendor == "postgresql"
    if postgresql:
        # One transaction: a search meanwhile never finds a function dropped, not yet made.
        with transaction.atomic(), connection.cursor() as cursor:
            postgres.install(cursor)
    chosen = list(models or INDEXED)
    every_model = set(chosen) == set(INDEXED)
    total = sum(INDEXED[name].model.objects.count() for name in chosen)
    # Not inside a caller's transaction (a test's): other connections would not see its
    # records, and its pending foreign-key checks forbid CREATE INDEX.
    on_own = postgresql and not connection.in_atomic_block
    workers = workers if on_own else 1
    # From an (almost) empty index, as after the demo seed, whose own services have indexed
    # its few campaigns and templates, the GIN indexes are built once at the end: several
    # times faster than updating them entry by entry, and a search meanwhile (correct, by a
    # scan) finds next to nothing now anyway.
    if on_own and SearchEntry.objects.count() * BULK_LOAD_SHARE < total:
        postgres.gin_indexes_drop()
    counted = {"done": 0, "written": 0}
    lock = threading.Lock()

    def refresh(batch: tuple[str, list[int]]) -> None:
        name, ids = batch
        written = search_entries_refresh(model=name, ids=ids)
        with lock:
            counted["done"] += len(ids)
            counted["written"] += written
            if progress:
                progress(counted["done"], total)

    try:
        if workers > 1:
            bulk.on_threads(_rebuild_batches(chosen), refresh, workers=workers)
        else:
            for batch in _rebuild_batches(chosen):
                refresh(batch)
    finally:
        if on_own:
            # IF NOT EXISTS: nothing to do when they are there; back when they were dropped
            # above, even if the rebuild failed. Each on a connection of its own.
            bulk.on_threads(postgres.GIN_INDEXES, postgres.gin_index_create, workers=workers)
    for name in chosen:
        _orphans_delete(name)
    if postgresql and every_model:
        with connection.cursor() as cursor:
            cursor.execute(postgres.WORDS_PRUNE)
            cursor.execute(postgres.INTACT_MARK)
    if on_own:
        # The search chooses how to read a word from the planner's statistics (pg_stats,
        # search.frequencies); after a rebuild they would describe the old index.
        analyze(SearchEntry)
    return counted["written"]


RECOVERY_SECONDS = 30 * 60  # what a rebuild may take before another worker may start one
IMPORTS_WAIT_SECONDS = 10 * 60  # a rebuild's wait for the imports writing entries alongside


def search_index_recover() -> bool:
    """Rebuild the index when a crash of PostgreSQL emptied it. Its table is unlogged
    (search.models), and so is the one-row table saying it is intact (postgres.INTACT_TABLE):
    a restart after a crash empties both, as does a physical backup restored. A full rebuild
    writes the row again once it has succeeded, so one that failed half-way is tried again.
    Run by beat every five minutes (crm.settings); True when it rebuilt. Meanwhile
    search.selectors.index_recovering() says so, for the search page to tell its users."""
    if connection.vendor != "postgresql" or postgres.index_intact():
        return False
    if not cache.add(INDEX_RECOVERING_KEY, True, timeout=RECOVERY_SECONDS):
        return False  # another worker is rebuilding it
    try:
        search_index_rebuild()
    finally:
        cache.delete(INDEX_RECOVERING_KEY)
    return True


def _orphans_delete(model: str) -> None:
    """The entries of `model` whose record is gone without Django's delete cascade (raw SQL,
    or deleted while a task indexed it: the entries have no constraint in the database)."""
    with transaction.atomic():
        # Not the entries of the customers an import is writing (search.alongside):
        # committed before them, they look like orphans until it commits.
        if (
            model == "customer"
            and bulk.supports(model)
            and not alongside.imports_finished(timeout=IMPORTS_WAIT_SECONDS)
        ):
            log.warning("Orphan customer entries kept: imports were still writing entries")
            return
        orphan_entries(model, INDEXED[model].model).delete()


def _rebuild_batches(models: list[str]) -> Iterator[tuple[str, list[int]]]:
    """(model, ids) for every record of these models, in key order. Entries are rewritten in
    place (no empty index while it runs); those of deleted records went with them (or go
    after the rebuild: _orphans_delete), those of
    a document's old versions go with its batch."""
    for name in models:
        indexed = INDEXED[name]
        size = BULK_BATCH_SIZE if bulk.supports(name) else BATCH_SIZE
        last = 0
        while ids := list(
            indexed.model.objects.filter(pk__gt=last)
            .order_by("pk")
            .values_list("pk", flat=True)[:size]
        ):
            yield name, ids
            last = ids[-1]
