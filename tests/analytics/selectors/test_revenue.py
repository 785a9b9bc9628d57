"""analytics.selectors.revenue: won revenue over windows and by month."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from tests.analytics.selectors.helpers import (
    MID_MARCH,
    NOW,
    revenue_months,
    revenue_windows,
    won_deal,
)
from tests.factories import CustomerFactory, SaleFactory

pytestmark = pytest.mark.django_db


def test_revenue_windows_per_currency(rep, teams):
    customer = CustomerFactory(owner=rep)
    won_deal(customer, "100", days_ago=10)
    won_deal(customer, "200", days_ago=60)
    won_deal(customer, "400", days_ago=200)
    won_deal(customer, "800", days_ago=400)  # outside a year
    won_deal(customer, "50", days_ago=10, currency="EUR")
    rows = {row["currency"]: row for row in revenue_windows(user=rep, now=NOW)}
    usd = rows["USD"]
    assert (usd["last_30"], usd["last_90"], usd["last_365"]) == (
        Decimal("100"), Decimal("300"), Decimal("700"))  # fmt: skip
    assert rows["EUR"]["last_30"] == Decimal("50")


def test_revenue_by_month_starts_at_midnight_on_the_first(rep, teams, settings):
    settings.TIME_ZONE = "UTC"
    customer = CustomerFactory(owner=rep)
    for closed in (datetime(2024, 12, 31, 23, 0, tzinfo=UTC),  # before the 3 months
                   datetime(2025, 1, 1, 0, 30, tzinfo=UTC),
                   datetime(2025, 3, 15, 9, 0, tzinfo=UTC)):  # fmt: skip
        SaleFactory(customer=customer, status="WON", amount=Decimal("10"), closed_at=closed)
    rows = revenue_months(user=rep, months=3, now=MID_MARCH)
    assert [(row["month"].month, row["amount"]) for row in rows] == [
        (1, Decimal("10")), (3, Decimal("10"))]  # fmt: skip
