"""sales.services.forecast: the weekly forecast snapshots."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.utils import timezone

from sales.models import ForecastSnapshot, Sale
from sales.services.forecast import forecast_snapshots_take
from sales.tasks import forecast_snapshots
from tests.sales.forecasting.helpers import (
    NOW,
    TODAY,
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
