"""Each metric against numbers worked out by hand."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from analytics import selectors
from analytics.selectors import Scope
from customers.models import Customer
from sales.models import Sale, StageChange
from tests.factories import CustomerFactory, SaleFactory

pytestmark = pytest.mark.django_db

NOW = timezone.now()


def _won(customer, amount, days_ago, created_days_ago=None, **fields):
    closed = NOW - timedelta(days=days_ago)
    sale = SaleFactory(customer=customer, assigned_to=customer.owner, status="WON",
                       amount=Decimal(amount) if amount is not None else None,
                       closed_at=closed, **fields)  # fmt: skip
    created = NOW - timedelta(
        days=created_days_ago if created_days_ago is not None else days_ago + 30
    )
    Sale.objects.filter(pk=sale.pk).update(created_at=created)
    return sale


# CLV --------------------------------------------------------------------------------------


def test_clv_with_no_data_is_empty(rep, teams):
    result = selectors.segment_clv(user=rep, now=NOW)
    assert result["customers"] == 0 and result["average"] is None
    assert result["lifespan_years"] == 3.0


def test_clv_of_one_customer_by_hand(rep, teams):
    customer = CustomerFactory(owner=rep)
    _won(customer, "1000", days_ago=730)  # first win two years ago
    _won(customer, "3000", days_ago=10)
    # average 2000 x (2 wins / 2 years = 1 a year) x 3 years = 6000
    (row,) = selectors.customers_with_clv(user=rep, lifespan_years=3.0, now=NOW)
    assert row.won_count == 2 and row.won_average == Decimal("2000")
    assert row.clv == pytest.approx(6000, rel=1e-3)


def test_one_recent_win_is_not_extrapolated_beyond_once_a_year(rep, teams):
    customer = CustomerFactory(owner=rep)
    _won(customer, "500", days_ago=5)
    (row,) = selectors.customers_with_clv(user=rep, lifespan_years=3.0, now=NOW)
    assert row.purchases_per_year == pytest.approx(1.0) and row.clv == pytest.approx(1500)


def test_deals_without_amount_or_not_won_do_not_count(rep, teams):
    customer = CustomerFactory(owner=rep)
    _won(customer, None, days_ago=100)
    SaleFactory(customer=customer, assigned_to=rep, status="NEW", amount=Decimal("9999"))
    (row,) = selectors.customers_with_clv(user=rep, lifespan_years=3.0, now=NOW)
    assert row.won_count == 0 and row.clv == 0


def test_lifespan_is_measured_from_enough_churned_customers(rep, teams, monkeypatch):
    monkeypatch.setattr(selectors, "MIN_CHURNED_FOR_LIFESPAN", 2)
    for _ in range(2):
        customer = CustomerFactory(owner=rep, lifecycle_stage=Customer.LifecycleStage.CHURNED)
        _won(customer, "100", days_ago=0, created_days_ago=730)  # active 2 years
    years, source = selectors.expected_lifespan_years(user=rep, now=NOW)
    assert years == pytest.approx(730 / 365.25, rel=1e-3) and "2 churned" in source


def test_high_clv_customers_are_ordered(rep, teams):
    small, big = CustomerFactory(owner=rep), CustomerFactory(owner=rep)
    _won(small, "100", days_ago=400)
    _won(big, "10000", days_ago=400)
    assert [c.pk for c in selectors.high_clv_customers(user=rep, now=NOW)] == [big.pk, small.pk]


# Churn ------------------------------------------------------------------------------------


def test_churn_factors_and_reasons_by_hand(rep, teams):
    quiet = CustomerFactory(owner=rep, engagement_level="LOW",
                            last_contact_date=(NOW - timedelta(days=90)).date())  # fmt: skip
    busy = CustomerFactory(owner=rep, engagement_level="VIP", last_contact_date=NOW.date())
    SaleFactory(customer=busy, assigned_to=rep, status="PROPOSAL")
    rows = {c.pk: c for c in selectors.customers_with_churn(user=rep, now=NOW)}
    # quiet: contact 90/180 = 0.5 x 0.4 + no deals 1 x 0.3 + LOW 1 x 0.3 = 0.8
    assert rows[quiet.pk].churn_probability == pytest.approx(0.8, abs=0.01)
    # busy: ~0 contact + open deal 0 + VIP 0 = ~0
    assert rows[busy.pk].churn_probability == pytest.approx(0.0, abs=0.01)
    (risky,) = selectors.churn_risk_customers(user=rep, threshold=0.6, now=NOW)
    assert risky.pk == quiet.pk
    assert risky.churn_reasons == ["No contact for 90 days", "No open deals", "Low engagement"]


def test_never_contacted_counts_fully(rep, teams):
    customer = CustomerFactory(owner=rep, engagement_level="MEDIUM", last_contact_date=None)
    (row,) = selectors.customers_with_churn(user=rep, now=NOW)
    assert row.pk == customer.pk
    assert row.churn_probability == pytest.approx(0.4 + 0.3 + 0.15)


# Velocity ---------------------------------------------------------------------------------


def test_sales_velocity_by_hand(rep, teams):
    customer = CustomerFactory(owner=rep)
    _won(customer, "1000", days_ago=10, created_days_ago=40)  # cycle 30 days
    _won(customer, "3000", days_ago=20, created_days_ago=30)  # cycle 10 days
    lost = SaleFactory(customer=customer, assigned_to=rep, status="LOST", lost_reason="x",
                       closed_at=NOW - timedelta(days=5))  # fmt: skip
    Sale.objects.filter(pk=lost.pk).update(created_at=NOW - timedelta(days=50))
    new = SaleFactory(customer=customer, assigned_to=rep, status="NEW")
    Sale.objects.filter(pk=new.pk).update(created_at=NOW - timedelta(days=1))
    result = selectors.sales_velocity(user=rep, days=90, now=NOW)
    assert result["opportunities"] == 4 and result["won"] == 2 and result["closed"] == 3
    assert result["win_rate"] == pytest.approx(2 / 3)
    assert float(result["average_size"]) == pytest.approx(2000)
    assert result["cycle_days"] == pytest.approx(20, abs=0.01)
    # 4 x 2/3 x 2000 / 20 = 266.67 per day
    assert result["velocity_per_day"] == pytest.approx(266.67, abs=0.1)


def test_velocity_with_nothing_closed_is_zero(rep, teams):
    result = selectors.sales_velocity(user=rep, days=30, now=NOW)
    assert result["win_rate"] == 0 and result["velocity_per_day"] == 0


def test_stage_durations_from_stage_changes(rep, teams):
    sale = SaleFactory(customer=CustomerFactory(owner=rep), assigned_to=rep, status="CONTACTED")
    StageChange.objects.create(sale=sale, to_status="NEW", changed_at=NOW - timedelta(days=10))
    StageChange.objects.create(sale=sale, from_status="NEW", to_status="CONTACTED",
                               changed_at=NOW - timedelta(days=4))  # fmt: skip
    durations = {
        row["status"]: row["average_days"] for row in selectors.stage_durations(user=rep, now=NOW)
    }
    assert durations["NEW"] == pytest.approx(6) and durations["CONTACTED"] is None


# Revenue and pipeline ---------------------------------------------------------------------


def test_revenue_windows_per_currency(rep, teams):
    customer = CustomerFactory(owner=rep)
    _won(customer, "100", days_ago=10)
    _won(customer, "200", days_ago=60)
    _won(customer, "400", days_ago=200)
    _won(customer, "800", days_ago=400)  # outside a year
    _won(customer, "50", days_ago=10, currency="EUR")
    rows = {row["currency"]: row for row in selectors.revenue(user=rep, now=NOW)}
    usd = rows["USD"]
    assert (usd["last_30"], usd["last_90"], usd["last_365"]) == (
        Decimal("100"), Decimal("300"), Decimal("700"))  # fmt: skip
    assert rows["EUR"]["last_30"] == Decimal("50")


def test_pipeline_summary_and_closing_soon(rep, teams):
    customer = CustomerFactory(owner=rep)
    today = timezone.localdate(NOW)
    SaleFactory(customer=customer, assigned_to=rep, amount=Decimal("100"),
                expected_close_date=today + timedelta(days=5))  # fmt: skip
    SaleFactory(customer=customer, assigned_to=rep, amount=Decimal("200"),
                expected_close_date=today + timedelta(days=60))  # fmt: skip
    SaleFactory(customer=customer, assigned_to=rep, amount=None, expected_close_date=None)
    (row,) = selectors.pipeline_summary(user=rep, closing_days=30, now=NOW)
    assert (row["deals"], row["value"], row["closing_soon"], row["closing_soon_value"]) == (
        3, Decimal("300"), 1, Decimal("100"))  # fmt: skip


def test_top_reps_by_won_revenue(manager, rep, teammate, teams):
    _won(CustomerFactory(owner=rep), "100", days_ago=5)
    _won(CustomerFactory(owner=teammate), "900", days_ago=5)
    top = selectors.top_reps(user=manager, now=NOW)
    assert [row["assigned_to"] for row in top] == [teammate.pk, rep.pk]


# Visibility ---------------------------------------------------------------------------------


def test_a_rep_never_counts_another_teams_deals(rep, other_rep, teams):
    _won(CustomerFactory(owner=other_rep), "5000", days_ago=5)
    assert selectors.revenue(user=rep, now=NOW) == []
    assert selectors.sales_velocity(user=rep, now=NOW)["won"] == 0
    assert selectors.segment_clv(user=rep, now=NOW)["customers"] == 0


def test_a_manager_counts_only_their_teams(manager, rep, other_rep, teams):
    _won(CustomerFactory(owner=rep), "100", days_ago=5)
    _won(CustomerFactory(owner=other_rep), "5000", days_ago=5)
    (row,) = selectors.revenue(user=manager, now=NOW)
    assert row["last_30"] == Decimal("100")


def test_team_and_rep_scopes(manager, rep, teammate, teams):
    _won(CustomerFactory(owner=rep), "100", days_ago=5)
    _won(CustomerFactory(owner=teammate), "900", days_ago=5)
    (row,) = selectors.revenue(user=manager, scope=Scope(rep_id=rep.pk), now=NOW)
    assert row["last_30"] == Decimal("100")
    (row,) = selectors.revenue(user=manager, scope=Scope(team_id=teams["mine"].pk), now=NOW)
    assert row["last_30"] == Decimal("1000")


def test_each_metric_is_a_fixed_number_of_queries(rep, teams, django_assert_max_num_queries):
    for index in range(10):
        customer = CustomerFactory(owner=rep)
        _won(customer, "100", days_ago=index + 1)
    with django_assert_max_num_queries(3):
        list(selectors.customers_with_clv(user=rep, lifespan_years=3.0, now=NOW))
    with django_assert_max_num_queries(2):
        list(selectors.customers_with_churn(user=rep, now=NOW))
    with django_assert_max_num_queries(2):
        selectors.sales_velocity(user=rep, now=NOW)
    with django_assert_max_num_queries(2):
        selectors.revenue(user=rep, now=NOW)
