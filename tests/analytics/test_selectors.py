"""Each metric against numbers worked out by hand."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from analytics.selectors import clv
from analytics.selectors.churn import churn_risk_customers, customers_with_churn
from analytics.selectors.clv import (
    customers_with_clv,
    expected_lifespan_years,
    high_clv_customers,
    segment_clv,
)
from analytics.selectors.deal_flow import deal_flow, stage_durations
from analytics.selectors.drilldown import metric_deals
from analytics.selectors.periods import month_start
from analytics.selectors.pipeline import open_pipeline
from analytics.selectors.reps import rep_month_numbers, top_reps
from analytics.selectors.revenue import won_revenue
from crm.permissions.analytics import AnalyticsScope
from customers.models import Customer
from sales.models import Sale
from tests.factories import CustomerFactory, SaleActivityFactory, SaleFactory, stage_history

pytestmark = pytest.mark.django_db

NOW = timezone.now()


# The dashboard reads velocity, the funnel and the trend from one deal_flow, and the revenue
# windows and months from one won_revenue; each is checked here on its own.


def _revenue(**kwargs):
    return won_revenue(months=1, **kwargs)["windows"]


def _revenue_by_month(**kwargs):
    return won_revenue(**kwargs)["by_month"]


def _velocity(**kwargs):
    return deal_flow(months=0, **kwargs)["velocity"]


def _funnel(days=365, **kwargs):
    return deal_flow(days=days, months=0, **kwargs)["funnel"]


def _trend(months=6, **kwargs):
    return deal_flow(days=1, months=months, **kwargs)["trend"]


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
    result = segment_clv(user=rep, now=NOW)
    assert (result["customers"], result["by_currency"]) == (0, [])
    assert result["lifespan_years"] == 3.0


def test_clv_of_one_customer_by_hand(rep, teams):
    customer = CustomerFactory(owner=rep)
    _won(customer, "1000", days_ago=730)  # first win two years ago
    _won(customer, "3000", days_ago=10)
    # average 2000 x (2 wins / 2 years = 1 a year) x 3 years = 6000
    (row,) = customers_with_clv(user=rep, lifespan_years=3.0, now=NOW)
    assert row.won_count == 2 and row.won_average == Decimal("2000")
    assert row.clv == pytest.approx(6000, rel=1e-3)


def test_one_recent_win_is_not_extrapolated_beyond_once_a_year(rep, teams):
    customer = CustomerFactory(owner=rep)
    _won(customer, "500", days_ago=5)
    (row,) = customers_with_clv(user=rep, lifespan_years=3.0, now=NOW)
    assert row.purchases_per_year == pytest.approx(1.0) and row.clv == pytest.approx(1500)


def test_a_customer_never_has_a_clv_below_what_it_paid(rep, teams):
    """A single purchase older than the lifespan keeps its value: the customer's lifespan
    is at least its own so far (and so the value does not decay by the second)."""
    old_buyer = CustomerFactory(owner=rep)
    _won(old_buyer, "1000", days_ago=4 * 365)
    (row,) = customers_with_clv(user=rep, lifespan_years=3.0, now=NOW)
    assert row.clv == pytest.approx(1000)
    (top,) = high_clv_customers(user=rep, lifespan_years=3.0, now=NOW)
    assert top.clv == pytest.approx(1000)


def test_deals_without_amount_or_not_won_do_not_count(rep, teams):
    customer = CustomerFactory(owner=rep)
    _won(customer, None, days_ago=100)
    SaleFactory(customer=customer, assigned_to=rep, status="NEW", amount=Decimal("9999"))
    (row,) = customers_with_clv(user=rep, lifespan_years=3.0, now=NOW)
    assert row.won_count == 0 and row.clv == 0


def test_lifespan_is_measured_from_enough_churned_customers(rep, teams, monkeypatch):
    monkeypatch.setattr(clv, "MIN_CHURNED_FOR_LIFESPAN", 2)
    for _ in range(2):
        customer = CustomerFactory(owner=rep, lifecycle_stage=Customer.LifecycleStage.CHURNED)
        _won(customer, "100", days_ago=0, created_days_ago=730)  # active 2 years
    years, source = expected_lifespan_years()
    assert years == pytest.approx(730 / 365.25, rel=1e-3) and "2 churned" in source


def test_lifespan_is_everyones_and_at_least_a_year(rep, other_rep, teams, monkeypatch):
    """Measured over all churned customers, so a customer's CLV is the same for every viewer;
    a short one counts as a year, so a buyer's CLV is never below one purchase."""
    monkeypatch.setattr(clv, "MIN_CHURNED_FOR_LIFESPAN", 2)
    for owner in (rep, other_rep):  # the rep sees only one of them
        customer = CustomerFactory(owner=owner, lifecycle_stage=Customer.LifecycleStage.CHURNED)
        _won(customer, "100", days_ago=0, created_days_ago=73)  # active a fifth of a year
    years, source = expected_lifespan_years()
    assert years == 1.0 and "2 churned" in source and "counted as a year" in source
    buyer = CustomerFactory(owner=rep)
    _won(buyer, "500", days_ago=5)
    rows = {c.pk: c for c in high_clv_customers(user=rep, now=NOW)}
    assert rows[buyer.pk].clv == pytest.approx(500)


