"""The forecast statistics over all history: the stage-to-win rates, the calibration and
what was actually won in the snapshots' periods.

These read every closed deal's stage history or every deal won in many periods (seconds at
1M deals), so they run only in the nightly task (sales.services.forecast.
forecast_statistics_compute, which stores them as StageWinRate, ForecastCalibration and
the snapshots' actuals); pages read the stored rows (probability.probability_model,
selectors.calibration, selectors.forecast_vs_actual), never these.
"""

from datetime import date, datetime, time, timedelta

from django.db.models import Count, DecimalField, F, IntegerField, Q, QuerySet, Sum
from django.db.models.functions import Cast, Coalesce, Floor
from django.utils import timezone

from sales.forecasting.probability import (
    COUNT,
    HUNDRED,
    ZERO,
    ProbabilityModel,
    entry_probability_expression,
    hundredths,
)
from sales.models import Sale, StageChange

Status = Sale.Status
PERCENT_SUM = DecimalField(max_digits=20, decimal_places=4)  # ForecastCalibration.predicted_sum

# The scope keys' groups: a key's prefix -> the Sale field its deals are grouped by (the
# owner, the owner's team as it is now; "all" is not grouped). The keys are
# ForecastSnapshot's, so a scope (crm.permissions.forecast.ForecastScope.snapshot_keys)
# reads the same keys for its forecast vs actual and its calibration.
SCOPE_GROUPS = {
    "rep": "assigned_to",
    "team": "assigned_to__team_memberships__team",
}


def closed_deal_count() -> int:
    return Sale.objects.filter(status__in=Sale.CLOSED_STATUSES).count()


def stage_win_counts() -> dict[str, dict]:
    """Per open stage some closed deal entered: how many closed deals ever entered it, how
    many of them were won, and the rate (percent, to 0.01); a deal re-entering a stage
    counts once."""
    closed = StageChange.objects.filter(
        to_status__in=Sale.OPEN_STATUSES, sale__status__in=Sale.CLOSED_STATUSES
    )
    rows = (
        closed.values("to_status")
        .annotate(
            entered=Count("sale", distinct=True),
            won=Count("sale", distinct=True, filter=Q(sale__status=Status.WON)),
        )
        .annotate(rate=Cast(F("won"), COUNT) * HUNDRED / F("entered"))
        .values("to_status", "entered", "won", "rate")
        .order_by()
    )
    return {row.pop("to_status"): {**row, "rate": hundredths(row["rate"])} for row in rows}


def calibration_buckets(*, model: ProbabilityModel, group: str | None = None) -> QuerySet:
    """Did 30% deals win 30% of the time? Every entry of a closed deal into an open stage
    is a prediction (the model's probability at that entry); per group (everything when
    None) and 10-point bucket: the entries, how many of their deals were won and the sum of
    the predicted probabilities. `group` is a field of StageChange ("sale__" and a field of
    SCOPE_GROUPS)."""
    entries = StageChange.objects.filter(
        to_status__in=Sale.OPEN_STATUSES, sale__status__in=Sale.CLOSED_STATUSES
    )
    grouped_by = [group] if group else []
    if group:
        entries = entries.filter(**{f"{group}__isnull": False})
    return (
        entries.annotate(predicted=entry_probability_expression(model))
        .annotate(bucket=Cast(Floor(F("predicted") / 10) * 10, IntegerField()))
        .values(*grouped_by, "bucket")
        .annotate(
            entries=Count("id"),
            won=Count("id", filter=Q(sale__status=Status.WON)),
            predicted_sum=Sum("predicted", output_field=PERCENT_SUM),
        )
        .order_by()
    )


def won_in_period(start: date, end: date) -> dict[tuple[str, str], dict]:
    """What was won from `start` to `end` (local days, both included) per scope key and
    currency: the number of WON deals closed then and their amount. Three queries (per
    owner, per team, everyone), each reading only the deals closed in the period."""
    closed_from = timezone.make_aware(datetime.combine(start, time.min))
    closed_before = timezone.make_aware(datetime.combine(end + timedelta(days=1), time.min))
    won = Sale.objects.filter(
        status=Status.WON, closed_at__gte=closed_from, closed_at__lt=closed_before
    ).order_by()
    totals = {"won_count": Count("id"), "actual_value": Coalesce(Sum("amount"), ZERO)}
    result = {("all", row["currency"]): row for row in won.values("currency").annotate(**totals)}
    for prefix, group in SCOPE_GROUPS.items():
        rows = won.filter(**{f"{group}__isnull": False}).values(group, "currency")
        for row in rows.annotate(**totals):
            result[(f"{prefix}:{row[group]}", row["currency"])] = row
    return result
