"""Forecasting (DESIGN.md "Pipeline"): win probabilities, the forecast of a rep, a team or
everyone over a period, weekly snapshots, forecast vs actual and calibration.

Every number over deals is computed by PostgreSQL (annotate / aggregate); Python only
reads the handful of stage rates and shapes the aggregated rows for the page.

Win probability of an open deal, in percent (the spec's rule):
- the deal's own `probability` when someone set it by hand, taken as it is;
- otherwise the rate of its stage: the managers' base rate (StageSetting.base_probability)
  or, once HISTORY_MIN_CLOSED closed deals exist, the historical stage-to-win rate (of the
  closed deals that ever entered the stage, the share that was won);
- x 0.8 for a deal created more than 90 days ago. The spec's "-20%" is read as relative
  (50% -> 40%), not as 20 points (50% -> 30%): a 10% stage would otherwise go negative;
- x 1.2 when the customer's engagement is HIGH (VIP counts as high), x 0.8 when LOW;
- capped at 95%.
Rates and factors are exact decimals, so the SQL expression and the Python rule (used for
one deal's reasons) give the same number to the last digit.
"""

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import (
    Avg,
    Case,
    CharField,
    Count,
    DateTimeField,
    DecimalField,
    ExpressionWrapper,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Cast, Coalesce, Floor, Least, Round, TruncMonth
from django.utils import timezone

from crm.errors import PermissionDenied, ValidationFailed
from crm.models import Team
from crm.permissions import team_user_ids, visible_teams
from crm.roles import REP_GROUP, Role, role_of
from crm.selectors import team_member_ids
from customers.models import Customer
from sales.defaults import STAGE_DEFAULTS
from sales.models import ForecastSnapshot, Sale, StageChange, StageSetting

Status = Sale.Status
Engagement = Customer.EngagementLevel

HISTORY_MIN_CLOSED = 200
OLD_DEAL_AGE = timedelta(days=90)
OLD_DEAL_FACTOR = Decimal("0.8")
ENGAGEMENT_FACTORS = {
    Engagement.HIGH: Decimal("1.2"),
    Engagement.VIP: Decimal("1.2"),
    Engagement.LOW: Decimal("0.8"),
}
PROBABILITY_CAP = Decimal(95)
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

PERCENT = DecimalField(max_digits=7, decimal_places=4)
MONEY = DecimalField(max_digits=20, decimal_places=2)
COUNT = DecimalField(max_digits=20, decimal_places=0)  # a count, cast for exact division
ZERO = Decimal("0.00")
HUNDRED = Decimal(100)


# Win probability ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ProbabilityModel:
    """The stage rates in force: the base rates, or the historical ones (see module doc)."""

    rates: dict[str, Decimal]
    historical: bool
    closed_deals: int


def _hundredths(value: Decimal) -> Decimal:
    """Rounded to 0.01 (a cent, or a hundredth of a percentage point)."""
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def _historical_rates() -> dict[str, Decimal]:
    """Per open stage: of the closed deals that ever entered it, the share won (percent)."""
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
        .values_list("to_status", "rate")
        .order_by()
    )
    return {status: _hundredths(rate) for status, rate in rows}


def probability_model() -> ProbabilityModel:
    """The stage settings (read once) and, past HISTORY_MIN_CLOSED closed deals, the
    historical rates; a stage no closed deal ever entered keeps its base rate."""
    rates = {status: Decimal(value[0]) for status, value in STAGE_DEFAULTS.items()}
    stages = StageSetting.objects.filter(status__in=Sale.OPEN_STATUSES)
    rates.update(
        (status, Decimal(rate)) for status, rate in stages.values_list("status", "base_probability")
    )
    closed = Sale.objects.filter(status__in=Sale.CLOSED_STATUSES).count()
    historical = closed >= HISTORY_MIN_CLOSED
    if historical:
        rates.update(_historical_rates())
    return ProbabilityModel(rates=rates, historical=historical, closed_deals=closed)


