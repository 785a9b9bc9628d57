"""search.bulk (PostgreSQL's INSERT ... SELECT) builds the same entries as the Python
builders of search.services (SQLite, documents, templates, campaigns)."""

import pytest
from django.db import connection

from customers.models import CustomerNote
from search import bulk, services
from search.models import SearchEntry
from tests.factories import (
    CustomerFactory,
    SaleActivityFactory,
    SaleFactory,
    TagFactory,
    TaskFactory,
)

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
