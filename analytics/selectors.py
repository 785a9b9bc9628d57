"""The spec's metrics, each one or a few SQL queries over the other apps' data (no copies of
it, no Python loops over querysets). Every function takes the asking user and counts only
what crm.permissions lets them see.

Money is per currency: totals group by currency and are never added across currencies.
"""

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import (
    Avg,
    Case,
    Count,
    DecimalField,
    Exists,
    ExpressionWrapper,
    F,
    FilteredRelation,
    FloatField,
    IntegerField,
    Max,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
    Window,
)
from django.db.models.functions import Coalesce, Greatest, Lead, Least, TruncMonth
from django.utils import timezone

from analytics.expressions import DaysBetween, Median
from crm.models import TeamMembership
from crm.permissions import visible_customers, visible_sales
from customers.models import Customer
from sales.models import Sale, SaleActivity, StageChange

DEFAULT_LIFESPAN_YEARS = 3.0
MIN_CHURNED_FOR_LIFESPAN = 20  # fewer churned customers with history: the spec's 3 years
CHURN_CONTACT_DAYS = 180  # no contact for this long counts fully towards churn
CHURN_WEIGHTS = {"contact": 0.4, "deals": 0.3, "engagement": 0.3}
ENGAGEMENT_RISK = {"LOW": 1.0, "MEDIUM": 0.5, "HIGH": 0.2, "VIP": 0.0}
WON = Sale.Status.WON
LOST = Sale.Status.LOST


@dataclass(frozen=True)
class Scope:
    """Whose deals: everyone the user sees, one team, or one rep (within what they see)."""

    team_id: int | None = None
    rep_id: int | None = None


def scoped_sales(*, user, scope: Scope = Scope()) -> QuerySet[Sale]:
    sales = visible_sales(user)
    if scope.team_id:
        members = TeamMembership.objects.filter(team_id=scope.team_id).values("user_id")
        sales = sales.filter(assigned_to__in=members)
    if scope.rep_id:
        sales = sales.filter(assigned_to_id=scope.rep_id)
    return sales


def scoped_customers(*, user, scope: Scope = Scope()) -> QuerySet[Customer]:
    """Visible customers, of one team's or one rep's book (by owner) when scoped."""
    customers = visible_customers(user)
    if scope.team_id:
        members = TeamMembership.objects.filter(team_id=scope.team_id).values("user_id")
        customers = customers.filter(owner__in=members)
    if scope.rep_id:
        customers = customers.filter(owner_id=scope.rep_id)
    return customers


def month_start(moment: datetime, months_back: int = 0) -> datetime:
    """Midnight on the first of the month `months_back` months before `moment`'s (local)."""
    local = timezone.localtime(moment)
    index = local.year * 12 + local.month - 1 - months_back
    return local.replace(
        year=index // 12, month=index % 12 + 1, day=1, hour=0, minute=0, second=0, microsecond=0
    )


# Customer lifetime value --------------------------------------------------------------------


def expected_lifespan_years(*, user, now: datetime | None = None) -> tuple[float, str]:
    """The average active span of churned customers (first deal to last close), when at
    least MIN_CHURNED_FOR_LIFESPAN of them have one; the spec's 3 years otherwise."""
    now = now or timezone.now()
    spans = (
        visible_customers(user)
        .filter(lifecycle_stage=Customer.LifecycleStage.CHURNED)
        .annotate(first=Min("sales__created_at"), last=Max("sales__closed_at"))
        .filter(first__isnull=False, last__isnull=False, last__gt=F("first"))
        .annotate(days=DaysBetween("first", "last"))
        .aggregate(n=Count("id"), average=Avg("days"))
    )
    if spans["n"] >= MIN_CHURNED_FOR_LIFESPAN and spans["average"]:
        return spans["average"] / 365.25, f"measured from {spans['n']} churned customers"
    return DEFAULT_LIFESPAN_YEARS, "the default 3 years (not enough churned customers yet)"


