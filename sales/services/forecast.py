"""The forecast's stored numbers: the weekly snapshots (forecast vs actual compares them
with what was won) and the nightly statistics (stage-to-win rates, calibration and what
each ended snapshot's scope actually won)."""

from datetime import date, datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from crm.models import Team
from crm.roles import REP_GROUP
from sales.forecasting.probability import ZERO, base_rates, model_of, probability_model
from sales.forecasting.selectors import (
    SNAPSHOT_DAYS,
    add_up,
    category_rows,
    empty_totals,
    forecast_period,
)
from sales.forecasting.statistics import (
    SCOPE_GROUPS,
    calibration_buckets,
    closed_deal_count,
    stage_win_counts,
    won_in_period,
)
from sales.models import ForecastCalibration, ForecastSnapshot, Sale, StageWinRate

SNAPSHOT_NUMBERS = [
    "deal_count",
    "pipeline_value",
    "weighted_value",
    "commit_value",
    "best_case_value",
]


def forecast_snapshots_take(*, today: date | None = None, now: datetime | None = None) -> int:
    """Store the next 90 days' forecast per rep ("rep:<id>"), per team ("team:<id>") and
    for everyone ("all"), one row per currency; returns how many rows were stored. Taking
    it again the same day updates that day's rows (the unique constraint), so the weekly
    task can safely run twice.

    Active reps and team members with no deal in the period, and teams without one, get a
    zero row in the default currency: forecast vs actual then has their forecast of nothing.
    The probabilities are the page's: the stage rates of the last nightly statistics.
    """
    now = now or timezone.now()
    today = today or timezone.localdate(now)
    period = forecast_period(str(SNAPSHOT_DAYS), today=today)
    dated = Sale.objects.open().filter(expected_close_date__range=(period.start, period.end))
    model = probability_model()
    team = SCOPE_GROUPS["team"]
    per_rep = add_up(
        category_rows(
            dated.filter(assigned_to__isnull=False), "assigned_to", "currency", now=now, model=model
        ),
        lambda row: (row["assigned_to"], row["currency"]),
    )
    per_team = add_up(
        category_rows(
            dated.filter(**{f"{team}__isnull": False}), team, "currency", now=now, model=model
        ),
        lambda row: (row[team], row["currency"]),
    )
    everyone = add_up(
        category_rows(dated, "currency", now=now, model=model), lambda row: row["currency"]
    )

    Scope = ForecastSnapshot.Scope
    common = {"taken_on": today, "period_start": period.start, "period_end": period.end}
    rows: dict[tuple[str, str], ForecastSnapshot] = {}

    def add(scope: str, key: str, currency: str, totals: dict, **owner) -> None:
        numbers = {name: totals[name] for name in SNAPSHOT_NUMBERS}
        rows[(key, currency)] = ForecastSnapshot(
            scope=scope, scope_key=key, currency=currency, **owner, **common, **numbers
        )

    for (pk, currency), totals in per_rep.items():
        add(Scope.REP, f"rep:{pk}", currency, totals, user_id=pk)
    for (pk, currency), totals in per_team.items():
        add(Scope.TEAM, f"team:{pk}", currency, totals, team_id=pk)
    for currency, totals in everyone.items():
        add(Scope.ALL, "all", currency, totals)

    zero, currency = empty_totals(), settings.DEFAULT_CURRENCY
    covered = {key for key, _ in rows}
    reps = (
        get_user_model()
        .objects.filter(is_active=True)
        .filter(Q(team_memberships__isnull=False) | Q(groups__name=REP_GROUP))
        .values_list("pk", flat=True)
        .distinct()
    )
    for pk in reps:
        if f"rep:{pk}" not in covered:
            add(Scope.REP, f"rep:{pk}", currency, zero, user_id=pk)
    for pk in Team.objects.values_list("pk", flat=True):
        if f"team:{pk}" not in covered:
            add(Scope.TEAM, f"team:{pk}", currency, zero, team_id=pk)
    if "all" not in covered:
        add(Scope.ALL, "all", currency, zero)

    with transaction.atomic():
        saved = ForecastSnapshot.objects.bulk_create(
            rows.values(),
            update_conflicts=True,
            unique_fields=["scope_key", "taken_on", "period_start", "currency"],
            update_fields=["scope", "user", "team", "period_end", *SNAPSHOT_NUMBERS],
            batch_size=1000,
        )
        # A scope or currency stored by an earlier run today that has no deals now.
        ForecastSnapshot.objects.filter(taken_on=today, period_start=period.start).exclude(
            pk__in=[snapshot.pk for snapshot in saved]
        ).delete()
    return len(saved)