def _uncapped(rate: Decimal, *, is_old: bool, engagement: str) -> Decimal:
    return rate * (OLD_DEAL_FACTOR if is_old else 1) * ENGAGEMENT_FACTORS.get(engagement, 1)


def adjusted_probability(rate: Decimal, *, is_old: bool, engagement: str) -> Decimal:
    """The spec's rule for a stage rate, in Python (the SQL below computes the same)."""
    return min(_uncapped(rate, is_old=is_old, engagement=engagement), PROBABILITY_CAP)


def _rule_expression(model: ProbabilityModel, *, status: str, is_old: Q, engagement: str) -> Least:
    """LEAST(stage rate x age factor x engagement factor, 95) over the given fields."""
    rate = Case(
        *(When(**{status: stage}, then=Value(value)) for stage, value in model.rates.items()),
        default=Value(ZERO),
        output_field=PERCENT,
    )
    age = Case(When(is_old, then=Value(OLD_DEAL_FACTOR)), default=Value(Decimal(1)))
    levels: dict[Decimal, list[str]] = {}
    for level, factor in ENGAGEMENT_FACTORS.items():
        levels.setdefault(factor, []).append(level)
    engaged = Case(
        *(
            When(**{f"{engagement}__in": names}, then=Value(factor))
            for factor, names in levels.items()
        ),
        default=Value(Decimal(1)),
    )
    product = ExpressionWrapper(rate * age * engaged, output_field=PERCENT)
    return Least(product, Value(PROBABILITY_CAP), output_field=PERCENT)


def win_probability_expression(now: datetime, *, model: ProbabilityModel | None = None) -> Case:
    """A Sale annotation: each open deal's win probability in percent (closed deals get 0
    unless set by hand). `model` lets one request read the stage rates once."""
    model = model or probability_model()
    rule = _rule_expression(
        model,
        status="status",
        is_old=Q(created_at__lt=now - OLD_DEAL_AGE),
        engagement="customer__engagement_level",
    )
    return Case(
        When(probability__isnull=False, then=Cast("probability", PERCENT)),
        default=rule,
        output_field=PERCENT,
    )


def _entry_probability_expression(model: ProbabilityModel) -> Least:
    """A StageChange annotation: what the model gives the deal as it enters the stage (its
    age then; its customer's engagement now, there is no history of it; no hand-set
    probability, whose value at that moment is not recorded)."""
    entered_old = Q(
        sale__created_at__lt=ExpressionWrapper(
            F("changed_at") - OLD_DEAL_AGE, output_field=DateTimeField()
        )
    )
    return _rule_expression(
        model,
        status="to_status",
        is_old=entered_old,
        engagement="sale__customer__engagement_level",
    )


def _pct(value: Decimal) -> str:
    """37.50 -> "37.5%", 50 -> "50%"."""
    text = f"{_hundredths(Decimal(value)):f}"
    return text.rstrip("0").rstrip(".") + "%"


def _factor(value: Decimal) -> str:
    return f"×{value.normalize():f}"


def deal_probability(
    sale: Sale, *, now: datetime | None = None, model: ProbabilityModel | None = None
) -> tuple[Decimal | None, list[str]]:
    """One deal's win probability (None when closed) and why, for the deal page."""
    if sale.is_closed:
        return None, []
    if sale.probability is not None:
        return Decimal(sale.probability), [f"Set by hand: {sale.probability}%"]
    now = now or timezone.now()
    model = model or probability_model()
    rate = model.rates.get(sale.status, ZERO)
    stage = Status(sale.status).label
    if model.historical:
        reasons = [f"Historical stage-to-win rate ({stage}) {_pct(rate)}"]
    else:
        reasons = [f"Stage base rate ({stage}) {_pct(rate)}"]
    is_old = sale.created_at < now - OLD_DEAL_AGE
    if is_old:
        reasons.append(f"Older than {OLD_DEAL_AGE.days} days: {_factor(OLD_DEAL_FACTOR)}")
    engagement = sale.customer.engagement_level
    factor = ENGAGEMENT_FACTORS.get(engagement)
    if factor is not None:
        kind = "Low" if factor < 1 else "High"
        extra = " (VIP)" if engagement == Engagement.VIP else ""
        reasons.append(f"{kind} engagement{extra}: {_factor(factor)}")
    raw = _uncapped(rate, is_old=is_old, engagement=engagement)
    if raw > PROBABILITY_CAP:
        reasons.append(f"Capped at {_pct(PROBABILITY_CAP)}")
    value = min(raw, PROBABILITY_CAP)
    return value, reasons