def test_high_clv_customers_are_ordered(rep, teams):
    small, big = CustomerFactory(owner=rep), CustomerFactory(owner=rep)
    _won(small, "100", days_ago=400)
    _won(big, "10000", days_ago=400)
    assert [c.pk for c in high_clv_customers(user=rep, now=NOW)] == [big.pk, small.pk]


def test_high_clv_and_the_book_agree_with_the_per_customer_clv(rep, teams):
    """buyers_with_clv groups the won deals alone; its CLV must be customers_with_clv's."""
    customers = [CustomerFactory(owner=rep) for _ in range(4)]
    _won(customers[0], "1000", days_ago=730)
    _won(customers[0], "3000", days_ago=10)
    _won(customers[1], "500", days_ago=5)
    _won(customers[2], "8000", days_ago=200)
    _won(customers[2], None, days_ago=20)  # no amount: not a purchase
    # customers[3] never bought
    expected = {c.pk: c.clv for c in customers_with_clv(user=rep, lifespan_years=3.0,
                                                                  now=NOW)}  # fmt: skip
    top = high_clv_customers(user=rep, limit=2, lifespan_years=3.0, now=NOW)
    assert [c.pk for c in top] == [customers[2].pk, customers[0].pk]
    assert [c.clv for c in top] == pytest.approx([expected[c.pk] for c in top])
    assert top[1].won_count == 2 and top[1].won_average == Decimal("2000")
    book = segment_clv(user=rep, lifespan=(3.0, "given"), now=NOW)
    assert book["customers"] == 4
    (usd,) = book["by_currency"]
    assert usd["currency"] == "USD" and usd["buyers"] == 3
    assert usd["total"] == pytest.approx(sum(expected.values()))
    assert usd["average"] == pytest.approx(sum(expected.values()) / 3)  # per buyer
    subset = Customer.objects.filter(pk__in=[customers[1].pk, customers[3].pk])
    part = segment_clv(user=rep, customers=subset, lifespan=(3.0, "given"), now=NOW)
    assert part["customers"] == 2 and part["by_currency"][0]["buyers"] == 1
    assert part["by_currency"][0]["average"] == pytest.approx(expected[customers[1].pk])


def test_clv_never_adds_currencies(rep, teams):
    """A customer buying in USD and EUR has a CLV in each; the book has one per currency."""
    both, euro_only = CustomerFactory(owner=rep), CustomerFactory(owner=rep)
    _won(both, "1000", days_ago=400)
    _won(both, "900", days_ago=400, currency="EUR")
    _won(euro_only, "5000", days_ago=400, currency="EUR")
    top = high_clv_customers(user=rep, lifespan_years=3.0, now=NOW)
    # per currency: 3 years x (amount / 1.1 years since the first win)
    assert [(c.pk, c.currency) for c in top] == [
        (euro_only.pk, "EUR"), (both.pk, "EUR"), (both.pk, "USD")]  # fmt: skip
    years = 400 / 365.25
    assert [c.clv for c in top] == pytest.approx([5000 / years * 3, 900 / years * 3,
                                                   1000 / years * 3])  # fmt: skip
    (usd,) = customers_with_clv(user=rep, lifespan_years=3.0, now=NOW).filter(pk=both.pk)
    assert usd.won_count == 1 and usd.clv == pytest.approx(1000 / years * 3)
    book = segment_clv(user=rep, lifespan=(3.0, "given"), now=NOW)
    assert [(row["currency"], row["buyers"]) for row in book["by_currency"]] == [
        ("EUR", 2), ("USD", 1)]  # fmt: skip
    assert book["by_currency"][0]["total"] == pytest.approx(5900 / years * 3)


