"""analytics.selectors.deal_flow: velocity, its trend, the funnel and days in stage."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection

from analytics.selectors.deal_flow import stage_durations
from analytics.selectors.drilldown import metric_deals
from sales.models import Sale
from tests.analytics.selectors.helpers import (
    MID_MARCH,
    NOW,
    deal_created,
    funnel_of,
    moves_through,
    trend_of,
    velocity_of,
    won_deal,
)
from tests.factories import CustomerFactory, SaleFactory, stage_history

pytestmark = pytest.mark.django_db


def test_sales_velocity_by_hand(rep, teams):
    customer = CustomerFactory(owner=rep)
    won_deal(customer, "1000", days_ago=10, created_days_ago=40)  # cycle 30 days
    won_deal(customer, "3000", days_ago=20, created_days_ago=30)  # cycle 10 days
    lost = SaleFactory(customer=customer, assigned_to=rep, status="LOST", lost_reason="x",
                       closed_at=NOW - timedelta(days=5))  # fmt: skip
    Sale.objects.filter(pk=lost.pk).update(created_at=NOW - timedelta(days=50))
    new = SaleFactory(customer=customer, assigned_to=rep, status="NEW")
    Sale.objects.filter(pk=new.pk).update(created_at=NOW - timedelta(days=1))
    result = velocity_of(user=rep, days=90, now=NOW)
    assert result["opportunities"] == 4 and result["won"] == 2 and result["closed"] == 3
    assert result["win_rate"] == pytest.approx(2 / 3)
    assert float(result["average_size"]) == pytest.approx(2000)
    assert result["cycle_days"] == pytest.approx(20, abs=0.01)
    # 4 x 2/3 x 2000 / 20 = 266.67 per day
    assert result["velocity_per_day"] == pytest.approx(266.67, abs=0.1)


def test_velocity_average_size_leaves_out_won_deals_without_an_amount(rep, teams):
    customer = CustomerFactory(owner=rep)
    won_deal(customer, "1000", days_ago=10, created_days_ago=20)
    won_deal(customer, None, days_ago=10, created_days_ago=30)
    result = velocity_of(user=rep, days=90, now=NOW)
    assert result["won"] == 2 and float(result["average_size"]) == pytest.approx(1000)
    assert result["cycle_days"] == pytest.approx(15, abs=0.01)  # both count for the cycle


def test_velocity_with_nothing_closed_is_zero(rep, teams):
    result = velocity_of(user=rep, days=30, now=NOW)
    assert result["win_rate"] == 0 and result["velocity_per_day"] == 0


def test_velocity_never_averages_money_across_currencies(rep, teams):
    customer = CustomerFactory(owner=rep)
    won_deal(customer, "1000", days_ago=10, created_days_ago=20)  # cycle 10
    won_deal(customer, "10", days_ago=10, created_days_ago=40, currency="JPY")  # cycle 30
    result = velocity_of(user=rep, days=90, now=NOW)
    assert (result["opportunities"], result["won"], result["closed"]) == (2, 2, 2)
    assert result["cycle_days"] == pytest.approx(20)
    assert result["average_size"] is None and result["velocity_per_day"] is None
    rows = {row["currency"]: row for row in result["by_currency"]}
    assert float(rows["USD"]["average_size"]) == pytest.approx(1000)
    # USD: 1 opportunity x 1/1 won x 1000 / 10 days
    assert rows["USD"]["velocity_per_day"] == pytest.approx(100)
    assert rows["JPY"]["velocity_per_day"] == pytest.approx(10 / 30)


def test_funnel_counts_deals_that_got_at_least_that_far(rep, teams):
    customer = CustomerFactory(owner=rep)
    moves_through(deal_created(customer, 10, "PROPOSAL"), "NEW", "PROPOSAL")  # skipped Contacted
    deal_created(customer, 10, "NEGOTIATION")  # no stage history at all
    moves_through(deal_created(customer, 10, "WON"), "NEW", "CONTACTED", "WON")
    moves_through(deal_created(customer, 10, "LOST", lost_reason="x"), "NEW", "CONTACTED", "LOST")
    deal_created(customer, 10)  # still new
    deal_created(customer, 400, "NEGOTIATION")  # created before the period
    funnel = {row["status"]: row["deals"]
              for row in funnel_of(user=rep, days=365, now=NOW)}  # fmt: skip
    assert funnel == {"NEW": 5, "CONTACTED": 4, "PROPOSAL": 3, "NEGOTIATION": 2,
                      "WON": 1, "LOST": 1}  # fmt: skip
    reached = metric_deals(user=rep, metric="reached", status="PROPOSAL", days=365,
                                     now=NOW)  # fmt: skip
    assert reached.count() == 3


def test_funnel_with_no_deals_is_all_zero(rep, teams):
    assert {row["deals"] for row in funnel_of(user=rep, now=NOW)} == {0}


def test_stage_durations_from_stage_changes(rep, teams):
    sale = SaleFactory(customer=CustomerFactory(owner=rep), assigned_to=rep, status="CONTACTED")
    stage_history(sale, ("NEW", NOW - timedelta(days=10)), ("CONTACTED", NOW - timedelta(days=4)))
    durations = {row["status"]: row["average_days"] for row in stage_durations(user=rep, now=NOW)}
    assert durations["NEW"] == pytest.approx(6) and durations["CONTACTED"] is None


def test_stage_durations_median_and_average(rep, teams):
    customer = CustomerFactory(owner=rep)
    for days in (2, 4, 12):
        sale = SaleFactory(customer=customer, status="CONTACTED")
        stage_history(sale, ("NEW", NOW - timedelta(days=30)),
                      ("CONTACTED", NOW - timedelta(days=30 - days)))  # fmt: skip
    rows = {row["status"]: row for row in stage_durations(user=rep, now=NOW)}
    assert rows["NEW"]["average_days"] == pytest.approx(6)
    # SQLite has no percentile function: there the median is missing, not made up.
    assert rows["NEW"]["median_days"] == (
        pytest.approx(4) if connection.vendor == "postgresql" else None)  # fmt: skip
    assert rows["NEW"]["changes"] == 3
    assert rows["CONTACTED"]["median_days"] is None and rows["CONTACTED"]["changes"] == 0


def test_stage_durations_is_one_query(rep, teams, django_assert_num_queries):
    rep._crm_role = "rep"
    rep._crm_team_users, rep._crm_shared_customer_ids = [rep], []
    with django_assert_num_queries(1):
        stage_durations(user=rep, now=NOW)


def test_velocity_trend_by_month(rep, teams, settings):
    settings.TIME_ZONE = "UTC"
    customer = CustomerFactory(owner=rep)

    def deal(created, closed=None, status="NEW", amount="100"):
        reason = "x" if status == "LOST" else ""
        sale = SaleFactory(customer=customer, status=status, amount=Decimal(amount),
                           closed_at=closed, lost_reason=reason)  # fmt: skip
        Sale.objects.filter(pk=sale.pk).update(created_at=created)

    feb = datetime(2025, 2, 10, tzinfo=UTC)
    deal(feb)
    deal(feb - timedelta(days=5), closed=feb + timedelta(days=5), status="WON", amount="1000")
    deal(feb - timedelta(days=30), closed=feb, status="LOST")
    deal(datetime(2024, 9, 1, tzinfo=UTC))  # before the six months
    trend = trend_of(user=rep, months=6, now=MID_MARCH)
    assert [row["month"].isoformat()[:7] for row in trend] == [
        "2024-10", "2024-11", "2024-12", "2025-01", "2025-02", "2025-03"]  # fmt: skip
    february = trend[4]
    assert (february["opportunities"], february["closed"], february["won"]) == (2, 2, 1)
    assert february["win_rate"] == pytest.approx(0.5)
    assert february["cycle_days"] == pytest.approx(10)
    # 2 opportunities x 0.5 x 1000 / 10 days = 100 a day
    assert february["velocity_per_day"] == pytest.approx(100)
    assert trend[5]["velocity_per_day"] == 0 and trend[5]["opportunities"] == 0


def test_velocity_trend_is_two_queries(rep, teams, django_assert_num_queries):
    rep._crm_role = "rep"
    rep._crm_team_users, rep._crm_shared_customer_ids = [rep], []
    with django_assert_num_queries(2):
        trend_of(user=rep, now=NOW)