def customers_with_clv(
    *, user, lifespan_years: float, scope: Scope = Scope(), now: datetime | None = None
) -> QuerySet:
    """Customers annotated with their won deals and CLV = average won amount x purchases per
    year x expected lifespan. Purchases per year count from the first win (at least a
    year, so one recent win is not extrapolated to dozens a year)."""
    now = now or timezone.now()
    money = DecimalField(max_digits=18, decimal_places=2)
    # A filtered join, not a filter inside the aggregates: each customer meets only its won
    # deals (through sale_won_customer_idx) instead of all of them (200k customers, 1M
    # deals: 1.5 s -> 0.3 s).
    customers = (
        scoped_customers(user=user, scope=scope)
        .alias(
            won=FilteredRelation(
                "sales", condition=Q(sales__status=WON, sales__amount__isnull=False)
            )
        )
        .annotate(
            won_count=Count("won__id"),
            won_average=Avg("won__amount", output_field=money),
            first_won=Min("won__closed_at"),
        )
    )
    # Coalesce before Greatest: SQLite's MAX(NULL, 1) is NULL (no win yet).
    years = Greatest(
        Coalesce(
            ExpressionWrapper(
                DaysBetween("first_won", Value(now)) / 365.25, output_field=FloatField()
            ),
            Value(0.0),
        ),
        Value(1.0),
    )
    return customers.annotate(
        purchases_per_year=ExpressionWrapper(
            F("won_count") * 1.0 / years, output_field=FloatField()
        ),
        clv=ExpressionWrapper(
            Coalesce(F("won_average"), Value(Decimal(0)), output_field=money)
            * F("purchases_per_year")
            * Value(lifespan_years),
            output_field=FloatField(),
        ),
    )


def segment_clv(
    *,
    user,
    customers: QuerySet | None = None,
    scope: Scope = Scope(),
    lifespan: tuple[float, str] | None = None,
    now=None,
) -> dict[str, Any]:
    """Average and total CLV of a set of customers (all visible, or `scope`'s, when None),
    in one query (two when the lifespan is not given)."""
    lifespan_years, source = lifespan or expected_lifespan_years(user=user, now=now)
    annotated = customers_with_clv(user=user, lifespan_years=lifespan_years, scope=scope, now=now)
    if customers is not None:
        annotated = annotated.filter(pk__in=customers.values("pk"))
    totals = annotated.aggregate(
        customers=Count("id"),
        buyers=Count("id", filter=Q(won_count__gt=0)),
        average=Avg("clv"),
        total=Sum("clv"),
    )
    return {**totals, "lifespan_years": lifespan_years, "lifespan_source": source}


def high_clv_customers(
    *,
    user,
    scope: Scope = Scope(),
    limit: int = 10,
    lifespan_years: float | None = None,
    now=None,
) -> list:
    if lifespan_years is None:
        lifespan_years, _ = expected_lifespan_years(user=user, now=now)
    return list(
        customers_with_clv(user=user, lifespan_years=lifespan_years, scope=scope, now=now)
        .filter(won_count__gt=0)
        .select_related("owner")
        .order_by("-clv", "pk")[:limit]
    )


# Churn risk ---------------------------------------------------------------------------------


def customers_with_churn(
    *, user, scope: Scope = Scope(), now: datetime | None = None
) -> QuerySet[Customer]:
    """Customers annotated with the three churn factors, each 0-1, and their weighted sum:
    days since contact (capped at CHURN_CONTACT_DAYS; never contacted counts fully), no
    open deals, and engagement (LOW 1 … VIP 0)."""
    now = now or timezone.now()
    open_deals = Sale.objects.filter(customer=OuterRef("pk")).exclude(status__in=[WON, LOST])
    contact = Case(
        When(last_contact_date__isnull=True, then=Value(1.0)),
        default=Least(
            DaysBetween("last_contact_date", Value(now)) / float(CHURN_CONTACT_DAYS), Value(1.0)
        ),
        output_field=FloatField(),
    )
    engagement = Case(
        *(
            When(engagement_level=level, then=Value(risk))
            for level, risk in ENGAGEMENT_RISK.items()
        ),
        default=Value(0.5),
        output_field=FloatField(),
    )
    return (
        scoped_customers(user=user, scope=scope)
        .exclude(lifecycle_stage=Customer.LifecycleStage.CHURNED)
        .annotate(
            has_open_deals=Exists(open_deals),
            contact_risk=Greatest(contact, Value(0.0)),
            deals_risk=Case(
                When(has_open_deals=True, then=Value(0.0)),
                default=Value(1.0),
                output_field=FloatField(),
            ),  # fmt: skip
            engagement_risk=engagement,
        )
        .annotate(
            churn_probability=ExpressionWrapper(
                F("contact_risk") * CHURN_WEIGHTS["contact"]
                + F("deals_risk") * CHURN_WEIGHTS["deals"]
                + F("engagement_risk") * CHURN_WEIGHTS["engagement"],
                output_field=FloatField(),
            )
        )
    )


