"""search.alongside: an import's new customers get their entries while it runs, on a
connection of their own, and are searchable the moment it commits."""

import threading
import time
from types import SimpleNamespace
from unittest import mock

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import OperationalError, connection, transaction

from customers import csv_import
from customers.csv_import import writes
from customers.models import Customer, CustomerImport
from search import alongside, bulk, services
from search.models import NameWord, SearchEntry
from tests.factories import CustomerFactory, TagFactory
from tests.search.conftest import found

# The columns of search.bulk.NEW_CUSTOMER_COLUMNS as the import writes them.
EXPORT = (
    "First Name,Last Name,Email,Company Name,Phone Number,Website URL,Job Title,Notes,Tags\n"
    'Zoë,Müller-Ünal,Zoe.Muller+crm@Sub.Example.co.uk,Ünïcode & Sons,"+44 (0)20 7946-0958 '
    'ext. 12",HTTPS://www.Zoe.example:8443/a?b,Head of <b>Things</b>,"Line one\nLine '
    '<script>two</script>","vip;Key Account;VIP"\n'
    "Orla,Byrne,orla@byrne.example,Byrne Shipping,(030) 1234-567,,,,\n"
    "Kim,Keys,kim@keys.example,,007,keys.example,,,renewal\n"
)
COMPARED = ["kind", "customer_id", "title", "subtitle", "names", "keys", "body", "owner_id",
            "stage", "tags", "activity_at"]  # fmt: skip


def _entries(ids: list[int]) -> dict:
    rows = SearchEntry.objects.filter(record="customer", record_id__in=ids)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT record_id, vector::text FROM search_searchentry "
            "WHERE record = 'customer' AND record_id = ANY(%s)",
            [ids],
        )
        vectors = dict(cursor.fetchall())
    return {
        row.record_id: ([getattr(row, f) for f in COMPARED], vectors[row.record_id]) for row in rows
    }


def _queued_import(actor, text: str, mode: str = "skip") -> CustomerImport:
    customer_import = csv_import.customer_import_upload(
        actor=actor,
        uploaded_file=SimpleUploadedFile("export.csv", text.encode()),
        duplicate_mode=mode,
    )
    CustomerImport.objects.filter(pk=customer_import.pk).update(status=CustomerImport.Status.QUEUED)
    return customer_import


def _imported_ids() -> list[int]:
    emails = ("zoe.muller+crm@sub.example.co.uk", "orla@byrne.example", "kim@keys.example")
    return list(Customer.objects.filter(email__in=emails).values_list("pk", flat=True))


def _drained() -> None:
    """What the thread writing alongside was given is done."""
    alongside._pool().submit(lambda: None).result(timeout=60)


@pytest.fixture(autouse=True)
def _alongside_thread_done(monkeypatch):
    """Many rows, as in an import of thousands: what is not written alongside is queued as
    tasks after commit (not indexed in the import's transaction, which would hide it). What
    the thread was given is done before the test database is emptied."""
    monkeypatch.setattr(services, "INLINE_LIMIT", 0)
    yield
    _drained()
    alongside._batches().clear()


@pytest.fixture
def queued_tasks():
    """The search index tasks queued after commit: [(name, arguments)]."""
    from search import tasks

    calls: list[tuple] = []
    with (
        mock.patch("leads.tasks.rescore_leads.delay"),
        mock.patch.object(
            tasks.index_customers, "delay", lambda *a: calls.append(("customers", a))
        ),
        mock.patch.object(tasks.index_records, "delay", lambda *a: calls.append(("records", a))),
    ):
        yield calls


@pytest.mark.django_db(transaction=True)
def test_an_imports_new_customers_are_found_when_it_commits_with_no_index_task(
    rep, teams, queued_tasks
):
    TagFactory(name="VIP")  # the file's "vip" is this tag
    customer_import = _queued_import(rep, EXPORT)
    assert {"name", "email", "company", "phone", "website", "job_title", "notes", "tags"} <= set(
        customer_import.column_mapping
    )
    done = csv_import.customer_import_execute(import_id=customer_import.pk)
    assert (done.status, done.created_count) == ("done", 3)
    assert queued_tasks == []  # nothing left to index after commit: written alongside
    zoe = Customer.objects.get(email__startswith="zoe.muller")
    orla = Customer.objects.get(email="orla@byrne.example")
    for q in (
        "muller unal",
        "Müller",
        "sub.example.co.uk",
        "7946-0958",
        "key account",
        "zoe.example",
    ):
        assert ("lead", zoe.pk) in found(rep, q), q
    assert ("lead", orla.pk) in found(rep, "030 1234567")
    assert NameWord.objects.filter(word="byrne").exists()


@pytest.mark.django_db(transaction=True)
def test_entries_written_alongside_are_those_built_from_the_customers_rows(
    rep, teams, queued_tasks
):
    TagFactory(name="VIP")
    customer_import = _queued_import(rep, EXPORT)
    csv_import.customer_import_execute(import_id=customer_import.pk)
    ids = _imported_ids()
    assert len(ids) == 3
    assert queued_tasks == []  # every entry written alongside, from the values
    written = _entries(ids)
    assert Customer.objects.get(email="orla@byrne.example").tags.count() == 0
    SearchEntry.objects.filter(record="customer").delete()
    services.search_entries_refresh(model="customer", ids=ids)  # from the rows, committed
    assert _entries(ids) == written