def _statistics_lock() -> None:
    """One computation at a time (two would each delete and insert the rows); readers are
    not blocked, they see the previous rows until the new ones are committed. SQLite (the
    embedded development setup) writes one transaction at a time anyway."""
    if connection.vendor == "postgresql":
        table = connection.ops.quote_name(StageWinRate._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(f"LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE")


def forecast_statistics_compute(*, now: datetime | None = None) -> dict[str, int]:
    """The forecast statistics over all history, stored as rows the pages read:
    - StageWinRate, per open stage: of the closed deals that ever entered it, how many, how
      many won and the rate, with the number of closed deals (the rates are used from
      HISTORY_MIN_CLOSED on);
    - ForecastCalibration, per scope key the snapshots use ("rep:<id>" for every owner of a
      closed deal, "team:<id>", "all") and 10-point band: the calibration of the model
      these rates make;
    - on the snapshots whose period is over, what was actually won in it (see
      _snapshot_actuals_store).
    The previous rows are replaced in one transaction, so running it twice is harmless.
    Returns how many rows of each were stored."""
    now = now or timezone.now()
    with transaction.atomic():
        _statistics_lock()
        closed = closed_deal_count()
        counts = stage_win_counts()
        rates = [
            StageWinRate(
                status=status,
                entered=counts.get(status, {}).get("entered", 0),
                won=counts.get(status, {}).get("won", 0),
                rate=counts.get(status, {}).get("rate"),
                closed_deals=closed,
                computed_at=now,
            )
            for status in Sale.OPEN_STATUSES
        ]
        historical = {row.status: row.rate for row in rates if row.rate is not None}
        model = model_of(base_rates(), historical, closed_deals=closed, computed_at=now)

        def bucket_row(key: str, row: dict) -> ForecastCalibration:
            return ForecastCalibration(
                scope_key=key,
                bucket=row["bucket"],
                entry_count=row["entries"],
                won_count=row["won"],
                predicted_sum=row["predicted_sum"],
                computed_at=now,
            )

        calibration = [bucket_row("all", row) for row in calibration_buckets(model=model)]
        for prefix, group in SCOPE_GROUPS.items():
            calibration += [
                bucket_row(f"{prefix}:{row[f'sale__{group}']}", row)
                for row in calibration_buckets(model=model, group=f"sale__{group}")
            ]

        StageWinRate.objects.all().delete()
        StageWinRate.objects.bulk_create(rates)
        ForecastCalibration.objects.all().delete()
        ForecastCalibration.objects.bulk_create(calibration, batch_size=1000)
        actuals = _snapshot_actuals_store(now=now)
    return {
        "stage_win_rates": len(rates),
        "calibration_rows": len(calibration),
        "snapshot_actuals": actuals,
    }


# A deal closed late (its close date set in the past) still counts for a period this long
# after it ended; older periods keep the actuals they were last given.
ACTUALS_REFRESH_DAYS = 120


def _snapshot_actuals_store(*, now: datetime) -> int:
    """What was actually won in each snapshot's period (its scope's WON deals in its
    currency closed in the period), stored on the snapshot once the period is over: on
    those that have none yet, and again on those that ended in the last
    ACTUALS_REFRESH_DAYS. Returns how many snapshots were given their actuals."""
    today = timezone.localdate(now)
    due = ForecastSnapshot.objects.filter(period_end__lt=today).filter(
        Q(actual_computed_at__isnull=True)
        | Q(period_end__gte=today - timedelta(days=ACTUALS_REFRESH_DAYS))
    )
    snapshots = list(due.only("scope_key", "currency", "period_start", "period_end").order_by("pk"))
    periods = {(snapshot.period_start, snapshot.period_end) for snapshot in snapshots}
    won = {period: won_in_period(*period) for period in sorted(periods)}
    for snapshot in snapshots:
        period = (snapshot.period_start, snapshot.period_end)
        row = won[period].get((snapshot.scope_key, snapshot.currency), {})
        snapshot.won_count = row.get("won_count", 0)
        snapshot.actual_value = row.get("actual_value", ZERO)
        snapshot.actual_computed_at = now
    ForecastSnapshot.objects.bulk_update(
        snapshots, ["won_count", "actual_value", "actual_computed_at"], batch_size=1000
    )
    return len(snapshots)