def churn_reasons(customer, *, now: datetime | None = None) -> list[str]:
    """Why a customer (annotated by customers_with_churn) is at risk, in words."""
    now = now or timezone.now()
    reasons = []
    if customer.last_contact_date is None:
        reasons.append("Never contacted")
    elif customer.contact_risk >= 0.5:
        days = (timezone.localdate(now) - customer.last_contact_date).days
        reasons.append(f"No contact for {days} days")
    if not customer.has_open_deals:
        reasons.append("No open deals")
    if customer.engagement_risk >= 1.0:
        reasons.append("Low engagement")
    return reasons


CHURN_RISK_THRESHOLD = 0.6


def churn_risk_customers(
    *,
    user,
    scope: Scope = Scope(),
    threshold: float = CHURN_RISK_THRESHOLD,
    limit: int = 20,
    now=None,
) -> list:
    rows = list(
        customers_with_churn(user=user, scope=scope, now=now)
        .filter(churn_probability__gte=threshold)
        .select_related("owner")
        .order_by("-churn_probability", "pk")[:limit]
    )
    for customer in rows:
        customer.churn_reasons = churn_reasons(customer, now=now)
    return rows


# Sales velocity -----------------------------------------------------------------------------


def _won_q(start: datetime, end: datetime, *, with_amount: bool = False) -> Q:
    won = Q(status=WON, closed_at__gte=start, closed_at__lte=end)
    return won & Q(amount__isnull=False) if with_amount else won


def _velocity(*, opportunities: int, closed: int, won: int, average_size, cycle_days):
    """Win rate and velocity = opportunities x win rate x average size / cycle days."""
    win_rate = won / closed if closed else 0.0
    cycle = cycle_days or 0.0
    velocity = opportunities * win_rate * float(average_size or 0) / cycle if cycle else 0.0
    return win_rate, velocity


def _velocity_aggregates(won: Q, *, closed: Q | None = None, created: Q | None = None) -> dict:
    """Per group: opportunities (created), closed, won, average won size and cycle (created to
    closed for won deals); `cycle_total` lets groups be combined."""
    cycle = DaysBetween("created_at", "closed_at")
    aggregates = {
        "won": Count("id", filter=won),
        "average_size": Avg("amount", filter=won & Q(amount__isnull=False)),
        "cycle_days": Avg(cycle, filter=won),
        "cycle_total": Sum(cycle, filter=won),
    }
    if closed is not None:
        aggregates["closed"] = Count("id", filter=closed)
    if created is not None:
        aggregates["opportunities"] = Count("id", filter=created)
    return aggregates


def _with_velocity(row: dict) -> dict:
    win_rate, velocity = _velocity(
        opportunities=row["opportunities"], closed=row["closed"], won=row["won"],
        average_size=row["average_size"], cycle_days=row["cycle_days"],
    )  # fmt: skip
    return {**row, "win_rate": win_rate, "velocity_per_day": velocity}


def _velocity_totals(by_currency: list[dict]) -> dict[str, Any]:
    """All currencies together: the counts add up, and the win rate and the cycle follow from
    them; the average size and the velocity are money, so they are given only when a single
    currency is involved (each currency's are in `by_currency`)."""
    won = sum(row["won"] for row in by_currency)
    closed = sum(row["closed"] for row in by_currency)
    cycle_total = sum(row["cycle_total"] or 0.0 for row in by_currency)
    single = by_currency[0] if len(by_currency) == 1 else None
    return {
        "opportunities": sum(row["opportunities"] for row in by_currency),
        "closed": closed,
        "won": won,
        "win_rate": won / closed if closed else 0.0,
        "cycle_days": cycle_total / won if won else None,
        "average_size": single["average_size"] if single else None,
        "velocity_per_day": single["velocity_per_day"] if single else 0.0 if not by_currency
        else None,
        "currency": single["currency"] if single else None,
        "by_currency": by_currency,
    }  # fmt: skip


def sales_velocity(*, user, scope: Scope = Scope(), days: int = 90, now=None) -> dict[str, Any]:
    """Over the last `days`: opportunities (deals created), won, win rate (won of closed),
    average won deal size, average cycle (created to closed for won deals), and velocity =
    opportunities x win rate x average size / cycle days (per day), per currency
    (`by_currency`) and for all together (see _velocity_totals). One query."""
    now = now or timezone.now()
    since = now - timedelta(days=days)
    created = Q(created_at__gte=since, created_at__lte=now)
    closed = Q(closed_at__gte=since, closed_at__lte=now)
    rows = (
        scoped_sales(user=user, scope=scope)
        .filter(created | closed)
        .order_by()
        .values("currency")
        .annotate(**_velocity_aggregates(_won_q(since, now), closed=closed, created=created))
        .order_by("currency")
    )
    return {**_velocity_totals([_with_velocity(row) for row in rows]), "days": days}


