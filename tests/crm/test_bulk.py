"""crm.bulk.analyze: after a bulk load the planner knows how many rows there are."""

import pytest
from django.db import connection

from crm.bulk import analyze, bulk_insert
from customers.models import Customer

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