def test_a_segment_of_customers_without_wins_has_no_clv(rep, teams):
    CustomerFactory(owner=rep)
    book = segment_clv(user=rep, lifespan=(3.0, "given"), now=NOW)
    assert (book["customers"], book["by_currency"]) == (1, [])


# Churn ------------------------------------------------------------------------------------


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
    quiet = CustomerFactory(owner=rep, engagement_level="LOW",
                            last_contact_date=(NOW - timedelta(days=90)).date())  # fmt: skip
    busy = CustomerFactory(owner=rep, engagement_level="VIP", last_contact_date=NOW.date())
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
    result = _velocity(user=rep, days=90, now=NOW)
    assert result["opportunities"] == 4 and result["won"] == 2 and result["closed"] == 3
    assert result["win_rate"] == pytest.approx(2 / 3)
    assert float(result["average_size"]) == pytest.approx(2000)
    assert result["cycle_days"] == pytest.approx(20, abs=0.01)
    # 4 x 2/3 x 2000 / 20 = 266.67 per day
    assert result["velocity_per_day"] == pytest.approx(266.67, abs=0.1)


def test_velocity_average_size_leaves_out_won_deals_without_an_amount(rep, teams):
    customer = CustomerFactory(owner=rep)
    _won(customer, "1000", days_ago=10, created_days_ago=20)
    _won(customer, None, days_ago=10, created_days_ago=30)
    result = _velocity(user=rep, days=90, now=NOW)
    assert result["won"] == 2 and float(result["average_size"]) == pytest.approx(1000)
    assert result["cycle_days"] == pytest.approx(15, abs=0.01)  # both count for the cycle


def test_velocity_with_nothing_closed_is_zero(rep, teams):
    result = _velocity(user=rep, days=30, now=NOW)
    assert result["win_rate"] == 0 and result["velocity_per_day"] == 0


def test_stage_durations_from_stage_changes(rep, teams):
    sale = SaleFactory(customer=CustomerFactory(owner=rep), assigned_to=rep, status="CONTACTED")
    stage_history(sale, ("NEW", NOW - timedelta(days=10)), ("CONTACTED", NOW - timedelta(days=4)))
    durations = {row["status"]: row["average_days"] for row in stage_durations(user=rep, now=NOW)}
    assert durations["NEW"] == pytest.approx(6) and durations["CONTACTED"] is None


# Revenue and pipeline ---------------------------------------------------------------------


def test_revenue_windows_per_currency(rep, teams):
    customer = CustomerFactory(owner=rep)
    _won(customer, "100", days_ago=10)
    _won(customer, "200", days_ago=60)
    _won(customer, "400", days_ago=200)
    _won(customer, "800", days_ago=400)  # outside a year
    _won(customer, "50", days_ago=10, currency="EUR")
    rows = {row["currency"]: row for row in _revenue(user=rep, now=NOW)}
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
    SaleFactory(customer=customer, assigned_to=rep, amount=Decimal("50"), status="PROPOSAL",
                expected_close_date=today + timedelta(days=1))  # fmt: skip
    pipeline = open_pipeline(user=rep, closing_days=30, now=NOW)
    (row,) = pipeline["summary"]
    assert (row["deals"], row["value"], row["closing_soon"], row["closing_soon_value"]) == (
        4, Decimal("350"), 2, Decimal("150"))  # fmt: skip
    assert [(row["status"], row["deals"], row["value"]) for row in pipeline["by_stage"]] == [
        ("NEW", 3, Decimal("300")), ("PROPOSAL", 1, Decimal("50"))]  # fmt: skip


