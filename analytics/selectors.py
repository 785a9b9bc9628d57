"""The spec's metrics, each one or a few SQL queries over the other apps' data (no copies of
it, no Python loops over querysets). Every function takes the asking user and counts only
what crm.permissions lets them see.

Money is per currency: totals group by currency and are never added across currencies.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
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
    FloatField,
    Max,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce, Greatest, Least, TruncMonth
from django.utils import timezone

from analytics.expressions import DaysBetween
from crm.models import TeamMembership
from crm.permissions import visible_customers, visible_sales
from customers.models import Customer
from sales.models import Sale

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


def customers_with_clv(*, user, lifespan_years: float, now: datetime | None = None) -> QuerySet:
    """Customers annotated with their won deals and CLV = average won amount x purchases per
    year x expected lifespan. Purchases per year count from the first win (at least a
    year, so one recent win is not extrapolated to dozens a year)."""
    now = now or timezone.now()
    won = Q(sales__status=WON, sales__amount__isnull=False)
    money = DecimalField(max_digits=18, decimal_places=2)
    customers = visible_customers(user).annotate(
        won_count=Count("sales", filter=won),
        won_average=Avg("sales__amount", filter=won, output_field=money),
        first_won=Min("sales__closed_at", filter=won),
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


def segment_clv(*, user, customers: QuerySet | None = None, now=None) -> dict[str, Any]:
    """Average and total CLV of a set of customers (all visible when None), in one query."""
    lifespan, source = expected_lifespan_years(user=user, now=now)
    annotated = customers_with_clv(user=user, lifespan_years=lifespan, now=now)
    if customers is not None:
        annotated = annotated.filter(pk__in=customers.values("pk"))
    totals = annotated.aggregate(customers=Count("id"), average=Avg("clv"), total=Sum("clv"))
    return {**totals, "lifespan_years": lifespan, "lifespan_source": source}


def high_clv_customers(*, user, limit: int = 10, now=None) -> list:
    lifespan, _ = expected_lifespan_years(user=user, now=now)
    return list(
        customers_with_clv(user=user, lifespan_years=lifespan, now=now)
        .filter(won_count__gt=0)
        .select_related("owner")
        .order_by("-clv", "pk")[:limit]
    )


# Churn risk ---------------------------------------------------------------------------------


def customers_with_churn(*, user, now: datetime | None = None) -> QuerySet[Customer]:
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
        visible_customers(user)
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


def churn_risk_customers(*, user, threshold: float = 0.6, limit: int = 20, now=None) -> list:
    rows = list(
        customers_with_churn(user=user, now=now)
        .filter(churn_probability__gte=threshold)
        .select_related("owner")
        .order_by("-churn_probability", "pk")[:limit]
    )
    for customer in rows:
        customer.churn_reasons = churn_reasons(customer, now=now)
    return rows


# Sales velocity -----------------------------------------------------------------------------


def sales_velocity(*, user, scope: Scope = Scope(), days: int = 90, now=None) -> dict[str, Any]:
    """Over the last `days`: opportunities (deals created), won, win rate (won of closed),
    average won deal size, average cycle (created to closed for won deals), and velocity =
    opportunities x win rate x average size / cycle days (per day). One query."""
    now = now or timezone.now()
    since = now - timedelta(days=days)
    sales = scoped_sales(user=user, scope=scope)
    closed_in = Q(closed_at__gte=since, closed_at__lte=now)
    won_in = closed_in & Q(status=WON)
    row = sales.aggregate(
        opportunities=Count("id", filter=Q(created_at__gte=since, created_at__lte=now)),
        closed=Count("id", filter=closed_in),
        won=Count("id", filter=won_in),
        average_size=Avg("amount", filter=won_in & Q(amount__isnull=False)),
        cycle_days=Avg(DaysBetween("created_at", "closed_at"), filter=won_in),
    )
    win_rate = row["won"] / row["closed"] if row["closed"] else 0.0
    size = float(row["average_size"] or 0)
    cycle = row["cycle_days"] or 0.0
    velocity = row["opportunities"] * win_rate * size / cycle if cycle else 0.0
    return {**row, "win_rate": win_rate, "velocity_per_day": velocity, "days": days}


def stage_durations(*, user, scope: Scope = Scope(), days: int = 365, now=None) -> list[dict]:
    """Average days spent in each stage (from the deal's StageChange rows: entering a stage
    until the next change), over stage changes in the last `days`. One query."""
    from django.db.models import Window
    from django.db.models.functions import Lead

    from sales.models import StageChange

    now = now or timezone.now()
    sales = scoped_sales(user=user, scope=scope)
    changes = StageChange.objects.filter(
        sale__in=sales.values("pk"), changed_at__gte=now - timedelta(days=days)
    ).annotate(
        left_at=Window(
            Lead("changed_at"),
            partition_by=[F("sale_id")],
            order_by=[F("changed_at").asc(), F("id").asc()],
        ),  # fmt: skip
    )
    rows = {}
    for change in changes.values("to_status", "changed_at", "left_at").iterator(chunk_size=5000):
        # Window results cannot be aggregated in the same SELECT: sum them per stage here.
        if change["left_at"] is None:
            continue
        total, count = rows.get(change["to_status"], (0.0, 0))
        span = (change["left_at"] - change["changed_at"]).total_seconds() / 86400
        rows[change["to_status"]] = (total + span, count + 1)
    return [
        {"status": status.value, "label": status.label,
         "average_days": rows[status.value][0] / rows[status.value][1]
         if status.value in rows else None}
        for status in Sale.Status if status.value in Sale.OPEN_STATUSES
    ]  # fmt: skip


# Revenue and pipeline -----------------------------------------------------------------------


def revenue(*, user, scope: Scope = Scope(), now=None) -> list[dict]:
    """Won revenue per currency over the last 30, 90 and 365 days, in one query."""
    now = now or timezone.now()
    won = Q(status=WON, amount__isnull=False)
    windows = {name: won & Q(closed_at__gte=now - timedelta(days=days), closed_at__lte=now)
               for name, days in (("last_30", 30), ("last_90", 90), ("last_365", 365))}  # fmt: skip
    money = DecimalField(max_digits=18, decimal_places=2)
    return list(
        scoped_sales(user=user, scope=scope)
        .filter(won & Q(closed_at__gte=now - timedelta(days=365)))
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


def revenue_by_month(*, user, scope: Scope = Scope(), months: int = 24, now=None) -> list[dict]:
    now = now or timezone.now()
    start = (timezone.localtime(now) - timedelta(days=31 * months)).replace(day=1)
    return list(
        scoped_sales(user=user, scope=scope)
        .filter(status=WON, amount__isnull=False, closed_at__gte=start)
        .annotate(month=TruncMonth("closed_at"))
        .values("month", "currency")
        .annotate(amount=Sum("amount"), deals=Count("id"))
        .order_by("month", "currency")
    )


def pipeline_summary(*, user, scope: Scope = Scope(), closing_days: int = 30, now=None) -> list:
    """Open pipeline per currency: value, deals, and those expected to close soon."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    soon = Q(
        expected_close_date__gte=today,
        expected_close_date__lte=today + timedelta(days=closing_days),
    )
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
            status=WON,
            amount__isnull=False,
            closed_at__gte=now - timedelta(days=days),
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


def win_loss_funnel(*, user, scope: Scope = Scope(), days: int = 365, now=None) -> list[dict]:
    """How many deals created in the period reached each stage (from StageChange), and how
    many were won or lost. One query."""
    from sales.models import StageChange

    now = now or timezone.now()
    sales = scoped_sales(user=user, scope=scope).filter(created_at__gte=now - timedelta(days=days))
    reached = dict(
        StageChange.objects.filter(sale__in=sales.values("pk"))
        .values("to_status")
        .annotate(deals=Count("sale", distinct=True))
        .values_list("to_status", "deals")
    )
    return [{"status": s.value, "label": s.label, "deals": reached.get(s.value, 0)}
            for s in Sale.Status]  # fmt: skip
