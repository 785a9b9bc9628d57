"""The index follows every change made through the services, in the same transaction."""

import io

import pytest
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.db import OperationalError, connection, transaction

from campaigns.services import template_save
from customers import csv_import
from customers.models import Customer, CustomerNote
from customers.services import customer_create, customer_delete, customer_note_add, customer_update
from documents import services as document_services
from sales.models import Sale
from sales.services import sale_activity_add, sale_change_stage, sale_create, task_create
from search import bulk, postgres, services, tasks
from search.models import NameWord, SearchEntry
from search.selectors import INDEX_RECOVERING_KEY
from tests.factories import (
    CustomerFactory,
    EmailTemplateFactory,
    MarketingDocumentFactory,
    SaleActivityFactory,
    SaleFactory,
    TaskFactory,
)
from tests.search.conftest import find, found

pytestmark = pytest.mark.django_db


def _customer(rep, **data):
    data = {"name": "Nadia Ferreira", "email": "nadia@ferreira.example", **data}
    return customer_create(actor=rep, data=data)


def test_create_edit_note_and_delete(rep, teams):
    customer = _customer(rep)
    assert found(rep, "ferreira") == [("lead", customer.pk)]
    customer_update(actor=rep, customer=customer, data={"name": "Nadia Costa"})
    assert found(rep, "ferreira") == [("lead", customer.pk)]  # still the email's words
    assert found(rep, "costa") == [("lead", customer.pk)]
    assert found(rep, "nadia type:lead")
    customer_update(actor=rep, customer=customer, data={"lifecycle_stage": "customer"})
    assert found(rep, "costa") == [("customer", customer.pk)]
    customer_note_add(actor=rep, customer=customer, text="Prefers calls after lunch")
    assert found(rep, "lunch") == [("customer", customer.pk)]
    customer_delete(actor=rep, customer=customer)
    assert found(rep, "costa") == []
    assert not SearchEntry.objects.exists()


def test_a_rolled_back_change_leaves_nothing(rep, teams):
    with pytest.raises(RuntimeError), transaction.atomic():
        _customer(rep)
        raise RuntimeError
    assert found(rep, "ferreira") == []


def test_renaming_a_customer_renames_it_in_its_deals(rep, teams):
    customer = _customer(rep)
    sale = sale_create(actor=rep, data={"title": "Fleet deal", "customer": customer})
    customer_update(actor=rep, customer=customer, data={"name": "Nadia Quintanilha"})
    assert ("deal", sale.pk) in found(rep, "quintanilha type:deal")


def test_deals_stage_and_activities(rep, teams):
    customer = _customer(rep)
    sale = sale_create(actor=rep, data={"title": "Solar roof", "customer": customer})
    assert found(rep, "solar stage:new") == [("deal", sale.pk)]
    sale_change_stage(actor=rep, sale=sale, to_status=Sale.Status.PROPOSAL)
    assert found(rep, "solar stage:proposal") == [("deal", sale.pk)]
    assert found(rep, "solar stage:new") == []
    sale_activity_add(actor=rep, sale=sale, kind="call", text="Asked about inverter warranty")
    assert found(rep, "inverter") == [("deal", sale.pk)]


def test_tasks_and_templates(rep, manager, teams):
    customer = _customer(rep)
    task = task_create(actor=rep, data={"title": "Send the brochure", "customer": customer,
                                        "due_at": customer.created_at})  # fmt: skip
    assert ("task", task.pk) in found(rep, "brochure")
    template = template_save(
        actor=manager,
        data={"name": "Brochure follow-up", "category": "other", "subject": "Our brochure",
              "html_body": "<p>Hi</p>", "text_body": "Hi"},
    )  # fmt: skip
    assert ("template", template.pk) in found(manager, "brochure")
    assert ("template", template.pk) not in found(rep, "brochure")


def test_an_import_is_searchable(rep, teams):
    text = "Full Name,E-mail,Company\nOrla Byrne,orla@byrne.example,Byrne Shipping\n"
    customer_import = csv_import.customer_import_upload(
        actor=rep, uploaded_file=SimpleUploadedFile("p.csv", text.encode()), duplicate_mode="skip"
    )
    csv_import.customer_import_run(
        actor=rep,
        customer_import=customer_import,
        mapping=customer_import.column_mapping,
        duplicate_mode="skip",
    )
    assert [kind for kind, _ in found(rep, "byrne shipping")] == ["lead"]


