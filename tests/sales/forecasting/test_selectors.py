"""sales.forecasting.selectors: the forecast of a scope, forecast vs actual, calibration."""

from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from django.db.models.functions import Coalesce
from django.utils import timezone

from crm.errors import PermissionDenied, ValidationFailed
from crm.models import Team
from crm.permissions.forecast import forecast_scopes
from sales.forecasting.probability import win_probability_expression
from sales.forecasting.selectors import calibration, forecast, forecast_period, forecast_vs_actual
from sales.models import ForecastSnapshot, Sale
from sales.services.forecast import forecast_snapshots_take, forecast_statistics_compute
from tests.factories import CustomerFactory, SaleFactory
from tests.sales.forecasting.helpers import (
    NOW,
    TODAY,
    closed_history,
    enter_stages,
    make_deal,
    usd_row,
)

pytestmark = pytest.mark.django_db


# The forecast -----------------------------------------------------------------------------


@pytest.fixture
def forecast_fixture(rep, other_rep, teams):
    """Period "30" from TODAY: 2026-03-10 to 2026-04-08, both included."""
    make_deal(rep, "PROPOSAL", "1000.00", expected_close_date=date(2026, 3, 15))  # 50: best case
    make_deal(rep, "NEGOTIATION", "2000.00", engagement="HIGH",
              expected_close_date=date(2026, 3, 31))  # 90: commit  # fmt: skip
    make_deal(rep, "NEW", "500.00", engagement="LOW", age_days=100,
              expected_close_date=date(2026, 4, 2))  # 6.4: pipeline  # fmt: skip
    make_deal(rep, "CONTACTED", None, expected_close_date=date(2026, 4, 5))  # 25, no amount
    make_deal(rep, "PROPOSAL", "333.33", probability=70,
              expected_close_date=date(2026, 4, 8))  # by hand: commit  # fmt: skip
    # Not in the forecast:
    make_deal(rep, "PROPOSAL", "10000.00", expected_close_date=date(2026, 4, 9))  # after
    make_deal(rep, "PROPOSAL", "10000.00", expected_close_date=date(2026, 3, 9))  # before
    make_deal(rep, "PROPOSAL", "10000.00", expected_close_date=None)  # undated
    make_deal(rep, "WON", "10000.00", expected_close_date=date(2026, 3, 20))  # closed
    make_deal(other_rep, "PROPOSAL", "10000.00", expected_close_date=date(2026, 3, 20))
    # Another rep's deal on a customer `rep` owns: visible to rep, but not rep's forecast.
    SaleFactory(customer=CustomerFactory(owner=rep), assigned_to=other_rep, amount=10000,
                status="NEW", expected_close_date=date(2026, 3, 20))  # fmt: skip


def test_forecast_sums_match_the_hand_computed_fixture(rep, forecast_fixture):
    result = forecast(user=rep, scope="me", period="30", today=TODAY, now=NOW)
    assert result["period"].start == date(2026, 3, 10)
    assert result["period"].end == date(2026, 4, 8)
    assert result["undated_count"] == 1
    assert [row["currency"] for row in result["currencies"]] == ["USD"]
    usd = usd_row(result)
    assert usd["deal_count"] == 5
    assert usd["pipeline_value"] == Decimal("3833.33")
    # 500 + 1800 + 32 + 0 + 233.331
    assert usd["weighted_value"] == Decimal("2565.33")
    categories = usd["categories"]
    assert (categories["commit"]["count"], categories["commit"]["value"]) == (2, Decimal("2333.33"))
    assert (categories["best_case"]["count"], categories["best_case"]["value"]) == (
        1,
        Decimal("1000.00"),
    )
    assert (categories["pipeline"]["count"], categories["pipeline"]["value"]) == (
        2,
        Decimal("500.00"),
    )
    weighted = {key: category["weighted"] for key, category in categories.items()}
    assert weighted == {
        "commit": Decimal("2033.33"),  # 1800 + 233.331
        "best_case": Decimal("500.00"),
        "pipeline": Decimal("32.00"),
    }
    assert usd["commit_value"] == Decimal("2333.33")
    assert usd["best_case_value"] == Decimal("1000.00")
    months = [
        (m["month"], m["deal_count"], m["pipeline_value"], m["weighted_value"])
        for m in usd["months"]
    ]
    assert months == [
        (date(2026, 3, 1), 2, Decimal("3000.00"), Decimal("2300.00")),
        (date(2026, 4, 1), 3, Decimal("833.33"), Decimal("265.33")),
    ]


