"""analytics.selectors.reps: the top reps and a user's own numbers."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from analytics.selectors.reps import rep_month_numbers, top_reps
from tests.analytics.selectors.helpers import (
    MID_MARCH,
    NOW,
    won_deal,
)
from tests.factories import CustomerFactory, SaleActivityFactory, SaleFactory

pytestmark = pytest.mark.django_db


def test_top_reps_by_won_revenue(manager, rep, teammate, teams):
    won_deal(CustomerFactory(owner=rep), "100", days_ago=5)
    won_deal(CustomerFactory(owner=teammate), "900", days_ago=5)
    top = top_reps(user=manager, now=NOW)
    assert [row["assigned_to"] for row in top] == [teammate.pk, rep.pk]


def test_rep_month_numbers_by_hand(rep, teammate, teams, settings):
    settings.TIME_ZONE = "UTC"
    customer = CustomerFactory(owner=rep)
    for closed, amount in ((datetime(2025, 3, 2, tzinfo=UTC), "100"),
                           (datetime(2025, 2, 27, tzinfo=UTC), "40"),
                           (datetime(2025, 2, 3, tzinfo=UTC), None),
                           (datetime(2025, 1, 31, tzinfo=UTC), "999")):  # fmt: skip
        SaleFactory(customer=customer, status="WON", closed_at=closed,
                    amount=Decimal(amount) if amount else None)  # fmt: skip
    # Someone else's win on my customer is not mine.
    SaleFactory(customer=customer, assigned_to=teammate, status="WON", amount=Decimal("5"),
                closed_at=datetime(2025, 3, 3, tzinfo=UTC))  # fmt: skip
    sale = SaleFactory(customer=customer)
    for when in (datetime(2025, 3, 1, 8, tzinfo=UTC), datetime(2025, 2, 1, tzinfo=UTC),
                 datetime(2025, 1, 31, tzinfo=UTC)):  # fmt: skip
        SaleActivityFactory(sale=sale, user=rep, occurred_at=when)
    SaleActivityFactory(sale=sale, user=teammate, occurred_at=datetime(2025, 3, 2, tzinfo=UTC))
    numbers = rep_month_numbers(user=rep, now=MID_MARCH)
    (usd,) = numbers["revenue"]
    assert (usd["this_month"], usd["last_month"]) == (Decimal("100"), Decimal("40"))
    assert numbers["deals_won"] == {"this_month": 1, "last_month": 2}
    assert numbers["activities"] == {"this_month": 1, "last_month": 1}
