"""analytics.selectors.churn: churn probability and reasons, by hand."""

from datetime import timedelta

import pytest
from django.utils import timezone

from analytics.selectors.churn import churn_risk_customers, customers_with_churn
from tests.analytics.selectors.helpers import (
    NOW,
)
from tests.factories import CustomerFactory, SaleFactory

pytestmark = pytest.mark.django_db


def test_churn_risk_ranks_customers_with_and_without_open_deals_together(rep, teams):
    """The list is built from two halves (without and with open deals); one ranking."""
    today = NOW.date()
    recent_no_deals = CustomerFactory(owner=rep, engagement_level="LOW", last_contact_date=today)
    never_with_deal = CustomerFactory(owner=rep, engagement_level="LOW", last_contact_date=None)
    SaleFactory(customer=never_with_deal, assigned_to=rep, status="NEW")
    never_no_deals = CustomerFactory(owner=rep, engagement_level="LOW", last_contact_date=None)
    rows = churn_risk_customers(user=rep, threshold=0.6, now=NOW)
    # 0.4 + 0.3 + 0.3 = 1.0; 0.4 + 0 + 0.3 = 0.7; 0 + 0.3 + 0.3 = 0.6
    assert [c.pk for c in rows] == [never_no_deals.pk, never_with_deal.pk, recent_no_deals.pk]
    assert [c.churn_probability for c in rows] == pytest.approx([1.0, 0.7, 0.6], abs=0.01)
    assert rows[1].has_open_deals and "No open deals" not in rows[1].churn_reasons
    top = churn_risk_customers(user=rep, threshold=0.6, limit=2, now=NOW)
    assert [c.pk for c in top] == [never_no_deals.pk, never_with_deal.pk]


def test_churn_factors_and_reasons_by_hand(rep, teams):
    today = timezone.localdate(NOW)
    quiet = CustomerFactory(
        owner=rep, engagement_level="LOW", last_contact_date=today - timedelta(days=90)
    )
    busy = CustomerFactory(owner=rep, engagement_level="VIP", last_contact_date=today)
    SaleFactory(customer=busy, assigned_to=rep, status="PROPOSAL")
    rows = {c.pk: c for c in customers_with_churn(user=rep, now=NOW)}
    # quiet: contact 90/180 = 0.5 x 0.4 + no deals 1 x 0.3 + LOW 1 x 0.3 = 0.8
    assert rows[quiet.pk].churn_probability == pytest.approx(0.8, abs=0.01)
    # busy: ~0 contact + open deal 0 + VIP 0 = ~0
    assert rows[busy.pk].churn_probability == pytest.approx(0.0, abs=0.01)
    (risky,) = churn_risk_customers(user=rep, threshold=0.6, now=NOW)
    assert risky.pk == quiet.pk
    assert risky.churn_reasons == ["No contact for 90 days", "No open deals", "Low engagement"]


def test_never_contacted_counts_fully(rep, teams):
    customer = CustomerFactory(owner=rep, engagement_level="MEDIUM", last_contact_date=None)
    (row,) = customers_with_churn(user=rep, now=NOW)
    assert row.pk == customer.pk
    assert row.churn_probability == pytest.approx(0.4 + 0.3 + 0.15)


def test_days_without_contact_are_local_calendar_days_in_any_time_zone(rep, teams, settings):
    """Just after midnight in Auckland it is still yesterday in UTC: the risk counts the same
    90 local days that the reason names, not 89 and a half."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    settings.TIME_ZONE = "Pacific/Auckland"
    now = datetime(2027, 1, 1, 0, 5, tzinfo=ZoneInfo("Pacific/Auckland"))
    quiet = CustomerFactory(
        owner=rep, engagement_level="LOW",
        last_contact_date=timezone.localdate(now) - timedelta(days=90),
    )  # fmt: skip
    (row,) = customers_with_churn(user=rep, now=now)
    assert row.pk == quiet.pk
    # contact 90/180 x 0.4 + no deals 0.3 + LOW 0.3
    assert row.churn_probability == pytest.approx(0.8, abs=0.001)
    (risky,) = churn_risk_customers(user=rep, threshold=0.6, now=now)
    assert risky.churn_reasons[0] == "No contact for 90 days"