def test_forecast_keeps_each_currency_apart(rep):
    make_deal(rep, "PROPOSAL", "1000.00")
    make_deal(rep, "NEGOTIATION", "400.00", currency="EUR")
    make_deal(rep, "NEW", "100.00", currency="EUR")
    result = forecast(user=rep, scope="me", period="30", today=TODAY, now=NOW)
    rows = {row["currency"]: row for row in result["currencies"]}
    assert set(rows) == {"USD", "EUR"}
    assert (rows["USD"]["deal_count"], rows["USD"]["pipeline_value"]) == (1, Decimal("1000.00"))
    assert rows["USD"]["weighted_value"] == Decimal("500.00")
    assert (rows["EUR"]["deal_count"], rows["EUR"]["pipeline_value"]) == (2, Decimal("500.00"))
    assert rows["EUR"]["weighted_value"] == Decimal("310.00")  # 300 + 10
    assert [row["currency"] for row in result["currencies"]] == ["EUR", "USD"]  # most deals
    assert result["deal_count"] == 3


def test_periods_are_30_60_90_days_from_today_or_the_calendar_quarter():
    assert forecast_period("60", today=TODAY).end == date(2026, 5, 8)
    assert forecast_period(90, today=TODAY).end == date(2026, 6, 7)
    quarter = forecast_period("quarter", today=TODAY)
    assert (quarter.start, quarter.end) == (date(2026, 1, 1), date(2026, 3, 31))
    december = forecast_period("quarter", today=date(2026, 12, 31))
    assert (december.start, december.end) == (date(2026, 10, 1), date(2026, 12, 31))
    with pytest.raises(ValidationFailed):
        forecast_period("45", today=TODAY)


def test_forecast_of_grouped_deals_equals_each_deals_probability_in_sql(rep, other_rep):
    """The forecast applies the rule to deals grouped by its inputs; the per-deal SQL
    expression gives the same categories and weighted value, to the cent."""
    closed_history(200, other_rep)
    forecast_statistics_compute()  # historical rates: NEW 30%, PROPOSAL 60%
    amounts = iter(["1000.00", "333.33", "1234.57", "99.99", "5000.00", "0.01", None])
    for status in Sale.OPEN_STATUSES:
        for age_days in (10, 120):
            for engagement in ("LOW", "MEDIUM", "HIGH", "VIP"):
                amount = next(amounts, "250.50")
                make_deal(rep, status, amount, engagement=engagement, age_days=age_days)
    for probability in (0, 39, 40, 69, 70, 100):
        make_deal(rep, "NEW", "777.77", probability=probability)
    usd = usd_row(forecast(user=rep, scope="me", period="30", today=TODAY, now=NOW))

    deals = Sale.objects.filter(assigned_to=rep).annotate(
        p=win_probability_expression(NOW), value=Coalesce("amount", Decimal(0))
    )
    expected = {"commit": Decimal(0), "best_case": Decimal(0), "pipeline": Decimal(0)}
    weighted = Decimal(0)
    for deal in deals:
        key = "commit" if deal.p >= 70 else "best_case" if deal.p >= 40 else "pipeline"
        expected[key] += deal.value
        weighted += deal.value * deal.p / 100
    assert usd["deal_count"] == deals.count() == 38
    assert usd["weighted_value"] == weighted.quantize(Decimal("0.01"))
    assert {key: row["value"] for key, row in usd["categories"].items()} == expected


def test_quarter_forecast_includes_the_past_days_of_the_quarter(rep):
    make_deal(rep, "PROPOSAL", "1000.00", expected_close_date=date(2026, 1, 5))
    make_deal(rep, "PROPOSAL", "1000.00", expected_close_date=date(2026, 4, 1))
    result = forecast(user=rep, scope="me", period="quarter", today=TODAY, now=NOW)
    assert usd_row(result)["deal_count"] == 1


# Visibility -------------------------------------------------------------------------------


def test_a_reps_forecast_never_includes_another_reps_deals(rep, other_rep, forecast_fixture):
    result = forecast(user=rep, scope="me", period="30", today=TODAY, now=NOW)
    assert usd_row(result)["pipeline_value"] == Decimal("3833.33")  # no 10,000 deal of other_rep
    other = forecast(user=other_rep, scope="me", period="30", today=TODAY, now=NOW)
    assert usd_row(other)["deal_count"] == 2
    for scope in ("all", "1", str(Team.objects.get(name="North").pk)):
        with pytest.raises(PermissionDenied):
            forecast(user=rep, scope=scope, period="30", today=TODAY)


