"""The weekly forecast snapshots (forecast vs actual compares them with what was won)."""

from datetime import date, datetime

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from crm.models import Team
from crm.roles import REP_GROUP
from sales.forecasting.probability import probability_model
from sales.forecasting.selectors import (
    SNAPSHOT_DAYS,
    add_up,
    category_rows,
    empty_totals,
    forecast_period,
    with_probability,
)
from sales.models import ForecastSnapshot, Sale

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
    """
    now = now or timezone.now()
    today = today or timezone.localdate(now)
    period = forecast_period(str(SNAPSHOT_DAYS), today=today)
    dated = with_probability(
        Sale.objects.open().filter(expected_close_date__range=(period.start, period.end)),
        now=now,
        model=probability_model(),
    )
    team = "assigned_to__team_memberships__team"
    per_rep = add_up(
        category_rows(dated.filter(assigned_to__isnull=False), "assigned_to", "currency"),
        lambda row: (row["assigned_to"], row["currency"]),
    )
    per_team = add_up(
        category_rows(dated.filter(**{f"{team}__isnull": False}), team, "currency"),
        lambda row: (row[team], row["currency"]),
    )
    everyone = add_up(category_rows(dated, "currency"), lambda row: row["currency"])

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