def probability_reasons(sale: Sale, **kwargs) -> list[str]:
    """Why the deal has its probability: "Stage base rate (Proposal) 50%", "Older than 90
    days: ×0.8", "High engagement: ×1.2", "Capped at 95%", or "Set by hand: 40%"."""
    return deal_probability(sale, **kwargs)[1]


# Scopes and periods ------------------------------------------------------------------------


@dataclass(frozen=True)
class ForecastScope:
    """Whose deals: "me", a team (by id) or "all" (everyone for an admin, a manager's teams).

    Deals belong to a scope by their owner (assigned_to); team membership is as it is now.
    """

    key: str  # the filter's value: "me", "<team id>", "all"
    label: str
    kind: str  # ForecastSnapshot.Scope
    user_id: int | None = None
    team_id: int | None = None
    user_ids: tuple[int, ...] | None = None  # a manager's "all": themselves and their teams
    snapshot_keys: tuple[str, ...] = field(default_factory=tuple)

    def deals_q(self, prefix: str = "") -> Q:
        """Q over Sale (or over a model reaching it through `prefix`, e.g. "sale__")."""
        if self.kind == ForecastSnapshot.Scope.REP:
            return Q(**{f"{prefix}assigned_to": self.user_id})
        if self.kind == ForecastSnapshot.Scope.TEAM:
            return Q(**{f"{prefix}assigned_to__in": team_member_ids(self.team_id)})
        if self.user_ids is not None:
            return Q(**{f"{prefix}assigned_to__in": self.user_ids})
        return Q()


def forecast_scopes(user) -> list[ForecastScope]:
    """The scopes a user may pick: a rep only their own deals; a manager also each team
    they manage and all of them together; an admin every team and everyone."""
    scopes = [
        ForecastScope(
            key="me",
            label="My deals",
            kind=ForecastSnapshot.Scope.REP,
            user_id=user.pk,
            snapshot_keys=(f"rep:{user.pk}",),
        )
    ]
    role = role_of(user)
    if role == Role.REP:
        return scopes
    for team in visible_teams(user).only("pk", "name"):
        scopes.append(
            ForecastScope(
                key=str(team.pk),
                label=f"Team: {team.name}",
                kind=ForecastSnapshot.Scope.TEAM,
                team_id=team.pk,
                snapshot_keys=(f"team:{team.pk}",),
            )
        )
    if role == Role.ADMIN:
        scopes.append(
            ForecastScope(
                key="all", label="Everyone", kind=ForecastSnapshot.Scope.ALL, snapshot_keys=("all",)
            )
        )
    else:
        ids = tuple(team_user_ids(user))  # one query, kept on the user
        scopes.append(
            ForecastScope(
                key="all",
                label="All my teams",
                kind=ForecastSnapshot.Scope.ALL,
                user_ids=ids,
                # The sum of the reps' snapshots: exactly the owners this scope counts.
                snapshot_keys=tuple(f"rep:{pk}" for pk in ids),
            )
        )
    return scopes


def forecast_scope(*, user, scope, scopes: list[ForecastScope] | None = None) -> ForecastScope:
    """The scope `scope` ("me", a team id, "all") if the user may see it; PermissionDenied
    otherwise (a rep asking for a team, a manager for a team they do not manage)."""
    if isinstance(scope, ForecastScope):
        scope = scope.key
    wanted = str(scope)
    for candidate in scopes if scopes is not None else forecast_scopes(user):
        if candidate.key == wanted:
            return candidate
    raise PermissionDenied("You cannot see the forecast of this scope.")


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