def test_a_managers_forecast_covers_only_their_teams(
    manager, rep, teammate, other_rep, teams, admin_user
):
    make_deal(rep, "PROPOSAL", "1000.00")
    make_deal(teammate, "PROPOSAL", "2000.00")
    make_deal(manager, "PROPOSAL", "4000.00")
    make_deal(other_rep, "PROPOSAL", "8000.00")
    SaleFactory(assigned_to=None, amount=16000, status="PROPOSAL",
                expected_close_date=TODAY + timedelta(days=3))  # fmt: skip

    def pipeline(user, scope):
        result = forecast(user=user, scope=scope, period="30", today=TODAY, now=NOW)
        return usd_row(result)["pipeline_value"] if result["currencies"] else Decimal(0)

    mine, other = teams["mine"].pk, teams["other"].pk
    assert pipeline(manager, mine) == Decimal("3000.00")
    assert pipeline(manager, "all") == Decimal("7000.00")  # the team and the manager's own
    assert pipeline(manager, "me") == Decimal("4000.00")
    with pytest.raises(PermissionDenied):
        pipeline(manager, other)
    assert pipeline(admin_user, other) == Decimal("8000.00")
    assert pipeline(admin_user, "all") == Decimal("31000.00")  # unassigned deals too
    assert [s.key for s in forecast_scopes(manager)] == ["me", str(mine), "all"]


# Forecast vs actual -----------------------------------------------------------------------


def _snapshot(key, taken_on, *, weighted, currency="USD", **fields):
    scope = "all" if key == "all" else key.split(":")[0]
    return ForecastSnapshot.objects.create(
        scope=scope, scope_key=key, taken_on=taken_on, period_start=taken_on,
        period_end=taken_on + timedelta(days=89), currency=currency,
        weighted_value=Decimal(weighted), **fields,
    )  # fmt: skip


def _won(owner, amount, closed_on, currency="USD"):
    closed_at = timezone.make_aware(datetime.combine(closed_on, datetime.min.time()))
    return make_deal(
        owner, "WON", amount, currency=currency, closed_at=closed_at + timedelta(hours=9)
    )


def test_forecast_vs_actual_compares_ended_periods_with_won_deals(rep, other_rep, teams):
    start = date(2025, 11, 3)  # period to 2026-01-31
    _snapshot(f"rep:{rep.pk}", start, weighted="5000.00", deal_count=4)
    _snapshot(f"rep:{rep.pk}", start, weighted="900.00", currency="EUR")
    _snapshot(f"rep:{rep.pk}", date(2026, 1, 5), weighted="7000.00")  # not over yet
    _snapshot(f"rep:{other_rep.pk}", start, weighted="1.00")
    _won(rep, "3000.00", date(2025, 11, 3))  # first day
    _won(rep, "1500.00", date(2026, 1, 31))  # last day
    _won(rep, "800.00", date(2026, 2, 1))  # after the period
    _won(rep, "600.00", date(2025, 12, 1), currency="EUR")
    _won(other_rep, "10000.00", date(2025, 12, 1))
    make_deal(rep, "LOST", "10000.00", closed_at=NOW - timedelta(days=60))
    assert forecast_vs_actual(user=rep, scope="me", today=TODAY) == []  # not computed yet
    forecast_statistics_compute(now=NOW)

    rows = forecast_vs_actual(user=rep, scope="me", today=TODAY)

    assert [(r["taken_on"], r["currency"]) for r in rows] == [(start, "EUR"), (start, "USD")]
    eur, usd = rows
    assert (usd["weighted_value"], usd["actual_value"], usd["won_count"]) == (
        Decimal("5000.00"),
        Decimal("4500.00"),
        2,
    )
    assert usd["difference"] == Decimal("-500.00") and usd["deal_count"] == 4
    assert (eur["actual_value"], eur["difference"]) == (Decimal("600.00"), Decimal("-300.00"))


