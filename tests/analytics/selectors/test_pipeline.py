"""analytics.selectors.pipeline: the open pipeline and the deals closing soon."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from analytics.selectors.pipeline import open_pipeline
from tests.analytics.selectors.helpers import (
    NOW,
)
from tests.factories import CustomerFactory, SaleFactory

pytestmark = pytest.mark.django_db


def test_pipeline_summary_and_closing_soon(rep, teams):
    customer = CustomerFactory(owner=rep)
    today = timezone.localdate(NOW)
    SaleFactory(customer=customer, assigned_to=rep, amount=Decimal("100"),
                expected_close_date=today + timedelta(days=5))  # fmt: skip
    SaleFactory(customer=customer, assigned_to=rep, amount=Decimal("200"),
                expected_close_date=today + timedelta(days=60))  # fmt: skip
    SaleFactory(customer=customer, assigned_to=rep, amount=None, expected_close_date=None)
    SaleFactory(customer=customer, assigned_to=rep, amount=Decimal("50"), status="PROPOSAL",
                expected_close_date=today + timedelta(days=1))  # fmt: skip
    pipeline = open_pipeline(user=rep, closing_days=30, now=NOW)
    (row,) = pipeline["summary"]
    assert (row["deals"], row["value"], row["closing_soon"], row["closing_soon_value"]) == (
        4, Decimal("350"), 2, Decimal("150"))  # fmt: skip
    assert [(row["status"], row["deals"], row["value"]) for row in pipeline["by_stage"]] == [
        ("NEW", 3, Decimal("300")), ("PROPOSAL", 1, Decimal("50"))]  # fmt: skip
