"""Reads of the forecast (DESIGN.md "Pipeline"): the forecast of a scope over a period
(commit / best case / pipeline, weighted value, per month), forecast vs actual of past
snapshots, and calibration. The scopes and who may see them are crm.permissions.forecast's.

Every number over deals is aggregated by PostgreSQL (annotate / aggregate); Python only
reads the handful of stage rates, applies them to the aggregated rows (category_rows) and
shapes those rows for the page. Nothing here reads the stage history: what needs all of it
(the historical rates, the calibration) is computed nightly (sales.forecasting.statistics)
and read here as rows.
"""

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import (
    BooleanField,
    Count,
    DecimalField,
    ExpressionWrapper,
    F,
    Q,
    QuerySet,
    Sum,
    Value,
)
from django.db.models.functions import Cast, Coalesce, Round
from django.utils import timezone

from crm.errors import ValidationFailed
from crm.permissions.forecast import ForecastScope, access_forecast_scope
from sales.forecasting.probability import (
    COUNT,
    HUNDRED,
    OLD_DEAL_AGE,
    PERCENT,
    ZERO,
    ProbabilityModel,
    hundredths,
    probability_model,
    win_probability,
)
from sales.models import ForecastCalibration, ForecastSnapshot, Sale

Status = Sale.Status

COMMIT_MIN = 70  # probability >= 70: commit
BEST_CASE_MIN = 40  # 40 <= probability < 70: best case; below 40: pipeline

SNAPSHOT_DAYS = 90
PERIOD_CHOICES = [
    ("30", "Next 30 days"),
    ("60", "Next 60 days"),
    ("90", "Next 90 days"),
    ("quarter", "This quarter"),
]
DEFAULT_PERIOD = "90"

MONEY = DecimalField(max_digits=20, decimal_places=2)


# Periods -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    key: str
    label: str
    start: date
    end: date  # inclusive