def test_forecast_vs_actual_of_all_my_teams_adds_up_the_reps(manager, rep, teammate, teams):
    start = date(2025, 11, 3)
    _snapshot(f"rep:{rep.pk}", start, weighted="1000.00")
    _snapshot(f"rep:{teammate.pk}", start, weighted="2000.00")
    _snapshot(f"team:{teams['mine'].pk}", start, weighted="3000.00")
    _won(teammate, "2500.00", date(2025, 12, 24))
    forecast_statistics_compute(now=NOW)
    (row,) = forecast_vs_actual(user=manager, scope="all", today=TODAY)
    assert (row["weighted_value"], row["actual_value"]) == (Decimal("3000.00"), Decimal("2500.00"))
    (team,) = forecast_vs_actual(user=manager, scope=teams["mine"].pk, today=TODAY)
    assert (team["weighted_value"], team["actual_value"]) == (
        Decimal("3000.00"),
        Decimal("2500.00"),
    )


def test_snapshot_then_actuals_end_to_end(rep, teams):
    taken = timezone.make_aware(datetime(2025, 11, 3, 3, 0))
    make_deal(rep, "PROPOSAL", "2000.00", now=taken, expected_close_date=date(2025, 12, 1))
    forecast_snapshots_take(now=taken)
    _won(rep, "1200.00", date(2025, 12, 2))
    forecast_statistics_compute(now=NOW)
    (row,) = forecast_vs_actual(user=rep, scope="me", today=TODAY)
    assert (row["weighted_value"], row["actual_value"], row["difference"]) == (
        Decimal("1000.00"),
        Decimal("1200.00"),
        Decimal("200.00"),
    )


def test_actuals_are_stored_once_a_period_is_over_and_refreshed_for_a_while(rep, teams):
    ended_long_ago = _snapshot(f"rep:{rep.pk}", date(2025, 6, 2), weighted="100.00")
    ended_lately = _snapshot(f"rep:{rep.pk}", date(2025, 11, 3), weighted="100.00")
    running = _snapshot(f"rep:{rep.pk}", date(2026, 1, 5), weighted="100.00")
    _won(rep, "700.00", date(2025, 6, 20))
    _won(rep, "300.00", date(2025, 12, 1))
    forecast_statistics_compute(now=NOW)
    for snapshot in (ended_long_ago, ended_lately, running):
        snapshot.refresh_from_db()
    assert (ended_long_ago.won_count, ended_long_ago.actual_value) == (1, Decimal("700.00"))
    assert (ended_lately.won_count, ended_lately.actual_value) == (1, Decimal("300.00"))
    assert running.actual_computed_at is None  # its period is not over
    # Closed late, with a close date in the past: the periods that ended in the last 120
    # days take them in; older ones keep what they were given.
    _won(rep, "50.00", date(2025, 6, 21))
    _won(rep, "20.00", date(2025, 12, 2))
    forecast_statistics_compute(now=NOW + timedelta(days=1))
    for snapshot in (ended_long_ago, ended_lately):
        snapshot.refresh_from_db()
    assert ended_long_ago.actual_value == Decimal("700.00")
    assert ended_lately.actual_value == Decimal("320.00")
    rows = forecast_vs_actual(user=rep, scope="me", today=TODAY)
    assert [row["actual_value"] for row in rows] == [Decimal("320.00"), Decimal("700.00")]


def test_forecast_vs_actual_of_another_team_is_refused(rep, other_rep, teams):
    _snapshot(f"rep:{other_rep.pk}", date(2025, 11, 3), weighted="1.00")
    _snapshot(f"team:{teams['other'].pk}", date(2025, 11, 3), weighted="1.00")
    forecast_statistics_compute(now=NOW)
    assert forecast_vs_actual(user=rep, scope="me", today=TODAY) == []
    for scope in ("all", teams["other"].pk):
        with pytest.raises(PermissionDenied):
            forecast_vs_actual(user=rep, scope=scope, today=TODAY)


# Calibration ------------------------------------------------------------------------------


def _table(rows):
    return [(r["bucket"], r["entries"], r["won"], r["predicted"], r["actual"]) for r in rows]


def test_calibration_buckets_predictions_at_each_stage_entry(rep, other_rep):
    enter_stages(make_deal(rep, "WON"), "NEW", "CONTACTED", "PROPOSAL", "WON")  # 10, 25, 50
    enter_stages(make_deal(rep, "LOST"), "NEW", "CONTACTED", "LOST")  # 10, 25
    enter_stages(make_deal(rep, "LOST"), "NEW", "LOST")  # 10
    enter_stages(make_deal(rep, "WON", engagement="HIGH"), "NEGOTIATION", "WON")  # 90
    # Created 100 days before entering PROPOSAL: 50 x 0.8.
    enter_stages(make_deal(rep, "LOST", age_days=130), "PROPOSAL", "LOST")
    enter_stages(make_deal(rep, "PROPOSAL"), "NEW", "PROPOSAL")  # still open: no outcome yet
    enter_stages(make_deal(other_rep, "LOST"), "NEGOTIATION", "LOST")  # not rep's
    forecast_statistics_compute()

    rows = calibration(user=rep, scope="me")

    assert _table(rows) == [
        (10, 3, 1, Decimal("10.0"), Decimal("33.3")),
        (20, 2, 1, Decimal("25.0"), Decimal("50.0")),
        (40, 1, 0, Decimal("40.0"), Decimal("0.0")),
        (50, 1, 1, Decimal("50.0"), Decimal("100.0")),
        (90, 1, 1, Decimal("90.0"), Decimal("100.0")),
    ]
    assert rows[0]["bucket_end"] == 19