def test_uploads_processing_and_new_versions(rep, teams, django_capture_on_commit_callbacks):
    customer = CustomerFactory(owner=rep)
    with django_capture_on_commit_callbacks(execute=True):
        document = document_services.document_upload(
            actor=rep,
            upload=SimpleUploadedFile("terms.txt", b"The indemnity clause is capped."),
            customer=customer,
        )
    assert found(rep, "indemnity") == [("document", document.pk)]  # extracted, then indexed
    with django_capture_on_commit_callbacks(execute=True):
        new = document_services.document_upload_version(
            actor=rep, document=document, upload=SimpleUploadedFile("terms.txt", b"Liability.")
        )
    assert found(rep, "terms") == [("document", new.pk)]  # the newest version only
    assert found(rep, "indemnity") == []
    assert found(rep, "liability") == [("document", new.pk)]


def test_reindex_rebuilds_everything_with_a_progress_bar(rep, teams):
    customers = [CustomerFactory(owner=rep, name=f"Reindexed {i}") for i in range(3)]
    assert found(rep, "reindexed") == []  # made by factories: not indexed yet
    out = io.StringIO()
    call_command("search_reindex", stdout=out)
    assert find(rep, "reindexed").total == len(customers)
    assert "[##############################] 3/3 records" in out.getvalue()
    call_command("search_reindex", "--only", "customer", stdout=io.StringIO())  # idempotent
    assert SearchEntry.objects.count() == 3


def test_an_entry_whose_record_is_gone_is_never_shown_and_a_reindex_removes_it(rep, teams):
    """No constraint in the database ties an entry to its record (search.models): a record
    deleted by raw SQL leaves its entry, which no search returns nor counts."""
    gone, kept = _customer(rep), CustomerFactory(owner=rep, name="Ferreira Kept")
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM customers_customer WHERE id = %s", [gone.pk])
    assert SearchEntry.objects.filter(record="customer", record_id=gone.pk).exists()
    assert find(rep, "ferreira").total == 0
    call_command("search_reindex", stdout=io.StringIO())
    assert found(rep, "ferreira") == [("lead", kept.pk)]
    assert not SearchEntry.objects.filter(record="customer", record_id=gone.pk).exists()


def _gin_indexes() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'search_searchentry'")
        return {row[0] for row in cursor.fetchall()} & set(postgres.GIN_INDEXES)


def _entries() -> dict:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT record, record_id, chunk, kind, title, subtitle, names, keys, body, "
            "owner_id, stage, tags, activity_at, vector::text FROM search_searchentry"
        )
        return {row[:3]: row[3:] for row in cursor.fetchall()}


@pytest.mark.django_db(transaction=True)
def test_reindex_of_an_empty_index_builds_the_gin_indexes_at_the_end(rep, teams):
    CustomerFactory(owner=rep, name="Bulk Loaded")
    call_command("search_reindex", stdout=io.StringIO())
    assert _gin_indexes() == set(postgres.GIN_INDEXES)
    assert found(rep, "bulk loaded")


@pytest.mark.django_db(transaction=True)
def test_an_almost_empty_index_is_bulk_loaded_too(rep, manager, teams):
    """The demo seed's services index its campaign and templates before the seed builds the
    rest: a few entries still count as empty."""
    template_save(actor=manager, data={"name": "Kept", "subject": "Hi", "text_body": "Hello"})
    assert SearchEntry.objects.count() == 1
    CustomerFactory.create_batch(services.BULK_LOAD_SHARE, owner=rep, name="Almost Empty")
    seen = []
    services.search_index_rebuild(progress=lambda done, total: seen.append(_gin_indexes()))
    assert seen and all(indexes == set() for indexes in seen)  # dropped while it wrote
    assert _gin_indexes() == set(postgres.GIN_INDEXES)
    assert find(rep, "almost empty").total == services.BULK_LOAD_SHARE


@pytest.mark.django_db(transaction=True)
def test_a_full_index_is_rebuilt_in_place_and_lost_gin_indexes_come_back(rep, teams):
    customers = CustomerFactory.create_batch(3, owner=rep, name="In Place")
    services.records_index(model="customer", ids=[c.pk for c in customers])
    seen = []
    services.search_index_rebuild(progress=lambda done, total: seen.append(_gin_indexes()))
    assert seen and all(indexes == set(postgres.GIN_INDEXES) for indexes in seen)
    # A rebuild stopped after it had dropped them: the next one creates them again.
    postgres.gin_indexes_drop()
    services.search_index_rebuild()
    assert _gin_indexes() == set(postgres.GIN_INDEXES)
    assert find(rep, "in place").total == 3


