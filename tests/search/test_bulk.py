"""search.bulk (PostgreSQL's INSERT ... SELECT) builds the same entries as the Python
builders of search.services (SQLite, documents, templates, campaigns)."""

import io
import re

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection

from customers.models import Customer, CustomerNote
from sales.models import Sale
from search import bulk, services
from search.models import SearchEntry
from tests.factories import (
    CustomerFactory,
    SaleActivityFactory,
    SaleFactory,
    TagFactory,
    TaskFactory,
)
from tests.search.conftest import found

pytestmark = pytest.mark.django_db
COMPARED = ["kind", "record", "record_id", "customer_id", "sale_id", "task_id", "title",
            "subtitle", "body", "owner_id", "stage", "tags", "activity_at"]  # fmt: skip


def _snapshot(model: str) -> dict:
    rows = SearchEntry.objects.filter(record=model).order_by("record_id")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT record_id, vector::text FROM search_searchentry WHERE record = %s", [model]
        )
        vectors = dict(cursor.fetchall())
    return {
        row.record_id: ([getattr(row, f) for f in COMPARED], vectors[row.record_id]) for row in rows
    }


@pytest.fixture
def records(rep, teammate, teams):
    odd = CustomerFactory(
        owner=rep,
        name="Zoë «Ünïcode» O'Neil-Smith \ue000",
        email="Zoe.O-Neil+crm@Sub.Example.co.uk",
        phone="+44 (0)20 7946-0958 ext. 12",
        company="Ünïcode & Sons",
        website="HTTPS://www.Zoe.example:8443/a?b",
        job_title="Head of <b>Things</b>",
        notes="Line one\nLine <script>two</script>",
        lifecycle_stage="prospect",
        tags=[TagFactory(name="Key Account"), TagFactory(name="VIP")],
    )
    CustomerNote.objects.create(customer=odd, author=rep, text="First note")
    CustomerNote.objects.create(customer=odd, author=rep, text="Second note, Müller")
    plain = CustomerFactory(
        owner=None, name="Plain", email="plain@x.example", phone="12", website=""
    )
    no_at = CustomerFactory(
        owner=rep, name="No at", email="broken", phone="007", website="not a url"
    )
    # A trunk zero: its tails, then the number as dialled.
    trunk = CustomerFactory(owner=rep, name="Trunk", email="a.b@c.example", phone="(030) 1234-567")
    sale = SaleFactory(customer=odd, assigned_to=teammate, title="Big «deal»", status="PROPOSAL")
    SaleActivityFactory(sale=sale, text="Called Zoë")
    SaleActivityFactory(sale=sale, text="Sent the offer")
    bare_sale = SaleFactory(customer=plain, assigned_to=None, title="Bare")
    tasks = [
        TaskFactory(assigned_to=rep, title="Call back", description="About <the> offer", sale=sale,
                    customer=odd),
        TaskFactory(assigned_to=rep, title="Lonely task"),
    ]  # fmt: skip
    return {
        "customer": [odd.pk, plain.pk, no_at.pk, trunk.pk],
        "sale": [sale.pk, bare_sale.pk],
        "task": [task.pk for task in tasks],
    }


@pytest.mark.parametrize("model", ["customer", "sale", "task"])
def test_sql_and_python_builders_agree(records, model, monkeypatch):
    ids = records[model]
    services.search_entries_refresh(model=model, ids=ids)  # SQL
    from_sql = _snapshot(model)
    SearchEntry.objects.all().delete()
    monkeypatch.setattr(bulk, "supports", lambda model: False)
    services.search_entries_refresh(model=model, ids=ids)  # Python
    from_python = _snapshot(model)
    assert set(from_sql) == set(ids)
    for record_id in ids:
        assert from_sql[record_id][0] == from_python[record_id][0], record_id
        assert from_sql[record_id][1] == from_python[record_id][1], record_id


