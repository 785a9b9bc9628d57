"""Every metric counts only what the user sees, narrowed to the scope, in a fixed
number of queries."""

from decimal import Decimal

import pytest

from analytics.selectors.churn import churn_risk_customers, customers_with_churn
from analytics.selectors.clv import (
    customers_with_clv,
    high_clv_customers,
    segment_clv,
)
from crm.permissions.analytics import AnalyticsScope
from tests.analytics.selectors.helpers import (
    NOW,
    revenue_windows,
    velocity_of,
    won_deal,
)
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def test_a_rep_never_counts_another_teams_deals(rep, other_rep, teams):
    won_deal(CustomerFactory(owner=other_rep), "5000", days_ago=5)
    assert revenue_windows(user=rep, now=NOW) == []
    assert velocity_of(user=rep, now=NOW)["won"] == 0
    assert segment_clv(user=rep, now=NOW)["customers"] == 0


def test_a_manager_counts_only_their_teams(manager, rep, other_rep, teams):
    won_deal(CustomerFactory(owner=rep), "100", days_ago=5)
    won_deal(CustomerFactory(owner=other_rep), "5000", days_ago=5)
    (row,) = revenue_windows(user=manager, now=NOW)
    assert row["last_30"] == Decimal("100")


def test_team_and_rep_scopes(manager, rep, teammate, teams):
    won_deal(CustomerFactory(owner=rep), "100", days_ago=5)
    won_deal(CustomerFactory(owner=teammate), "900", days_ago=5)
    (row,) = revenue_windows(user=manager, scope=AnalyticsScope(rep_id=rep.pk), now=NOW)
    assert row["last_30"] == Decimal("100")
    (row,) = revenue_windows(user=manager, scope=AnalyticsScope(team_id=teams["mine"].pk), now=NOW)
    assert row["last_30"] == Decimal("1000")


def test_each_metric_is_a_fixed_number_of_queries(rep, teams, django_assert_max_num_queries):
    for index in range(10):
        customer = CustomerFactory(owner=rep)
        won_deal(customer, "100", days_ago=index + 1)
    with django_assert_max_num_queries(3):
        list(customers_with_clv(user=rep, lifespan_years=3.0, now=NOW))
    with django_assert_max_num_queries(2):
        list(customers_with_churn(user=rep, now=NOW))
    with django_assert_max_num_queries(2):
        velocity_of(user=rep, now=NOW)
    with django_assert_max_num_queries(2):
        revenue_windows(user=rep, now=NOW)


def test_churn_and_clv_follow_the_team_and_rep_scope(manager, rep, teammate, teams):
    mine, theirs = CustomerFactory(owner=rep), CustomerFactory(owner=teammate)
    won_deal(mine, "100", days_ago=400)
    won_deal(theirs, "100", days_ago=400)
    scoped = high_clv_customers(user=manager, scope=AnalyticsScope(rep_id=rep.pk), now=NOW)
    assert [c.pk for c in scoped] == [mine.pk]
    risky = churn_risk_customers(user=manager, scope=AnalyticsScope(rep_id=teammate.pk),
                                           threshold=0, now=NOW)  # fmt: skip
    assert [c.pk for c in risky] == [theirs.pk]
    team = AnalyticsScope(team_id=teams["mine"].pk)
    assert len(churn_risk_customers(user=manager, scope=team, threshold=0)) == 2
