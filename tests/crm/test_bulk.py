"""crm.bulk.analyze: after a bulk load the planner knows how many rows there are."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from crm.bulk import analyze, bulk_insert, filter_in
from customers.models import Customer
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def _estimated_rows() -> float:
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE relname = 'customers_customer'")
        return cursor.fetchone()[0]


def test_analyze_gives_the_planner_the_loaded_rows():
    bulk_insert(Customer, [{"name": f"C {n}", "email": f"c{n}@x.example"} for n in range(300)])
    analyze(Customer, Customer.tags.through)
    assert _estimated_rows() >= 300


def test_the_demo_generator_analyzes_what_it_loaded(monkeypatch, rep):
    from demo import generators

    analyzed = []
    monkeypatch.setattr(generators, "analyze", lambda *models: analyzed.extend(models))
    generators.dataset_generate(customers=5, deals=5, rep_ids=[rep.pk], seed=1)
    assert Customer in analyzed and generators.Sale in analyzed


def test_a_large_import_analyzes_the_customers(monkeypatch):
    from customers import csv_import

    analyzed = []
    monkeypatch.setattr(csv_import, "analyze", lambda *models: analyzed.extend(models))
    monkeypatch.setattr(csv_import, "ANALYZE_AFTER_ROWS", 2)

    class Finished:
        created_count, updated_count = 2, 0

    monkeypatch.setattr(csv_import, "customer_import_run", lambda **kwargs: Finished())
    from tests.factories import RepFactory

    customer_import = csv_import.CustomerImport.objects.create(
        uploaded_by=RepFactory(), filename="x.csv", status="queued"
    )
    csv_import.customer_import_execute(import_id=customer_import.pk)
    assert Customer in analyzed


def test_bulk_upsert_inserts_new_rows_and_updates_only_the_named_fields_of_existing_ones(
    django_capture_on_commit_callbacks,
):
    from django.db import transaction
    from django.utils import timezone

    from crm.bulk import bulk_upsert
    from leads.models import LeadScore
    from tests.factories import CustomerFactory

    old, new = CustomerFactory(), CustomerFactory()
    LeadScore.objects.create(customer=old, total_score=10, grade="cold", ai_explanation={})
    now = timezone.now()
    rows = [
        {"customer_id": customer.pk, "total_score": score, "grade": "hot", "last_calculated": now,
         "ai_explanation": {"up": [["Budget “over 100k”", 12.5]], "note": "it's"}}
        for customer, score in ((old, 80), (new, 55))
    ]  # fmt: skip
    with transaction.atomic():  # twice in one transaction: the staging table is dropped
        bulk_upsert(LeadScore, rows[:1], unique_fields=["customer"],
                    update_fields=["total_score", "ai_explanation", "last_calculated"])  # fmt: skip
        bulk_upsert(LeadScore, rows, unique_fields=["customer"],
                    update_fields=["total_score", "ai_explanation", "last_calculated"])  # fmt: skip
    updated, inserted = LeadScore.objects.get(customer=old), LeadScore.objects.get(customer=new)
    assert (updated.total_score, updated.grade) == (80, "cold")  # grade not in update_fields
    assert (inserted.total_score, inserted.grade) == (55, "hot")
    assert updated.ai_explanation == rows[0]["ai_explanation"] == inserted.ai_explanation
    assert LeadScore.objects.count() == 2


def test_filter_in_passes_the_values_as_one_array(rep):
    customers = CustomerFactory.create_batch(3, owner=rep)
    wanted = [customers[0].pk, customers[2].pk, 0]
    with CaptureQueriesContext(connection) as queries:
        found = set(filter_in(Customer.objects.all(), "id", wanted).values_list("pk", flat=True))
    assert found == {customers[0].pk, customers[2].pk}
    assert "= ANY(" in queries[0]["sql"]
    owned = filter_in(Customer.objects.all(), "owner", [rep.pk]).update(notes="seen")
    assert owned == 3