def _with_probability(deals: QuerySet[Sale], *, now: datetime, model: ProbabilityModel):
    return deals.annotate(
        win_probability=win_probability_expression(now, model=model),
        value=Coalesce("amount", Value(ZERO), output_field=MONEY),
    )


def _category_rows(deals: QuerySet[Sale], *group_by: str) -> QuerySet:
    """One pass over the deals (annotated by _with_probability): per group and category,
    the number of deals, their value (0 without an amount) and their weighted value.

    The probability is computed once per deal for the category and once for the weighted
    sum; PostgreSQL then sorts 100,000 deals into a few dozen rows.
    """
    category = Case(
        When(win_probability__gte=COMMIT_MIN, then=Value("commit")),
        When(win_probability__gte=BEST_CASE_MIN, then=Value("best_case")),
        default=Value("pipeline"),
        output_field=CharField(),
    )
    return (
        deals.annotate(category=category)
        .order_by()
        .values(*group_by, "category")
        .annotate(
            deal_count=Count("id"),
            pipeline_value=Coalesce(Sum("value"), Value(ZERO), output_field=MONEY),
            weighted_value=Coalesce(
                Sum(F("value") * F("win_probability") / HUNDRED, output_field=MONEY),
                Value(ZERO),
                output_field=MONEY,
            ),
        )
    )


def _empty_totals() -> dict[str, Any]:
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


def _add_up(rows, key) -> dict[Any, dict[str, Any]]:
    """The category rows of _category_rows added up per `key(row)`: these are a few
    aggregated rows (groups x 3 categories), not deals. Weighted values are summed exactly
    and rounded to the cent at the end."""
    totals: dict[Any, dict[str, Any]] = {}
    for row in rows:
        total = totals.setdefault(key(row), _empty_totals())
        total["deal_count"] += row["deal_count"]
        total["pipeline_value"] += row["pipeline_value"]
        total["weighted_value"] += row["weighted_value"]
        category = total["categories"][row["category"]]
        category["count"] += row["deal_count"]
        category["value"] += row["pipeline_value"]
        category["weighted"] += row["weighted_value"]
    for total in totals.values():
        total["weighted_value"] = _hundredths(total["weighted_value"])
        for category in total["categories"].values():
            category["weighted"] = _hundredths(category["weighted"])
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
    scope = forecast_scope(user=user, scope=scope, scopes=scopes)
    period = forecast_period(period, today=today)
    model = model or probability_model()
    dated = _with_probability(
        _open_deals(scope).filter(expected_close_date__range=(period.start, period.end)),
        now=now,
        model=model,
    )
    monthly = dated.annotate(month=TruncMonth("expected_close_date"))
    rows = list(_category_rows(monthly, "currency", "month").order_by("currency", "month"))
    by_currency = _add_up(rows, lambda row: row["currency"])
    by_month = _add_up(rows, lambda row: (row["currency"], row["month"]))
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


# Snapshots ---------------------------------------------------------------------------------


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
    dated = _with_probability(
        Sale.objects.open().filter(expected_close_date__range=(period.start, period.end)),
        now=now,
        model=probability_model(),
    )
    team = "assigned_to__team_memberships__team"
    per_rep = _add_up(
        _category_rows(dated.filter(assigned_to__isnull=False), "assigned_to", "currency"),
        lambda row: (row["assigned_to"], row["currency"]),
    )
    per_team = _add_up(
        _category_rows(dated.filter(**{f"{team}__isnull": False}), team, "currency"),
        lambda row: (row[team], row["currency"]),
    )
    everyone = _add_up(_category_rows(dated, "currency"), lambda row: row["currency"])

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

    zero, currency = _empty_totals(), settings.DEFAULT_CURRENCY
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


# Forecast vs actual and calibration --------------------------------------------------------