def test_calibration_is_read_as_stored_until_the_next_computation(rep):
    assert calibration(user=rep, scope="me") == []  # never computed
    enter_stages(make_deal(rep, "WON"), "NEW", "WON")
    forecast_statistics_compute()
    assert _table(calibration(user=rep, scope="me")) == [
        (10, 1, 1, Decimal("10.0"), Decimal("100.0"))
    ]
    enter_stages(make_deal(rep, "LOST"), "NEW", "LOST")
    assert calibration(user=rep, scope="me")[0]["entries"] == 1
    forecast_statistics_compute()
    assert _table(calibration(user=rep, scope="me")) == [
        (10, 2, 1, Decimal("10.0"), Decimal("50.0"))
    ]


def test_calibration_of_a_team_and_of_all_my_teams_adds_up_their_reps(
    manager, rep, teammate, other_rep, teams, admin_user
):
    enter_stages(make_deal(rep, "WON"), "NEW", "PROPOSAL", "WON")  # 10, 50
    enter_stages(make_deal(teammate, "LOST", engagement="LOW"), "NEW", "LOST")  # 8
    enter_stages(make_deal(manager, "WON", engagement="HIGH"), "PROPOSAL", "WON")  # 60
    enter_stages(make_deal(other_rep, "LOST"), "NEW", "LOST")  # 10, another team
    enter_stages(SaleFactory(assigned_to=None, status="LOST", closed_at=NOW), "NEW", "LOST")
    forecast_statistics_compute()

    team = calibration(user=manager, scope=teams["mine"].pk)
    assert _table(team) == [
        (0, 1, 0, Decimal("8.0"), Decimal("0.0")),
        (10, 1, 1, Decimal("10.0"), Decimal("100.0")),
        (50, 1, 1, Decimal("50.0"), Decimal("100.0")),
    ]
    everything_mine = calibration(user=manager, scope="all")  # the team and the manager
    assert _table(everything_mine) == [
        (0, 1, 0, Decimal("8.0"), Decimal("0.0")),
        (10, 1, 1, Decimal("10.0"), Decimal("100.0")),
        (50, 1, 1, Decimal("50.0"), Decimal("100.0")),
        (60, 1, 1, Decimal("60.0"), Decimal("100.0")),
    ]
    everyone = calibration(user=admin_user, scope="all")  # other teams and unassigned too
    assert _table(everyone)[1] == (10, 3, 1, Decimal("10.0"), Decimal("33.3"))
    other = calibration(user=admin_user, scope=teams["other"].pk)
    assert _table(other) == [(10, 1, 0, Decimal("10.0"), Decimal("0.0"))]


def test_a_rep_cannot_see_another_teams_calibration(rep, other_rep, teams):
    enter_stages(make_deal(other_rep, "WON"), "NEW", "WON")
    forecast_statistics_compute()
    assert calibration(user=rep, scope="me") == []
    for scope in ("all", teams["other"].pk, teams["mine"].pk):
        with pytest.raises(PermissionDenied):
            calibration(user=rep, scope=scope)
    assert calibration(user=other_rep, scope="me")[0]["won"] == 1


def test_calibration_uses_the_historical_rates_once_in_force(rep, other_rep):
    closed_history(200, other_rep)
    enter_stages(make_deal(rep, "WON"), "NEW", "PROPOSAL", "WON")
    forecast_statistics_compute()
    # NEW: 61 won of 201 = 30.35%; PROPOSAL: 61 of 101 = 60.40% (not the base 10% and 50%).
    assert _table(calibration(user=rep, scope="me")) == [
        (30, 1, 1, Decimal("30.4"), Decimal("100.0")),
        (60, 1, 1, Decimal("60.4"), Decimal("100.0")),
    ]