@pytest.mark.django_db(transaction=True)
def test_customers_an_import_updates_are_indexed_after_commit_and_its_new_ones_alongside(
    rep, teams, queued_tasks
):
    existing = CustomerFactory(owner=rep, email="orla@byrne.example", name="Old Name")
    customer_import = _queued_import(rep, EXPORT, mode="update")
    csv_import.customer_import_execute(import_id=customer_import.pk)
    new_ids = set(_imported_ids()) - {existing.pk}
    assert len(new_ids) == 2
    assert queued_tasks == [("customers", ([existing.pk],))]
    assert set(_entries(list(new_ids))) == new_ids


@pytest.mark.django_db(transaction=True)
def test_a_batch_that_cannot_be_written_alongside_is_indexed_after_commit(
    rep, teams, queued_tasks, monkeypatch
):
    tried = []

    def refused(**written):
        tried.append(written)
        raise OperationalError("the connection was lost")

    monkeypatch.setattr(bulk, "new_customers_upsert", refused)
    customer_import = _queued_import(rep, EXPORT)
    done = csv_import.customer_import_execute(import_id=customer_import.pk)
    assert done.status == "done"
    assert len(tried) == 1  # tried alongside, then left to the tasks
    ids = sorted(_imported_ids())
    assert [(name, sorted(arguments[0])) for name, arguments in queued_tasks] == [
        ("customers", ids)
    ]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("failing", ["its second batch", "a reaction after its last"])
def test_entries_of_an_import_that_rolled_back_are_never_found_then_removed(
    rep, admin_user, teams, queued_tasks, monkeypatch, failing
):
    if failing == "its second batch":
        monkeypatch.setattr(csv_import, "BATCH_ROWS", 1)
        written = {"batches": 0}
        original = writes.ImportWriter.write

        def write(self, batch, errors):
            if batch and written["batches"] == 1:
                raise RuntimeError("the disk is full")
            original(self, batch, errors)
            written["batches"] += bool(batch)

        monkeypatch.setattr(writes.ImportWriter, "write", write)
    else:  # after CUSTOMERS_CHANGED took the entries written alongside as its own

        def enrol(**_):
            raise RuntimeError("the disk is full")

        monkeypatch.setattr("campaigns.sequences.imports.imported_leads_enrol", enrol)
    customer_import = _queued_import(rep, EXPORT)
    with pytest.raises(RuntimeError):
        csv_import.customer_import_execute(import_id=customer_import.pk)
    assert CustomerImport.objects.get(pk=customer_import.pk).status == "failed"
    assert not Customer.objects.filter(email__startswith="zoe.muller").exists()
    _drained()
    orphan = SearchEntry.objects.get(record="customer", title="Zoë Müller-Ünal")
    assert found(rep, "Müller") == []
    assert found(admin_user, "Müller") == []  # who may see every customer that exists
    # The next change to customers in this thread removes it.
    monkeypatch.undo()
    monkeypatch.setattr(services, "INLINE_LIMIT", 0)
    csv_import.customer_import_execute(
        import_id=_queued_import(rep, "name,email\nNext One,next@one.example\n").pk
    )
    _drained()
    assert not SearchEntry.objects.filter(pk=orphan.pk).exists()
    assert [kind for kind, _ in found(rep, "next one")] == ["lead"]


def test_inside_a_callers_transaction_the_import_is_indexed_by_its_own_transaction(
    rep, teams, monkeypatch
):
    """A test's transaction (or any caller's) may roll the import back after it: its entries
    are written in it, not alongside, where they would outlive it."""
    monkeypatch.setattr(services, "INLINE_LIMIT", 500)  # in it, then
    with mock.patch.object(alongside, "_pool") as pool:
        customer_import = _queued_import(rep, EXPORT)
        csv_import.customer_import_execute(import_id=customer_import.pk)
    pool.assert_not_called()
    assert [kind for kind, _ in found(rep, "byrne shipping")] == ["lead"]


@pytest.mark.django_db(transaction=True)
def test_a_rebuild_keeps_the_entries_of_an_import_not_yet_committed(rep, teams, monkeypatch):
    """A full rebuild removes the entries whose customer it cannot see; those of an import
    writing alongside are such until it commits: the rebuild waits for it."""
    importing, commit, asked_again = threading.Event(), threading.Event(), threading.Event()
    made: dict = {}

    def pause(seconds: float) -> None:  # the rebuild, asking again for the imports' lock
        asked_again.set()
        time.sleep(seconds)

    monkeypatch.setattr(alongside, "time", SimpleNamespace(monotonic=time.monotonic, sleep=pause))

    def an_import() -> None:
        try:
            with transaction.atomic():
                customer = CustomerFactory(
                    owner=rep, name="Pending Pangolin", lifecycle_stage="lead"
                )
                made["id"] = customer.pk
                row = {
                    "id": customer.pk,
                    "name": customer.name,
                    "email": customer.email,
                    "owner_id": rep.pk,
                    "updated_at": customer.updated_at,
                    "tag_names": [],
                }
                alongside.new_customers_index(customers=[row])
                _drained()
                importing.set()
                assert commit.wait(timeout=60)
                made["written"] = alongside.written_alongside([customer.pk])
        finally:
            connection.close()

    def rebuild() -> None:
        try:
            services.search_index_rebuild(models=["customer"], workers=1)
        finally:
            connection.close()

    threads = [threading.Thread(target=an_import), threading.Thread(target=rebuild)]
    threads[0].start()
    assert importing.wait(timeout=60)
    assert SearchEntry.objects.filter(record="customer", record_id=made["id"]).exists()
    threads[1].start()
    assert asked_again.wait(timeout=60)  # at its removal of orphans, the import not done
    assert threads[1].is_alive()
    commit.set()
    for thread in threads:
        thread.join(timeout=60)
    assert made["written"] == {made["id"]}
    assert SearchEntry.objects.filter(record="customer", record_id=made["id"]).exists()
    assert found(rep, "pangolin") == [("lead", made["id"])]