def forecast_vs_actual(
    *,
    user,
    scope,
    today: date | None = None,
    limit: int = 12,
    scopes: list[ForecastScope] | None = None,
) -> list[dict[str, Any]]:
    """Snapshots whose period has ended, latest first, per currency: the weighted forecast
    against what was actually won (WON deals of the scope, same currency, closed in the
    period; deals are counted by their owner's team as it is now)."""
    today = today or timezone.localdate()
    scope = forecast_scope(user=user, scope=scope, scopes=scopes)
    won = (
        Sale.objects.filter(
            scope.deals_q(),
            status=Status.WON,
            currency=OuterRef("currency"),
            closed_at__date__gte=OuterRef("period_start"),
            closed_at__date__lte=OuterRef("period_end"),
        )
        .order_by()
        .values("currency")
    )
    rows = (
        ForecastSnapshot.objects.filter(scope_key__in=scope.snapshot_keys, period_end__lt=today)
        .values("taken_on", "period_start", "period_end", "currency")
        .annotate(
            deal_count=Sum("deal_count"),
            pipeline_value=Sum("pipeline_value"),
            weighted_value=Sum("weighted_value"),
            commit_value=Sum("commit_value"),
            actual_value=Coalesce(
                Subquery(won.annotate(total=Sum("amount")).values("total")),
                Value(ZERO),
                output_field=MONEY,
            ),
            won_count=Coalesce(
                Subquery(won.annotate(n=Count("id")).values("n")),
                Value(0),
                output_field=IntegerField(),
            ),
        )
        .annotate(difference=F("actual_value") - F("weighted_value"))
        .order_by("-taken_on", "currency")[:limit]
    )
    return list(rows)


def calibration(
    *,
    user,
    scope,
    model: ProbabilityModel | None = None,
    scopes: list[ForecastScope] | None = None,
) -> list[dict[str, Any]]:
    """Did 30% deals win 30% of the time? Every entry of a closed deal into an open stage
    is a prediction (the model's probability at that entry); per 10-point bucket, the
    average predicted probability against the share of those entries whose deal was won."""
    scope = forecast_scope(user=user, scope=scope, scopes=scopes)
    model = model or probability_model()
    entries = StageChange.objects.filter(
        scope.deals_q("sale__"),
        to_status__in=Sale.OPEN_STATUSES,
        sale__status__in=Sale.CLOSED_STATUSES,
    ).annotate(predicted=_entry_probability_expression(model))
    rows = (
        entries.annotate(bucket=Cast(Floor(F("predicted") / 10) * 10, IntegerField()))
        .values("bucket")
        .annotate(
            entries=Count("id"),
            won=Count("id", filter=Q(sale__status=Status.WON)),
            predicted=Round(Avg("predicted"), 1),
        )
        .annotate(
            actual=Round(Cast(F("won"), COUNT) * HUNDRED / F("entries"), 1),
        )
        .order_by("bucket")
    )
    return [{**row, "bucket_end": row["bucket"] + 9} for row in rows]


# The page ----------------------------------------------------------------------------------


def _chart(currencies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Weighted vs pipeline per month, one series pair per currency (for Chart.js)."""
    return [
        {
            "currency": row["currency"],
            "labels": [f"{month['month']:%b %Y}" for month in row["months"]],
            "pipeline": [float(month["pipeline_value"]) for month in row["months"]],
            "weighted": [float(month["weighted_value"]) for month in row["months"]],
        }
        for row in currencies
    ]


def forecast_page(
    *, user, scope, period, scopes: list[ForecastScope] | None = None, today: date | None = None
) -> dict[str, Any]:
    """Everything the forecast page shows, in a fixed number of queries: the forecast, its
    chart, forecast vs actual of past snapshots and the calibration, for one scope."""
    scopes = scopes if scopes is not None else forecast_scopes(user)
    scope = forecast_scope(user=user, scope=scope, scopes=scopes)
    model = probability_model()
    result = forecast(
        user=user, scope=scope, period=period, model=model, scopes=scopes, today=today
    )
    return {
        **result,
        "chart": _chart(result["currencies"]),
        "history": forecast_vs_actual(user=user, scope=scope, scopes=scopes, today=today),
        "calibration": calibration(user=user, scope=scope, model=model, scopes=scopes),
        "history_min_closed": HISTORY_MIN_CLOSED,
        "commit_min": COMMIT_MIN,
        "best_case_min": BEST_CASE_MIN,
    }
