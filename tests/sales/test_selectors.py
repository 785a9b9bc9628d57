"""sales.selectors: reads for deals and tasks."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from sales import selectors
from sales.models import Sale
from tests.factories import CustomerFactory, SaleFactory, TaskFactory

pytestmark = pytest.mark.django_db


def test_my_tasks_buckets(rep, teams):
    now = timezone.now()
    overdue = TaskFactory(assigned_to=rep, due_at=now - timedelta(hours=1))
    upcoming = TaskFactory(assigned_to=rep, due_at=now + timedelta(days=3))
    done = TaskFactory(assigned_to=rep, due_at=now - timedelta(days=1), completed_at=now)
    buckets = selectors.my_tasks(user=rep, now=now)
    assert list(buckets["overdue"]) == [overdue]
    assert list(buckets["upcoming"]) == [upcoming]
    assert list(buckets["done"]) == [done]


def test_sale_totals_in_one_query(rep, django_assert_num_queries):
    customer = CustomerFactory(owner=rep)
    SaleFactory(customer=customer, amount=Decimal("100"))
    SaleFactory(customer=customer, amount=Decimal("250.50"), status="WON")
    SaleFactory(customer=customer, amount=None)
    with django_assert_num_queries(1):
        totals = selectors.sale_totals(Sale.objects.all())
    assert totals["count"] == 3
    assert totals["open_count"] == 2
    (usd,) = totals["by_currency"]
    assert usd["total_amount"] == Decimal("350.50")
    assert usd["won_amount"] == Decimal("250.50")


def test_sale_totals_never_add_currencies(rep):
    customer = CustomerFactory(owner=rep)
    SaleFactory(customer=customer, amount=Decimal("100"), currency="USD")
    SaleFactory(customer=customer, amount=Decimal("12345.67"), currency="EUR")
    SaleFactory(customer=customer, amount=Decimal("5"), currency="EUR")
    totals = selectors.sale_totals(Sale.objects.all())
    assert totals["count"] == 3
    amounts = {row["currency"]: row["total_amount"] for row in totals["by_currency"]}
    assert amounts == {"EUR": Decimal("12350.67"), "USD": Decimal("100")}