@pytest.mark.django_db(transaction=True)
def test_seeded_records_are_found_by_name_email_phone_digits_and_prose():
    """The demo seed writes past the services (COPY) and builds the index at its end, on two
    connections, from an index its campaign and templates alone are in; a reindex from
    nothing later does the same."""
    call_command("seed_demo", customers=60, deals=40, lead_history=0, stdout=io.StringIO(),
                 allow_without_debug=True)  # fmt: skip
    admin = get_user_model().objects.get(username="admin")
    customer = Customer.objects.exclude(phone="").order_by("pk").first()
    digits = re.sub(r"\D", "", customer.phone)[-7:]
    dashed = f"{digits[:3]}-{digits[3:]}"

    def finds(q: str, kind_and_pk: tuple[str, int]) -> bool:
        return kind_and_pk in found(admin, q, limit=100)

    key = ("lead" if customer.lifecycle_stage == "lead" else "customer", customer.pk)
    for q in (customer.name, customer.email, dashed):
        assert finds(q, key), q
    sale = Sale.objects.filter(customer=customer).first() or Sale.objects.first()
    activity = sale.activities.first()
    assert finds(f'"{activity.text.rstrip(".")}" {sale.title}', ("deal", sale.pk))
    # Prose written past the services, then a reindex from nothing.
    CustomerNote.objects.create(customer=customer, text="Prefers quarterly invoicing by courier")
    SearchEntry.objects.all().delete()
    call_command("search_reindex", stdout=io.StringIO())
    for q in (customer.name, customer.email, dashed, "quarterly invoices courier"):
        assert finds(q, key), q


@pytest.mark.parametrize("in_sql", [True, False])
def test_the_keys_text_is_not_kept_once_its_words_are_in_the_vector(
    rep, teams, monkeypatch, in_sql
):
    if not in_sql:
        monkeypatch.setattr(bulk, "supports", lambda model: False)
    customer = CustomerFactory(owner=rep, name="Keyless", email="kim@keys.example")
    services.search_entries_refresh(model="customer", ids=[customer.pk])
    entry = SearchEntry.objects.get(record="customer", record_id=customer.pk)
    assert entry.keys == ""
    with connection.cursor() as cursor:
        cursor.execute("SELECT vector::text FROM search_searchentry WHERE id = %s", [entry.pk])
        assert "'keys.example':" in cursor.fetchone()[0]


PHONES = [
    "+49 30 123-4567", "+44 (0)20 7946-0958 ext. 12", "0049 (30) 1234", "(030) 1234-567",
    "+4930123", "555-0199 x204", "555-0199 EXT 5", "+44(0)20 7946 0958", "+1-555-288-2736",
    "+33\u202f1\u202f23\u202f45\u202f67\u202f89", "+49\xa0(0)30 1234567", "+49 30\n1234567",
    "030 1234567\xa0ext.\xa012", "١٢٣٤٥٦٧", "tel: +49 (0) 30/123 45-6", "12", "",
]  # fmt: skip


def test_sql_and_python_read_phone_numbers_alike(rep, teams, monkeypatch):
    """search.bulk's regular expressions against search.text's, number by number: the other
    comparison covers a few formats only."""
    ids = [
        CustomerFactory(owner=rep, name=f"P {i}", phone=phone).pk for i, phone in enumerate(PHONES)
    ]
    services.search_entries_refresh(model="customer", ids=ids)  # SQL
    from_sql = _snapshot("customer")
    SearchEntry.objects.all().delete()
    monkeypatch.setattr(bulk, "supports", lambda model: False)
    services.search_entries_refresh(model="customer", ids=ids)  # Python
    from_python = _snapshot("customer")
    for phone, record_id in zip(PHONES, ids, strict=True):
        assert from_sql[record_id][1] == from_python[record_id][1], phone


def test_refreshing_a_record_deleted_meanwhile_removes_its_entry(rep, teams):
    """What a task indexing a customer deleted under it (or by raw SQL) leaves behind goes
    at that record's next refresh (the entries have no foreign-key constraint)."""
    gone = CustomerFactory(owner=rep, name="Gone Soon")
    services.search_entries_refresh(model="customer", ids=[gone.pk])
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM customers_customer WHERE id = %s", [gone.pk])
    services.search_entries_refresh(model="customer", ids=[gone.pk])
    assert not SearchEntry.objects.filter(record="customer", record_id=gone.pk).exists()