def forecast_period(period, *, today: date | None = None) -> Period:
    """30/60/90 days from today (today included), or the current calendar quarter."""
    today = today or timezone.localdate()
    key = str(period)
    labels = dict(PERIOD_CHOICES)
    if key not in labels:
        raise ValidationFailed(f"Unknown forecast period {period!r}.", field="period")
    if key == "quarter":
        first_month = 3 * ((today.month - 1) // 3) + 1
        start = today.replace(month=first_month, day=1)
        next_start = (
            date(today.year + 1, 1, 1)
            if first_month == 10
            else date(today.year, first_month + 3, 1)
        )
        quarter = (first_month - 1) // 3 + 1
        label = f"This quarter (Q{quarter} {today.year})"
        return Period(key, label, start, next_start - timedelta(days=1))
    days = int(key)
    return Period(key, labels[key], today, today + timedelta(days=days - 1))


# The forecast ------------------------------------------------------------------------------

CATEGORIES = [
    # (key, label): commit >= COMMIT_MIN > best case >= BEST_CASE_MIN > pipeline
    ("commit", "Commit"),
    ("best_case", "Best case"),
    ("pipeline", "Pipeline"),
]


def category_of(probability: Decimal) -> str:
    if probability >= COMMIT_MIN:
        return "commit"
    if probability >= BEST_CASE_MIN:
        return "best_case"
    return "pipeline"


def _next_month(month: date) -> date:
    return (month.replace(day=1) + timedelta(days=32)).replace(day=1)


def month_starts(period: Period) -> list[date]:
    """The first day of every calendar month the period touches (at most four)."""
    months, month = [], period.start.replace(day=1)
    while month <= period.end:
        months.append(month)
        month = _next_month(month)
    return months


def category_rows(
    deals: QuerySet[Sale],
    *group_by: str,
    now: datetime,
    model: ProbabilityModel,
    months: list[date] | None = None,
) -> list[dict[str, Any]]:
    """The deals per group (`group_by`, and with `months` the month of expected close) and
    category, for add_up: the group's fields, the category, the number of deals, their
    value (0 without an amount) and their weighted value (value x probability / 100, exact).

    PostgreSQL reads the deals once and groups them by `group_by` and by what a win
    probability depends on (stage, hand-set probability, older than OLD_DEAL_AGE, the
    customer's engagement), each month counted and summed beside (FILTER), not grouped by:
    a few hundred rows however many deals, few enough for the planner to hash them, and no
    arithmetic per deal (the SQL probability expression, evaluated for each of 100,000
    deals and sorted on, cost most of the forecast's time). Each of those rows then gets
    its probability from the rule (probability.win_probability, the same numbers as the
    SQL expression) and is added to its group's category.
    """
    parts: list[tuple[date | None, Q | None]] = [(None, None)]
    if months is not None:
        parts = [
            (month, Q(expected_close_date__gte=month, expected_close_date__lt=_next_month(month)))
            for month in months
        ]
    aggregates = {}
    for index, (_, in_part) in enumerate(parts):
        aggregates[f"deal_count_{index}"] = Count("id", filter=in_part)
        aggregates[f"pipeline_value_{index}"] = Coalesce(
            Sum("amount", filter=in_part), Value(ZERO), output_field=MONEY
        )
    inputs = (
        deals.order_by()
        .annotate(
            is_old=ExpressionWrapper(
                Q(created_at__lt=now - OLD_DEAL_AGE), output_field=BooleanField()
            ),
            engagement=F("customer__engagement_level"),
        )
        .values(*group_by, "status", "probability", "is_old", "engagement")
        .annotate(**aggregates)
    )
    rows: dict[tuple, dict[str, Any]] = {}
    for row in inputs:  # aggregated rows, bounded by the groups, not by the deals
        probability = win_probability(
            model,
            status=row["status"],
            probability=row["probability"],
            is_old=row["is_old"],
            engagement=row["engagement"],
        )
        category = category_of(probability)
        for index, (month, _) in enumerate(parts):
            deal_count = row[f"deal_count_{index}"]
            if not deal_count:
                continue
            group = {field: row[field] for field in group_by}
            if month is not None:
                group["month"] = month
            total = rows.setdefault(
                (*group.values(), category),
                {
                    **group,
                    "category": category,
                    "deal_count": 0,
                    "pipeline_value": ZERO,
                    "weighted_value": ZERO,
                },
            )
            value = row[f"pipeline_value_{index}"]
            total["deal_count"] += deal_count
            total["pipeline_value"] += value
            total["weighted_value"] += value * probability / HUNDRED
    return list(rows.values())


def empty_totals() -> dict[str, Any]:
    return {
        "deal_count": 0,
        "pipeline_value": ZERO,
        "weighted_value": ZERO,
        "categories": {
            key: {"label": label, "count": 0, "value": ZERO, "weighted": ZERO}
            for key, label in CATEGORIES
        },
        "commit_value": ZERO,
        "best_case_value": ZERO,
    }


def add_up(rows, key) -> dict[Any, dict[str, Any]]:
    """The rows of category_rows added up per `key(row)`: at most three per group, not
    deals. Weighted values are summed exactly and rounded to the cent at the end."""
    totals: dict[Any, dict[str, Any]] = {}
    for row in rows:
        total = totals.setdefault(key(row), empty_totals())
        total["deal_count"] += row["deal_count"]
        total["pipeline_value"] += row["pipeline_value"]
        total["weighted_value"] += row["weighted_value"]
        category = total["categories"][row["category"]]
        category["count"] += row["deal_count"]
        category["value"] += row["pipeline_value"]
        category["weighted"] += row["weighted_value"]
    for total in totals.values():
        total["weighted_value"] = hundredths(total["weighted_value"])
        for category in total["categories"].values():
            category["weighted"] = hundredths(category["weighted"])
        total["commit_value"] = total["categories"]["commit"]["value"]
        total["best_case_value"] = total["categories"]["best_case"]["value"]
    return totals


def _open_deals(scope: ForecastScope) -> QuerySet[Sale]:
    return Sale.objects.open().filter(scope.deals_q())


def forecast(
    *,
    user,
    scope,
    period,
    today: date | None = None,
    now: datetime | None = None,
    model: ProbabilityModel | None = None,
    scopes: list[ForecastScope] | None = None,
) -> dict[str, Any]:
    """The open deals of `scope` expected to close in `period`, per currency (amounts in
    different currencies are never added together): deals, total pipeline, weighted value
    (amount x probability / 100), commit / best case / pipeline, and the same per month of
    expected close. Deals without an expected close date are left out; `undated_count`
    says how many there are."""
    now = now or timezone.now()
    today = today or timezone.localdate(now)
    scope = access_forecast_scope(user, scope, scopes=scopes)
    period = forecast_period(period, today=today)
    model = model or probability_model()
    dated = _open_deals(scope).filter(expected_close_date__range=(period.start, period.end))
    rows = sorted(
        category_rows(dated, "currency", now=now, model=model, months=month_starts(period)),
        key=lambda row: (row["currency"], row["month"]),
    )
    by_currency = add_up(rows, lambda row: row["currency"])
    by_month = add_up(rows, lambda row: (row["currency"], row["month"]))
    currencies = [
        {
            "currency": currency,
            **totals,
            "months": [
                {"month": month, **totals_of_month}
                for (month_currency, month), totals_of_month in by_month.items()
                if month_currency == currency
            ],
        }
        for currency, totals in sorted(
            by_currency.items(), key=lambda item: (-item[1]["deal_count"], item[0])
        )
    ]
    undated = _open_deals(scope).filter(expected_close_date__isnull=True).count()
    return {
        "scope": scope,
        "period": period,
        "model": model,
        "currencies": currencies,
        "deal_count": sum(row["deal_count"] for row in currencies),  # counts add up
        "undated_count": undated,
    }


# Forecast vs actual and calibration --------------------------------------------------------


def forecast_vs_actual(
    *,
    user,
    scope,
    today: date | None = None,
    limit: int = 12,
    scopes: list[ForecastScope] | None = None,
) -> list[dict[str, Any]]:
    """Snapshots whose period has ended and whose actuals the nightly forecast statistics
    stored, latest first, per currency: the weighted forecast against what was actually won
    (WON deals of the scope, same currency, closed in the period; deals are counted by
    their owner's team as it was when stored). A scope of several keys (a manager's reps)
    adds their rows up; one query over the snapshot rows, none over deals."""
    today = today or timezone.localdate()
    scope = access_forecast_scope(user, scope, scopes=scopes)
    rows = (
        ForecastSnapshot.objects.filter(
            scope_key__in=scope.snapshot_keys,
            period_end__lt=today,
            actual_computed_at__isnull=False,
        )
        .values("taken_on", "period_start", "period_end", "currency")
        .annotate(
            deal_count=Sum("deal_count"),
            pipeline_value=Sum("pipeline_value"),
            weighted_value=Sum("weighted_value"),
            commit_value=Sum("commit_value"),
            actual_value=Sum("actual_value"),
            won_count=Sum("won_count"),
        )
        .annotate(difference=F("actual_value") - F("weighted_value"))
        .order_by("-taken_on", "currency")[:limit]
    )
    return list(rows)


def calibration(*, user, scope, scopes: list[ForecastScope] | None = None) -> list[dict[str, Any]]:
    """Did 30% deals win 30% of the time? The calibration the nightly forecast statistics
    stored (sales.forecasting.statistics), for a scope the user may see: per 10-point band,
    the stage entries of closed deals the model put in it, the average predicted
    probability and the share of those entries whose deal was won. A scope of several keys
    (a manager's reps) adds their rows up, in one query over a few dozen rows."""
    scope = access_forecast_scope(user, scope, scopes=scopes)
    rows = (
        ForecastCalibration.objects.filter(scope_key__in=scope.snapshot_keys)
        .values("bucket")
        .annotate(
            entries=Sum("entry_count"),
            won=Sum("won_count"),
            predicted=Round(Sum("predicted_sum") / Sum("entry_count"), 1, output_field=PERCENT),
            actual=Round(Cast(Sum("won_count"), COUNT) * HUNDRED / Sum("entry_count"), 1),
        )
        .order_by("bucket")
    )
    return [{**row, "bucket_end": row["bucket"] + 9} for row in rows]