def velocity_trend(*, user, scope: Scope = Scope(), months: int = 6, now=None) -> list[dict]:
    """sales_velocity per calendar month (this month so far and the `months - 1` before it),
    in two queries: deals created per month and currency, and deals closed per month and
    currency."""
    now = now or timezone.now()
    start = month_start(now, months - 1)
    sales = scoped_sales(user=user, scope=scope).order_by()
    created = {
        (_month_key(row["month"]), row["currency"]): row["n"]
        for row in sales.filter(created_at__gte=start, created_at__lte=now)
        .annotate(month=TruncMonth("created_at"))
        .values("month", "currency")
        .annotate(n=Count("id"))
    }
    closed = {
        (_month_key(row["month"]), row["currency"]): row
        for row in sales.filter(closed_at__gte=start, closed_at__lte=now)
        .annotate(month=TruncMonth("closed_at"))
        .values("month", "currency")
        .annotate(closed=Count("id"), **_velocity_aggregates(Q(status=WON)))
    }
    currencies = sorted({currency for _, currency in [*created, *closed]})
    empty = {"closed": 0, "won": 0, "average_size": None, "cycle_days": None, "cycle_total": None}
    rows = []
    for back in range(months - 1, -1, -1):
        month = month_start(now, back)
        by_currency = []
        for currency in currencies:
            key = (_month_key(month), currency)
            if key not in created and key not in closed:
                continue
            found = closed.get(key, empty)
            by_currency.append(_with_velocity({
                "currency": currency, "opportunities": created.get(key, 0),
                **{name: found[name] for name in empty},
            }))  # fmt: skip
        rows.append({"month": month.date(), **_velocity_totals(by_currency)})
    return rows


def _month_key(moment: datetime) -> tuple[int, int]:
    local = timezone.localtime(moment) if timezone.is_aware(moment) else moment
    return local.year, local.month


def stage_durations(*, user, scope: Scope = Scope(), days: int = 365, now=None) -> list[dict]:
    """Days spent in each open stage (from the deal's StageChange rows: entering a stage
    until the next change), median and average, over stage changes in the last `days`.

    One query: the next change comes from a window function in a subquery, and the outer
    query aggregates it per stage (a window cannot sit inside an aggregate directly)."""
    now = now or timezone.now()
    changes = StageChange.objects.filter(
        sale__in=scoped_sales(user=user, scope=scope).values("pk"),
        changed_at__gte=now - timedelta(days=days),
        changed_at__lte=now,
    ).annotate(
        left_at=Window(
            Lead("changed_at"),
            partition_by=[F("sale_id")],
            order_by=[F("changed_at").asc(), F("id").asc()],
        ),  # fmt: skip
    )
    spent = DaysBetween("changed_at", "left_at")
    stages = [status for status in Sale.Status if status.value in Sale.OPEN_STATUSES]
    totals = {}
    for status in stages:
        in_stage = Q(to_status=status.value)
        totals[f"{status.value}_median"] = Median(spent, filter=in_stage)
        totals[f"{status.value}_average"] = Avg(spent, filter=in_stage)
        totals[f"{status.value}_n"] = Count("id", filter=in_stage & Q(left_at__isnull=False))
    row = changes.aggregate(**totals)
    return [
        {"status": status.value, "label": status.label,
         "median_days": row[f"{status.value}_median"],
         "average_days": row[f"{status.value}_average"],
         "changes": row[f"{status.value}_n"]}
        for status in stages
    ]  # fmt: skip


# Revenue and pipeline -----------------------------------------------------------------------


def revenue(*, user, scope: Scope = Scope(), now=None) -> list[dict]:
    """Won revenue per currency over the last 30, 90 and 365 days, in one query."""
    now = now or timezone.now()
    windows = {name: _won_q(now - timedelta(days=days), now, with_amount=True)
               for name, days in REVENUE_WINDOWS.items()}  # fmt: skip
    money = DecimalField(max_digits=18, decimal_places=2)
    return list(
        scoped_sales(user=user, scope=scope)
        .filter(_won_q(now - timedelta(days=365), now, with_amount=True))
        .order_by()
        .values("currency")
        .annotate(
            **{
                name: Coalesce(Sum("amount", filter=q), Value(Decimal(0)), output_field=money)
                for name, q in windows.items()
            },  # fmt: skip
            average_size=Avg("amount", output_field=money),
        )
        .order_by("currency")
    )