@pytest.mark.django_db(transaction=True)
def test_two_connections_write_the_entries_one_does(rep, teammate, teams, monkeypatch):
    """Small batches, so that the two threads' batches of every model interleave."""
    for i in range(7):
        customer = CustomerFactory(owner=rep, name=f"Parallel {i}", phone=f"+44 20 7946 09{i}5")
        CustomerNote.objects.create(customer=customer, author=rep, text=f"Parallel note {i}")
        sale = SaleFactory(customer=customer, assigned_to=teammate, title=f"Parallel deal {i}")
        SaleActivityFactory(sale=sale, text="Discussed the parallel rollout")
        TaskFactory(assigned_to=rep, title=f"Parallel task {i}", sale=sale, customer=customer)
    # Documents and templates are built in Python: a long text in several pieces.
    words = " ".join(f"parallel{i}" for i in range(3 * services.CHUNK_CHARS // 9))
    for i in range(3):
        MarketingDocumentFactory(uploaded_by=rep, title=f"Parallel doc {i}", extracted_text=words)
    for i in range(3):
        EmailTemplateFactory(created_by=teammate, name=f"Parallel template {i}")
    monkeypatch.setattr(services, "BULK_BATCH_SIZE", 2)
    monkeypatch.setattr(services, "BATCH_SIZE", 2)
    services.search_index_rebuild(workers=1)
    one = _entries()
    assert {record for record, _, chunk in one if chunk > 1} == {"document"}
    SearchEntry.objects.all().delete()
    assert services.search_index_rebuild(workers=2) == len(one)
    assert _entries() == one
    assert find(rep, "parallel").total == 24


def test_reindex_needs_a_worker():
    with pytest.raises(CommandError, match="at least 1"):
        call_command("search_reindex", "--workers", "0", stdout=io.StringIO())


def test_on_threads_stops_at_the_first_error_and_raises_it():
    done = []

    def work(job):
        if job == 3:
            raise ValueError("job 3")
        done.append(job)

    with pytest.raises(ValueError, match="job 3"):
        bulk.on_threads(range(1000), work, workers=2)
    assert 3 not in done and len(done) < 100


def test_a_bulk_change_is_indexed_right_after_commit(
    rep, teams, settings, django_capture_on_commit_callbacks
):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    customers = [CustomerFactory(owner=rep, name=f"Bulky {i}") for i in range(3)]
    settings_limit = services.INLINE_LIMIT
    services.INLINE_LIMIT = 2
    try:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            services.records_index(model="customer", ids=[c.pk for c in customers])
        assert found(rep, "bulky") == []  # not yet: after commit
        for callback in callbacks:
            callback()
    finally:
        services.INLINE_LIMIT = settings_limit
    assert find(rep, "bulky").total == 3


def test_many_changed_customers_and_their_deals_are_indexed_after_commit(
    rep, teams, settings, monkeypatch, django_capture_on_commit_callbacks
):
    """An import's customers (crm.reactions CUSTOMERS_CHANGED): the tasks after commit find
    the customers' deals themselves; the deals show the customer's new name."""
    settings.CELERY_TASK_ALWAYS_EAGER = True
    monkeypatch.setattr(services, "INLINE_LIMIT", 2)
    monkeypatch.setattr(services, "TASK_BATCH", 2)
    customers = [
        CustomerFactory(owner=rep, name=f"Bulky {i}", lifecycle_stage="customer") for i in range(3)
    ]
    deal = SaleFactory(customer=customers[2], assigned_to=rep, title="Renewal")
    Customer.objects.filter(pk=customers[2].pk).update(name="Quokka Ltd")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.customers_index(customer_ids=[c.pk for c in customers])
    assert len(callbacks) == 2  # tasks of TASK_BATCH customers
    assert found(rep, "bulky") == []  # not yet: after commit
    for callback in callbacks:
        callback()
    assert find(rep, "bulky").total == 2
    assert set(found(rep, "quokka")) == {("customer", customers[2].pk), ("deal", deal.pk)}


@pytest.mark.django_db(transaction=True)
def test_a_rebuild_leaves_fresh_statistics_for_the_search_to_choose_its_reads(rep):
    """search.frequencies reads pg_stats; a rebuilt index must not be described by none."""
    CustomerFactory.create_batch(3, owner=rep, notes="renewal pricing discount")

    def statistics() -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_stats WHERE tablename = 'search_searchentry'")
            return cursor.fetchone()[0]

    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM pg_statistic WHERE starelid = 'search_searchentry'::regclass")
    assert statistics() == 0
    services.search_index_rebuild()
    assert statistics() > 0


@pytest.mark.django_db(transaction=True)
def test_a_full_reindex_forgets_the_words_no_name_has_any_more(rep):
    customer = CustomerFactory(owner=rep, name="Wilhelmina Quorra")
    services.search_index_rebuild()
    Customer.objects.filter(pk=customer.pk).update(name="Wilhelmina Zed")
    services.search_index_rebuild(models=["customer"])
    assert {"quorra", "zed"} <= set(NameWord.objects.values_list("word", flat=True))
    services.search_index_rebuild()
    words = set(NameWord.objects.values_list("word", flat=True))
    assert "zed" in words and "quorra" not in words


# An unlogged index (search.models): emptied by a crash, rebuilt by beat -------------------


def test_the_entries_table_is_unlogged():
    with connection.cursor() as cursor:
        cursor.execute("SELECT relpersistence FROM pg_class WHERE relname = 'search_searchentry'")
        assert cursor.fetchone() == ("u",)


def _crash() -> None:
    """What PostgreSQL does to unlogged tables when it restarts after a crash."""
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE search_searchentry, {postgres.INTACT_TABLE}")


def test_an_index_a_crash_emptied_is_rebuilt_and_the_search_page_says_so_meanwhile(
    rep, rep_client, teams, monkeypatch
):
    customers = [CustomerFactory(owner=rep, name=f"Ottilie Brandvold {i}") for i in range(3)]
    services.search_index_rebuild()
    assert services.search_index_recover() is False  # intact: nothing to do
    _crash()
    # Before beat comes by, someone saves a record: the table is no longer empty.
    newer = _customer(rep, name="Ottilie Newcomer")
    seen_while_rebuilding = []
    rebuild = services.search_index_rebuild

    def observed_rebuild(**kwargs):
        for url in ("/search/", "/search/dropdown/"):  # the page and the header's dropdown
            page = rep_client.get(url, {"q": "ottilie"})
            seen_while_rebuilding.append("being rebuilt" in page.content.decode())
        return rebuild(**kwargs)

    monkeypatch.setattr(services, "search_index_rebuild", observed_rebuild)
    assert services.search_index_recover() is True
    assert seen_while_rebuilding == [True, True]
    assert {pk for _, pk in found(rep, "ottilie")} == {c.pk for c in [*customers, newer]}
    for url in ("/search/", "/search/dropdown/"):
        assert "being rebuilt" not in rep_client.get(url, {"q": "ottilie"}).content.decode()
    assert services.search_index_recover() is False


def test_a_rebuild_that_failed_half_way_is_tried_again(rep, monkeypatch):
    customers = CustomerFactory.create_batch(3, owner=rep, name="Halvard Quist")
    _crash()
    monkeypatch.setattr(services, "BULK_BATCH_SIZE", 1)
    refresh, calls = services.search_entries_refresh, []

    def failing_second(**kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise OperationalError("the worker lost its connection")
        return refresh(**kwargs)

    monkeypatch.setattr(services, "search_entries_refresh", failing_second)
    with pytest.raises(OperationalError):
        services.search_index_recover()
    assert SearchEntry.objects.exists()  # the first batch is in
    assert services.search_index_recover() is True
    assert len(found(rep, "halvard")) == len(customers)


def test_nothing_is_rebuilt_while_intact_or_while_another_worker_rebuilds(rep, monkeypatch):
    monkeypatch.setattr(services, "search_index_rebuild", lambda **_: pytest.fail("rebuilt"))
    CustomerFactory(owner=rep)
    assert services.search_index_recover() is False  # intact (migration 0008)
    _crash()
    cache.set(INDEX_RECOVERING_KEY, True)
    try:
        assert services.search_index_recover() is False
    finally:
        cache.delete(INDEX_RECOVERING_KEY)


def test_beat_checks_the_index_every_few_minutes(settings):
    schedule = settings.CELERY_BEAT_SCHEDULE["search-recover-index"]
    assert schedule["task"] == tasks.recover_index.name
    assert schedule["schedule"] <= 10 * 60