def test_top_reps_by_won_revenue(manager, rep, teammate, teams):
    _won(CustomerFactory(owner=rep), "100", days_ago=5)
    _won(CustomerFactory(owner=teammate), "900", days_ago=5)
    top = top_reps(user=manager, now=NOW)
    assert [row["assigned_to"] for row in top] == [teammate.pk, rep.pk]


# Visibility ---------------------------------------------------------------------------------


def test_a_rep_never_counts_another_teams_deals(rep, other_rep, teams):
    _won(CustomerFactory(owner=other_rep), "5000", days_ago=5)
    assert _revenue(user=rep, now=NOW) == []
    assert _velocity(user=rep, now=NOW)["won"] == 0
    assert segment_clv(user=rep, now=NOW)["customers"] == 0


def test_a_manager_counts_only_their_teams(manager, rep, other_rep, teams):
    _won(CustomerFactory(owner=rep), "100", days_ago=5)
    _won(CustomerFactory(owner=other_rep), "5000", days_ago=5)
    (row,) = _revenue(user=manager, now=NOW)
    assert row["last_30"] == Decimal("100")


def test_team_and_rep_scopes(manager, rep, teammate, teams):
    _won(CustomerFactory(owner=rep), "100", days_ago=5)
    _won(CustomerFactory(owner=teammate), "900", days_ago=5)
    (row,) = _revenue(user=manager, scope=AnalyticsScope(rep_id=rep.pk), now=NOW)
    assert row["last_30"] == Decimal("100")
    (row,) = _revenue(user=manager, scope=AnalyticsScope(team_id=teams["mine"].pk), now=NOW)
    assert row["last_30"] == Decimal("1000")


def test_each_metric_is_a_fixed_number_of_queries(rep, teams, django_assert_max_num_queries):
    for index in range(10):
        customer = CustomerFactory(owner=rep)
        _won(customer, "100", days_ago=index + 1)
    with django_assert_max_num_queries(3):
        list(customers_with_clv(user=rep, lifespan_years=3.0, now=NOW))
    with django_assert_max_num_queries(2):
        list(customers_with_churn(user=rep, now=NOW))
    with django_assert_max_num_queries(2):
        _velocity(user=rep, now=NOW)
    with django_assert_max_num_queries(2):
        _revenue(user=rep, now=NOW)


# Calendar months, the funnel, stage durations, velocity trend -------------------------------

MID_MARCH = datetime(2025, 3, 15, 15, 0, tzinfo=UTC)


def test_revenue_by_month_starts_at_midnight_on_the_first(rep, teams, settings):
    settings.TIME_ZONE = "UTC"
    customer = CustomerFactory(owner=rep)
    for closed in (datetime(2024, 12, 31, 23, 0, tzinfo=UTC),  # before the 3 months
                   datetime(2025, 1, 1, 0, 30, tzinfo=UTC),
                   datetime(2025, 3, 15, 9, 0, tzinfo=UTC)):  # fmt: skip
        SaleFactory(customer=customer, status="WON", amount=Decimal("10"), closed_at=closed)
    rows = _revenue_by_month(user=rep, months=3, now=MID_MARCH)
    assert [(row["month"].month, row["amount"]) for row in rows] == [
        (1, Decimal("10")), (3, Decimal("10"))]  # fmt: skip


def test_month_start_goes_back_over_years(settings):
    settings.TIME_ZONE = "UTC"
    assert month_start(MID_MARCH, 3) == datetime(2024, 12, 1, tzinfo=UTC)
    assert month_start(MID_MARCH, 14) == datetime(2024, 1, 1, tzinfo=UTC)


def _deal_created(customer, days_ago, status="NEW", **fields):
    closed = NOW if status in ("WON", "LOST") else None
    sale = SaleFactory(customer=customer, status=status, closed_at=closed, **fields)
    Sale.objects.filter(pk=sale.pk).update(created_at=NOW - timedelta(days=days_ago))
    return sale


def _moves(sale, *statuses):
    stage_history(sale, *((status, NOW - timedelta(days=20 - offset))
                          for offset, status in enumerate(statuses)))  # fmt: skip