REVENUE_WINDOWS = {"last_30": 30, "last_90": 90, "last_365": 365}


def revenue_by_month(*, user, scope: Scope = Scope(), months: int = 24, now=None) -> list[dict]:
    """Won revenue per calendar month and currency: this month so far and the `months - 1`
    whole months before it."""
    now = now or timezone.now()
    return list(
        scoped_sales(user=user, scope=scope)
        .filter(_won_q(month_start(now, months - 1), now, with_amount=True))
        .annotate(month=TruncMonth("closed_at"))
        .values("month", "currency")
        .annotate(amount=Sum("amount"), deals=Count("id"))
        .order_by("month", "currency")
    )


def pipeline_summary(*, user, scope: Scope = Scope(), closing_days: int = 30, now=None) -> list:
    """Open pipeline per currency: value, deals, and those expected to close soon."""
    now = now or timezone.now()
    soon = _closing_q(now, closing_days)
    return list(
        scoped_sales(user=user, scope=scope)
        .exclude(status__in=[WON, LOST])
        .order_by()
        .values("currency")
        .annotate(
            deals=Count("id"),
            value=Coalesce(Sum("amount"), Value(Decimal(0))),
            closing_soon=Count("id", filter=soon),
            closing_soon_value=Coalesce(Sum("amount", filter=soon), Value(Decimal(0))),
        )
        .order_by("currency")
    )


def _closing_q(now: datetime, days: int) -> Q:
    today = timezone.localdate(now)
    return Q(expected_close_date__gte=today, expected_close_date__lte=today + timedelta(days=days))


def pipeline_by_stage(*, user, scope: Scope = Scope()) -> list[dict]:
    return list(
        scoped_sales(user=user, scope=scope)
        .exclude(status__in=[WON, LOST])
        .order_by()
        .values("status", "currency")
        .annotate(deals=Count("id"), value=Coalesce(Sum("amount"), Value(Decimal(0))))
        .order_by("status", "currency")
    )


def top_reps(*, user, scope: Scope = Scope(), days: int = 90, limit: int = 5, now=None) -> list:
    now = now or timezone.now()
    return list(
        scoped_sales(user=user, scope=scope)
        .filter(
            _won_q(now - timedelta(days=days), now, with_amount=True),
            assigned_to__isnull=False,
        )  # fmt: skip
        .values(
            "assigned_to",
            "assigned_to__first_name",
            "assigned_to__last_name",
            "assigned_to__username",
            "currency",
        )  # fmt: skip
        .annotate(won=Sum("amount"), deals=Count("id"))
        .order_by("-won", "assigned_to")[:limit]
    )


# The funnel's stages in order; a won deal has passed all of them.
FUNNEL_RANKS = {s: rank for rank, s in enumerate([*Sale.OPEN_STATUSES, WON])}


def _stage_rank(field: str) -> Case:
    return Case(
        *(When(**{field: status}, then=Value(rank)) for status, rank in FUNNEL_RANKS.items()),
        default=Value(-1),
        output_field=IntegerField(),
    )


def with_furthest_stage(sales: QuerySet[Sale]) -> QuerySet[Sale]:
    """Deals annotated with the rank (FUNNEL_RANKS) of the furthest stage they reached: the
    highest of their stage changes and their current stage; every deal has reached NEW."""
    return sales.annotate(
        furthest=Greatest(
            Coalesce(Max(_stage_rank("stage_changes__to_status")), Value(0)),
            _stage_rank("status"),
            Value(0),
        )
    )


def win_loss_funnel(*, user, scope: Scope = Scope(), days: int = 365, now=None) -> list[dict]:
    """Of the deals created in the last `days`: how many reached each stage (at least that
    far: a deal moved from New straight to Proposal has passed Contacted; from StageChange
    and the current stage), and how many are won and lost. One query."""
    now = now or timezone.now()
    sales = scoped_sales(user=user, scope=scope).filter(
        created_at__gte=now - timedelta(days=days), created_at__lte=now
    )
    counts = with_furthest_stage(sales.order_by()).aggregate(
        **{status: Count("pk", filter=Q(furthest__gte=rank))
           for status, rank in FUNNEL_RANKS.items() if status != WON},
        **{WON: Count("pk", filter=Q(status=WON)), LOST: Count("pk", filter=Q(status=LOST))},
    )  # fmt: skip
    return [{"status": s.value, "label": s.label, "deals": counts[s.value]} for s in Sale.Status]


