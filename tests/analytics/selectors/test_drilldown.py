"""analytics.selectors.drilldown: the deals behind a number."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from analytics.selectors.drilldown import metric_deals
from tests.analytics.selectors.helpers import (
    MID_MARCH,
    NOW,
    revenue_windows,
    velocity_of,
    won_deal,
)
from tests.factories import CustomerFactory, SaleFactory

pytestmark = pytest.mark.django_db


def test_metric_deals_are_the_deals_a_number_counts(rep, teams):
    customer = CustomerFactory(owner=rep)
    won_deal(customer, "100", days_ago=10)
    won_deal(customer, None, days_ago=10)  # won, no amount: not revenue
    won_deal(customer, "100", days_ago=60)
    won_deal(customer, "100", days_ago=10, currency="EUR")
    (usd, eur) = (row for row in revenue_windows(user=rep, now=NOW))
    revenue_30 = metric_deals(user=rep, metric="revenue", days=30, currency="USD",
                                        now=NOW)  # fmt: skip
    assert revenue_30.count() == 1
    assert sum(sale.amount for sale in revenue_30) == (usd if usd["currency"] == "USD" else eur)[
        "last_30"]  # fmt: skip
    velocity = velocity_of(user=rep, days=30, now=NOW)
    assert metric_deals(user=rep, metric="won", days=30, now=NOW).count() == (
        velocity["won"])  # fmt: skip
    with pytest.raises(ValueError):
        metric_deals(user=rep, metric="nonsense")


def test_metric_deals_for_a_calendar_month(rep, teams, settings):
    settings.TIME_ZONE = "UTC"
    customer = CustomerFactory(owner=rep)
    for closed in (datetime(2025, 1, 31, 23, 0, tzinfo=UTC), datetime(2025, 2, 1, tzinfo=UTC),
                   datetime(2025, 2, 28, 23, 59, tzinfo=UTC),
                   datetime(2025, 3, 1, tzinfo=UTC)):  # fmt: skip
        SaleFactory(customer=customer, status="WON", amount=Decimal("10"), closed_at=closed)
    february = metric_deals(user=rep, metric="revenue", now=MID_MARCH,
                                      month=date(2025, 2, 1))  # fmt: skip
    assert february.count() == 2