def test_funnel_counts_deals_that_got_at_least_that_far(rep, teams):
    customer = CustomerFactory(owner=rep)
    _moves(_deal_created(customer, 10, "PROPOSAL"), "NEW", "PROPOSAL")  # skipped Contacted
    _deal_created(customer, 10, "NEGOTIATION")  # no stage history at all
    _moves(_deal_created(customer, 10, "WON"), "NEW", "CONTACTED", "WON")
    _moves(_deal_created(customer, 10, "LOST", lost_reason="x"), "NEW", "CONTACTED", "LOST")
    _deal_created(customer, 10)  # still new
    _deal_created(customer, 400, "NEGOTIATION")  # created before the period
    funnel = {row["status"]: row["deals"]
              for row in _funnel(user=rep, days=365, now=NOW)}  # fmt: skip
    assert funnel == {"NEW": 5, "CONTACTED": 4, "PROPOSAL": 3, "NEGOTIATION": 2,
                      "WON": 1, "LOST": 1}  # fmt: skip
    reached = metric_deals(user=rep, metric="reached", status="PROPOSAL", days=365,
                                     now=NOW)  # fmt: skip
    assert reached.count() == 3


def test_funnel_with_no_deals_is_all_zero(rep, teams):
    assert {row["deals"] for row in _funnel(user=rep, now=NOW)} == {0}


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
    trend = _trend(user=rep, months=6, now=MID_MARCH)
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
        _trend(user=rep, now=NOW)


def test_churn_and_clv_follow_the_team_and_rep_scope(manager, rep, teammate, teams):
    mine, theirs = CustomerFactory(owner=rep), CustomerFactory(owner=teammate)
    _won(mine, "100", days_ago=400)
    _won(theirs, "100", days_ago=400)
    scoped = high_clv_customers(user=manager, scope=AnalyticsScope(rep_id=rep.pk), now=NOW)
    assert [c.pk for c in scoped] == [mine.pk]
    risky = churn_risk_customers(user=manager, scope=AnalyticsScope(rep_id=teammate.pk),
                                           threshold=0, now=NOW)  # fmt: skip
    assert [c.pk for c in risky] == [theirs.pk]
    team = AnalyticsScope(team_id=teams["mine"].pk)
    assert len(churn_risk_customers(user=manager, scope=team, threshold=0)) == 2


# The records behind a number ----------------------------------------------------------------


def test_metric_deals_are_the_deals_a_number_counts(rep, teams):
    customer = CustomerFactory(owner=rep)
    _won(customer, "100", days_ago=10)
    _won(customer, None, days_ago=10)  # won, no amount: not revenue
    _won(customer, "100", days_ago=60)
    _won(customer, "100", days_ago=10, currency="EUR")
    (usd, eur) = (row for row in _revenue(user=rep, now=NOW))
    revenue_30 = metric_deals(user=rep, metric="revenue", days=30, currency="USD",
                                        now=NOW)  # fmt: skip
    assert revenue_30.count() == 1
    assert sum(sale.amount for sale in revenue_30) == (usd if usd["currency"] == "USD" else eur)[
        "last_30"]  # fmt: skip
    velocity = _velocity(user=rep, days=30, now=NOW)
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


# A rep's own numbers ------------------------------------------------------------------------


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


def test_velocity_never_averages_money_across_currencies(rep, teams):
    customer = CustomerFactory(owner=rep)
    _won(customer, "1000", days_ago=10, created_days_ago=20)  # cycle 10
    _won(customer, "10", days_ago=10, created_days_ago=40, currency="JPY")  # cycle 30
    result = _velocity(user=rep, days=90, now=NOW)
    assert (result["opportunities"], result["won"], result["closed"]) == (2, 2, 2)
    assert result["cycle_days"] == pytest.approx(20)
    assert result["average_size"] is None and result["velocity_per_day"] is None
    rows = {row["currency"]: row for row in result["by_currency"]}
    assert float(rows["USD"]["average_size"]) == pytest.approx(1000)
    # USD: 1 opportunity x 1/1 won x 1000 / 10 days
    assert rows["USD"]["velocity_per_day"] == pytest.approx(100)
    assert rows["JPY"]["velocity_per_day"] == pytest.approx(10 / 30)
