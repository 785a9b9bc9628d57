"""sales.services.forecast: the weekly forecast snapshots and the nightly statistics."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.utils import timezone

from sales.forecasting.probability import probability_model
from sales.models import ForecastCalibration, ForecastSnapshot, Sale, StageWinRate
from sales.services.forecast import forecast_snapshots_take, forecast_statistics_compute
from sales.tasks import forecast_snapshots, forecast_statistics
from tests.sales.forecasting.helpers import (
    NOW,
    TODAY,
    enter_stages,
    make_deal,
)

pytestmark = pytest.mark.django_db


# Snapshots --------------------------------------------------------------------------------


def _snapshots() -> dict[tuple[str, str], ForecastSnapshot]:
    return {(s.scope_key, s.currency): s for s in ForecastSnapshot.objects.all()}


def test_snapshots_per_rep_team_and_everyone_with_their_numbers(rep, teammate, other_rep, teams):
    make_deal(rep, "NEGOTIATION", "1000.00")  # 75: best case
    make_deal(rep, "PROPOSAL", "2000.00", engagement="HIGH",
              expected_close_date=TODAY + timedelta(days=89))  # 60, last day  # fmt: skip
    make_deal(rep, "PROPOSAL", "9999.00", expected_close_date=TODAY + timedelta(days=90))  # after
    make_deal(other_rep, "NEGOTIATION", "400.00", engagement="HIGH", currency="EUR")  # 90: commit

    stored = forecast_snapshots_take(today=TODAY, now=NOW)

    snapshots = _snapshots()
    mine, other = teams["mine"].pk, teams["other"].pk
    assert set(snapshots) == {
        (f"rep:{rep.pk}", "USD"),
        (f"rep:{teammate.pk}", "USD"),  # no deals: a zero row
        (f"rep:{other_rep.pk}", "EUR"),
        (f"team:{mine}", "USD"),
        (f"team:{other}", "EUR"),
        ("all", "USD"),
        ("all", "EUR"),
    }
    assert stored == len(snapshots)
    rep_row = snapshots[(f"rep:{rep.pk}", "USD")]
    assert (rep_row.scope, rep_row.user_id, rep_row.team_id) == ("rep", rep.pk, None)
    assert (rep_row.taken_on, rep_row.period_start, rep_row.period_end) == (
        TODAY,
        TODAY,
        TODAY + timedelta(days=89),
    )
    assert rep_row.deal_count == 2
    assert rep_row.pipeline_value == Decimal("3000.00")
    assert rep_row.weighted_value == Decimal("1950.00")  # 750 + 1200
    assert rep_row.commit_value == Decimal("1000.00")
    assert rep_row.best_case_value == Decimal("2000.00")
    assert snapshots[(f"rep:{teammate.pk}", "USD")].deal_count == 0
    team_row = snapshots[(f"team:{mine}", "USD")]
    assert (team_row.scope, team_row.team_id, team_row.weighted_value) == (
        "team",
        mine,
        Decimal("1950.00"),
    )
    eur = snapshots[("all", "EUR")]
    assert (eur.deal_count, eur.weighted_value, eur.commit_value) == (
        1,
        Decimal("360.00"),
        Decimal("400.00"),
    )


def test_snapshots_are_taken_once_a_day_and_a_rerun_updates_them(rep, teams):
    deal = make_deal(rep, "PROPOSAL", "1000.00")
    forecast_snapshots_take(today=TODAY, now=NOW)
    count = ForecastSnapshot.objects.count()
    Sale.objects.filter(pk=deal.pk).update(amount=Decimal("3000.00"))
    forecast_snapshots_take(today=TODAY, now=NOW)
    assert ForecastSnapshot.objects.count() == count
    row = ForecastSnapshot.objects.get(scope_key=f"rep:{rep.pk}")
    assert row.weighted_value == Decimal("1500.00")
    forecast_snapshots_take(today=TODAY + timedelta(days=7), now=NOW)
    assert ForecastSnapshot.objects.filter(scope_key=f"rep:{rep.pk}").count() == 2


def test_the_weekly_task_takes_todays_snapshots(rep, teams):
    make_deal(rep, "PROPOSAL", "1000.00", now=timezone.now())
    forecast_snapshots()
    forecast_snapshots()
    row = ForecastSnapshot.objects.get(scope_key=f"rep:{rep.pk}")
    assert row.taken_on == timezone.localdate() and row.weighted_value == Decimal("500.00")
    entry = settings.CELERY_BEAT_SCHEDULE["sales-forecast-snapshots"]
    assert entry["task"] == "sales.forecast_snapshots"
    assert entry["schedule"].day_of_week == {1} and entry["schedule"].hour == {3}


# Statistics -------------------------------------------------------------------------------


def _calibration() -> dict[tuple[str, int], tuple[int, int, Decimal]]:
    return {
        (row.scope_key, row.bucket): (row.entry_count, row.won_count, row.predicted_sum)
        for row in ForecastCalibration.objects.all()
    }


def test_statistics_store_the_stage_rates_and_the_calibration_per_scope(
    rep, teammate, other_rep, teams
):
    enter_stages(make_deal(rep, "WON"), "NEW", "PROPOSAL", "WON")  # 10, 50
    enter_stages(make_deal(teammate, "LOST"), "NEW", "LOST")  # 10
    enter_stages(make_deal(other_rep, "LOST", engagement="HIGH"), "NEW", "PROPOSAL", "LOST")
    enter_stages(make_deal(rep, "PROPOSAL"), "NEW", "PROPOSAL")  # open: no outcome yet

    stored = forecast_statistics_compute(now=NOW)

    rates = {row.status: row for row in StageWinRate.objects.all()}
    assert set(rates) == set(Sale.OPEN_STATUSES)  # a row per stage, even one nobody entered
    assert (rates["NEW"].entered, rates["NEW"].won, rates["NEW"].rate) == (3, 1, Decimal("33.33"))
    assert (rates["PROPOSAL"].entered, rates["PROPOSAL"].rate) == (2, Decimal("50.00"))
    assert (rates["CONTACTED"].entered, rates["CONTACTED"].rate) == (0, None)
    assert {(row.closed_deals, row.computed_at) for row in rates.values()} == {(3, NOW)}
    mine, other = teams["mine"].pk, teams["other"].pk
    # Too few closed deals for the historical rates: the base rates make the predictions.
    assert _calibration() == {
        ("all", 10): (3, 1, Decimal("32.0000")),  # 10 + 10 + 12 (HIGH)
        ("all", 50): (1, 1, Decimal("50.0000")),
        ("all", 60): (1, 0, Decimal("60.0000")),
        (f"rep:{rep.pk}", 10): (1, 1, Decimal("10.0000")),
        (f"rep:{rep.pk}", 50): (1, 1, Decimal("50.0000")),
        (f"rep:{teammate.pk}", 10): (1, 0, Decimal("10.0000")),
        (f"rep:{other_rep.pk}", 10): (1, 0, Decimal("12.0000")),
        (f"rep:{other_rep.pk}", 60): (1, 0, Decimal("60.0000")),
        (f"team:{mine}", 10): (2, 1, Decimal("20.0000")),
        (f"team:{mine}", 50): (1, 1, Decimal("50.0000")),
        (f"team:{other}", 10): (1, 0, Decimal("12.0000")),
        (f"team:{other}", 60): (1, 0, Decimal("60.0000")),
    }
    assert stored == {"stage_win_rates": 4, "calibration_rows": 12, "snapshot_actuals": 0}
    assert {row.computed_at for row in ForecastCalibration.objects.all()} == {NOW}


def test_statistics_store_what_was_won_on_every_ended_snapshot(rep, teammate, other_rep, teams):
    taken = NOW - timedelta(days=100)  # the period ended 11 days before NOW
    forecast_snapshots_take(now=taken)
    make_deal(rep, "PROPOSAL", "999.00", now=NOW)  # after: another period's snapshot
    forecast_snapshots_take(now=NOW)
    closed = taken + timedelta(days=20)
    make_deal(rep, "WON", "1000.00", closed_at=closed)
    make_deal(teammate, "WON", "200.00", closed_at=closed)
    make_deal(other_rep, "WON", "50.00", closed_at=closed)
    make_deal(other_rep, "WON", "70.00", currency="EUR", closed_at=closed)
    make_deal(rep, "LOST", "5000.00", closed_at=closed)
    make_deal(rep, "WON", "3000.00", closed_at=taken + timedelta(days=95))  # after

    stored = forecast_statistics_compute(now=NOW)

    ended = ForecastSnapshot.objects.filter(taken_on=timezone.localdate(taken))
    actuals = {(s.scope_key, s.currency): (s.won_count, s.actual_value) for s in ended}
    mine, other = teams["mine"].pk, teams["other"].pk
    assert actuals == {
        (f"rep:{rep.pk}", "USD"): (1, Decimal("1000.00")),
        (f"rep:{teammate.pk}", "USD"): (1, Decimal("200.00")),
        (f"rep:{other_rep.pk}", "USD"): (1, Decimal("50.00")),
        (f"team:{mine}", "USD"): (2, Decimal("1200.00")),
        (f"team:{other}", "USD"): (1, Decimal("50.00")),  # no EUR snapshot: not compared
        ("all", "USD"): (3, Decimal("1250.00")),
    }
    assert stored["snapshot_actuals"] == len(actuals)
    running = ForecastSnapshot.objects.filter(taken_on=TODAY)
    assert not running.filter(actual_computed_at__isnull=False).exists()


def test_statistics_replace_the_previous_rows(rep, other_rep, teams):
    enter_stages(make_deal(rep, "WON"), "NEW", "WON")
    forecast_statistics_compute(now=NOW)
    Sale.objects.all().delete()
    enter_stages(make_deal(other_rep, "LOST"), "NEW", "LOST")
    later = NOW + timedelta(days=1)
    forecast_statistics_compute(now=later)
    forecast_statistics_compute(now=later)  # twice: the same rows
    assert set(_calibration()) == {
        ("all", 10),
        (f"rep:{other_rep.pk}", 10),
        (f"team:{teams['other'].pk}", 10),
    }
    assert StageWinRate.objects.count() == 4
    assert set(StageWinRate.objects.values_list("computed_at", flat=True)) == {later}
    assert StageWinRate.objects.get(status="NEW").won == 0


def test_statistics_with_no_closed_deals_say_when_they_were_computed(rep):
    make_deal(rep, "NEW")
    forecast_statistics_compute(now=NOW)
    assert ForecastCalibration.objects.count() == 0
    assert set(StageWinRate.objects.values_list("entered", "rate", "closed_deals")) == {
        (0, None, 0)
    }
    model = probability_model()
    assert model.computed_at == NOW and not model.historical


def test_the_nightly_task_computes_the_statistics(rep, teams):
    enter_stages(make_deal(rep, "WON"), "NEW", "WON")
    forecast_statistics()
    forecast_statistics()
    assert ForecastCalibration.objects.filter(scope_key=f"rep:{rep.pk}").count() == 1
    assert forecast_statistics.name == "sales.forecast_statistics"
    entry = settings.CELERY_BEAT_SCHEDULE["sales-forecast-statistics"]
    assert entry["task"] == "sales.forecast_statistics"
    assert entry["schedule"].hour == {3} and entry["schedule"].day_of_week == set(range(7))