# The records behind a number ----------------------------------------------------------------

DRILLDOWN_METRICS = {
    "revenue": "Won deals with an amount, closed",
    "won": "Won deals, closed",
    "lost": "Lost deals, closed",
    "closed": "Deals closed",
    "created": "Deals created",
    "open": "Open deals",
    "closing": "Open deals expected to close",
    "reached": "Deals created that reached the stage",
}


def metric_deals(
    *,
    user,
    metric: str,
    scope: Scope = Scope(),
    days: int | None = None,
    month: date | None = None,
    currency: str = "",
    status: str = "",
    owner_id: int | None = None,
    now=None,
) -> QuerySet[Sale]:
    """The deals a dashboard number counts, with the same conditions as the selector that
    counted it: over the last `days` (or the calendar month starting at `month`)."""
    if metric not in DRILLDOWN_METRICS:
        raise ValueError(f"Unknown metric {metric!r}")
    now = now or timezone.now()
    if month is not None:
        start = timezone.make_aware(datetime(month.year, month.month, 1))
        end = min(month_start(start + timedelta(days=32)) - timedelta(microseconds=1), now)
    else:
        start, end = now - timedelta(days=days or 30), now
    sales = scoped_sales(user=user, scope=scope)
    if metric in ("revenue", "won"):
        sales = sales.filter(_won_q(start, end, with_amount=metric == "revenue"))
    elif metric == "lost":
        sales = sales.filter(status=LOST, closed_at__gte=start, closed_at__lte=end)
    elif metric == "closed":
        sales = sales.filter(closed_at__gte=start, closed_at__lte=end)
    elif metric == "created":
        sales = sales.filter(created_at__gte=start, created_at__lte=end)
    elif metric == "open":
        sales = sales.exclude(status__in=[WON, LOST])
    elif metric == "closing":
        sales = sales.exclude(status__in=[WON, LOST]).filter(_closing_q(now, days or 30))
    elif metric == "reached":
        sales = sales.filter(created_at__gte=start, created_at__lte=end)
        if status in FUNNEL_RANKS and status != WON:
            sales = with_furthest_stage(sales).filter(furthest__gte=FUNNEL_RANKS[status])
            status = ""  # passed through it, whatever the stage now
    if status:
        sales = sales.filter(status=status)
    if currency:
        sales = sales.filter(currency=currency)
    if owner_id:
        sales = sales.filter(assigned_to_id=owner_id)
    return sales.select_related("customer", "assigned_to").order_by("-closed_at", "-created_at")


# A rep's own numbers ------------------------------------------------------------------------


def rep_month_numbers(*, user, now=None) -> dict[str, Any]:
    """The user's own numbers this month (so far) and last month: won revenue per currency,
    deals won, activities logged. Two queries."""
    now = now or timezone.now()
    this_start, last_start = month_start(now, 0), month_start(now, 1)
    this, last = Q(closed_at__gte=this_start), Q(closed_at__lt=this_start)
    money = DecimalField(max_digits=18, decimal_places=2)
    won = list(
        Sale.objects.filter(assigned_to=user)
        .filter(_won_q(last_start, now))
        .order_by()
        .values("currency")
        .annotate(
            this_month=Coalesce(Sum("amount", filter=this), Value(Decimal(0)), output_field=money),
            last_month=Coalesce(Sum("amount", filter=last), Value(Decimal(0)), output_field=money),
            this_month_deals=Count("id", filter=this),
            last_month_deals=Count("id", filter=last),
        )
        .order_by("currency")
    )
    activities = SaleActivity.objects.filter(
        user=user, occurred_at__gte=last_start, occurred_at__lte=now
    ).aggregate(
        this_month=Count("id", filter=Q(occurred_at__gte=this_start)),
        last_month=Count("id", filter=Q(occurred_at__lt=this_start)),
    )
    return {
        "this_month_start": this_start.date(),
        "last_month_start": last_start.date(),
        "revenue": won,
        # One row per currency: the deal counts add up across them.
        "deals_won": {
            "this_month": sum(row["this_month_deals"] for row in won),
            "last_month": sum(row["last_month_deals"] for row in won),
        },
        "activities": activities,
    }
