"""The spec's metrics, each one or a few SQL queries over the other apps' data (no copies of
it, no Python loops over querysets). Every function takes the asking user and counts only
what crm.permissions lets them see.

Money is per currency: totals group by currency and are never added across currencies.
"""

import copy
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
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
    Func,
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
from django.db.models.functions import Cast, Coalesce, Greatest, Least, RowNumber
from django.utils import timezone

from analytics.expressions import DaysBetween, Median
from crm.permissions import visible_customers, visible_sales
from crm.selectors import team_member_ids
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
        sales = sales.filter(assigned_to__in=team_member_ids(scope.team_id))
    if scope.rep_id:
        sales = sales.filter(assigned_to_id=scope.rep_id)
    return sales


def scoped_customers(*, user, scope: Scope = Scope()) -> QuerySet[Customer]:
    """Visible customers, of one team's or one rep's book (by owner) when scoped."""
    customers = visible_customers(user)
    if scope.team_id:
        customers = customers.filter(owner__in=team_member_ids(scope.team_id))
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


MIN_LIFESPAN_YEARS = 1.0  # as purchases per year count at least a year


def expected_lifespan_years() -> tuple[float, str]:
    """The average active span of churned customers (first deal to last close), when at
    least MIN_CHURNED_FOR_LIFESPAN of them have one; the spec's 3 years otherwise. Measured
    over every customer, whoever asks: it is a fact about the business (no customer's data
    shows through it), and a customer's CLV must not depend on who looks at it."""
    spans = (
        Customer.objects.filter(lifecycle_stage=Customer.LifecycleStage.CHURNED)
        .annotate(first=Min("sales__created_at"), last=Max("sales__closed_at"))
        .filter(first__isnull=False, last__isnull=False, last__gt=F("first"))
        .annotate(days=DaysBetween("first", "last"))
        .aggregate(n=Count("id"), average=Avg("days"))
    )
    if spans["n"] >= MIN_CHURNED_FOR_LIFESPAN and spans["average"]:
        years = spans["average"] / 365.25
        source = f"measured from {spans['n']} churned customers"
        if years < MIN_LIFESPAN_YEARS:
            return MIN_LIFESPAN_YEARS, f"{source} ({years:.1f} years), counted as a year"
        return years, source
    return DEFAULT_LIFESPAN_YEARS, "the default 3 years (not enough churned customers yet)"


def _years_since(first_won, now: datetime) -> Coalesce:
    """Years from the first win to `now`, 0 without a win (Coalesce before any Greatest:
    SQLite's MAX(NULL, 1) is NULL)."""
    return Coalesce(
        ExpressionWrapper(DaysBetween(first_won, Value(now)) / 365.25, output_field=FloatField()),
        Value(0.0),
    )


def _customer_lifespan(first_won, now: datetime, lifespan_years: float) -> Greatest:
    """A customer's expected lifespan: the expected one, or longer for a customer who has
    bought for longer already; so CLV is never below what they have paid (a customer
    whose one purchase is older than the lifespan keeps its value instead of decaying)."""
    return Greatest(Value(lifespan_years), _years_since(first_won, now))


def _purchase_years(first_won, now: datetime) -> Greatest:
    """Years since the first win, at least one (so one recent win is not extrapolated to
    dozens a year)."""
    return Greatest(_years_since(first_won, now), Value(1.0))


def customers_with_clv(
    *,
    user,
    lifespan_years: float,
    scope: Scope = Scope(),
    currency: str | None = None,
    now: datetime | None = None,
) -> QuerySet:
    """Customers annotated with their won deals in one currency (the default one unless
    given; amounts in different currencies never add up) and CLV = average won amount x
    purchases per year x expected lifespan. Purchases per year count from the first win
    (at least a year); the lifespan is at least the customer's own so far."""
    now = now or timezone.now()
    currency = currency or settings.DEFAULT_CURRENCY
    money = DecimalField(max_digits=18, decimal_places=2)
    # A filtered join, not a filter inside the aggregates: each customer meets only its won
    # deals (through sale_won_currency_idx) instead of all of them.
    won = Q(sales__status=WON, sales__amount__isnull=False, sales__currency=currency)
    customers = (
        scoped_customers(user=user, scope=scope)
        .alias(won=FilteredRelation("sales", condition=won))
        .annotate(
            won_count=Count("won__id"),
            won_average=Avg("won__amount", output_field=money),
            first_won=Min("won__closed_at"),
        )
    )
    return customers.annotate(
        purchases_per_year=ExpressionWrapper(
            F("won_count") * 1.0 / _purchase_years(F("first_won"), now), output_field=FloatField()
        ),
        clv=ExpressionWrapper(
            Coalesce(F("won_average"), Value(Decimal(0)), output_field=money)
            * F("purchases_per_year")
            * _customer_lifespan(F("first_won"), now, lifespan_years),
            output_field=FloatField(),
        ),
    )


def _won_deals(*, user, scope: Scope) -> QuerySet[Sale]:
    """Won deals with an amount of the customers in scope (all of their deals, whoever
    works them: CLV is the customer's)."""
    won = Sale.objects.filter(status=WON, amount__isnull=False).order_by()
    customers = scoped_customers(user=user, scope=scope)
    if customers.query.has_filters():
        won = won.filter(customer__in=customers.values("pk"))
    return won


def buyers_with_clv(
    *, user, lifespan_years: float, scope: Scope = Scope(), now: datetime | None = None
) -> QuerySet:
    """The CLV of customers_with_clv for every customer and currency with a won deal
    (`customer_id`, `currency`, `won_count`, `won_total`, `purchases_per_year`, `clv`), from
    the won deals alone: an index-only walk of sale_won_currency_idx instead of joining
    every customer to its deals (1M deals, 200k customers: 0.9 s -> 0.2 s). Average x count
    is the total, so CLV = total / years x lifespan. Kept narrow: the rows are sorted."""
    now = now or timezone.now()
    return (
        _won_deals(user=user, scope=scope)
        .values("customer_id", "currency")
        .annotate(
            won_count=Count("amount"),  # not the id: index-only
            # Summed as double precision: CLV is a float anyway, and over 350k deals a
            # numeric sum costs a third of the grouping.
            won_total=Sum(Cast("amount", FloatField())),
            purchases_per_year=ExpressionWrapper(
                Count("amount") * 1.0 / _purchase_years(Min("closed_at"), now),
                output_field=FloatField(),
            ),
            clv=ExpressionWrapper(
                Sum(Cast("amount", FloatField()))
                / _purchase_years(Min("closed_at"), now)
                * _customer_lifespan(Min("closed_at"), now, lifespan_years),
                output_field=FloatField(),
            ),
        )
    )


class OverPartition(Func):
    """An aggregate over a grouped query's rows, as a window: SUM(clv) OVER (PARTITION BY
    currency) beside each group. Django's Window refuses an Aggregate of an aggregate
    (`clv` is one), so the function is named here."""

    window_compatible = True
    output_field = FloatField()


def clv_by_currency(
    *,
    user,
    lifespan_years: float,
    scope: Scope = Scope(),
    customers: QuerySet | None = None,
    limit: int = 10,
    now=None,
) -> dict[str, list]:
    """CLV per currency in one query over buyers_with_clv: the `limit` customers of highest
    CLV in each currency (`top`: rows of buyers_with_clv by currency and rank) and, for each
    currency, how many bought in it and their total CLV (`by_currency`). Windows over the
    grouped buyers: one sort serves the ranking and the totals."""
    buyers = buyers_with_clv(user=user, lifespan_years=lifespan_years, scope=scope, now=now)
    if customers is not None:
        buyers = buyers.filter(customer_id__in=customers.values("pk"))
    ranked = buyers.annotate(
        rank=Window(RowNumber(), partition_by=[F("currency")],
                    order_by=[F("clv").desc(), F("customer_id").asc()]),
        currency_buyers=Window(OverPartition(Value(1), function="COUNT",
                                             output_field=IntegerField()),
                               partition_by=[F("currency")]),
        currency_total=Window(OverPartition(F("clv"), function="SUM"),
                              partition_by=[F("currency")]),
    ).filter(rank__lte=max(limit, 1))  # fmt: skip
    rows = sorted(ranked, key=lambda row: (row["currency"], row["rank"]))
    return {
        "top": [row for row in rows if row["rank"] <= limit],
        "by_currency": [
            {"currency": row["currency"], "buyers": row["currency_buyers"],
             "total": row["currency_total"]}
            for row in rows if row["rank"] == 1
        ],
    }  # fmt: skip


def segment_clv(
    *,
    user,
    customers: QuerySet | None = None,
    scope: Scope = Scope(),
    lifespan: tuple[float, str] | None = None,
    ranking: dict | None = None,
    now=None,
) -> dict[str, Any]:
    """The CLV of a set of customers (all visible, or `scope`'s, when None): how many they
    are and, per currency (`by_currency`), how many bought in it and their total CLV and
    average CLV per buyer. Pass `ranking` when clv_by_currency
    ran already for the same customers. Two or three queries (four without the lifespan)."""
    lifespan_years, source = lifespan or expected_lifespan_years()
    if ranking is None:
        ranking = clv_by_currency(user=user, lifespan_years=lifespan_years, scope=scope,
                                  customers=customers, limit=0, now=now)  # fmt: skip
    members = scoped_customers(user=user, scope=scope)
    if customers is not None:
        members = members.filter(pk__in=customers.values("pk"))
    count = members.count()
    return {
        "customers": count,
        "by_currency": [
            {**row, "average": row["total"] / row["buyers"] if row["buyers"] else None}
            for row in ranking["by_currency"]
        ],
        "lifespan_years": lifespan_years,
        "lifespan_source": source,
    }


def high_clv_customers(
    *,
    user,
    scope: Scope = Scope(),
    limit: int = 10,
    lifespan_years: float | None = None,
    ranking: dict | None = None,
    now=None,
) -> list:
    """The `limit` customers of highest CLV in each currency, by currency then CLV: each a
    Customer (with its owner) carrying `currency`, `won_count`, `won_average`,
    `purchases_per_year` and `clv` in that currency. Two queries (clv_by_currency, unless
    given as `ranking`, then the customers)."""
    if ranking is None:
        if lifespan_years is None:
            lifespan_years, _ = expected_lifespan_years()
        ranking = clv_by_currency(user=user, lifespan_years=lifespan_years, scope=scope,
                                  limit=limit, now=now)  # fmt: skip
    top = ranking["top"]
    customers = Customer.objects.select_related("owner").in_bulk(
        [row["customer_id"] for row in top]
    )
    rows = []
    for row in top:  # at most `limit` per currency, already computed in SQL
        if row["customer_id"] not in customers:
            continue  # deleted between the two queries
        customer = copy.copy(customers[row["customer_id"]])  # once per currency it bought in
        for name in ("currency", "clv", "won_count", "purchases_per_year"):
            setattr(customer, name, row[name])
        customer.won_average = row["won_total"] / row["won_count"]
        rows.append(customer)
    return rows


# Churn risk ---------------------------------------------------------------------------------


def customers_with_churn(
    *, user, scope: Scope = Scope(), now: datetime | None = None
) -> QuerySet[Customer]:
    """Customers annotated with the three churn factors, each 0-1, and their weighted sum:
    days since contact (capped at CHURN_CONTACT_DAYS; never contacted counts fully), no
    open deals, and engagement (LOW 1 … VIP 0)."""
    return _with_churn(
        _churn_candidates(user=user, scope=scope),
        has_open_deals=Exists(_open_deals()),
        now=now or timezone.now(),
    )


def _churn_candidates(*, user, scope: Scope) -> QuerySet[Customer]:
    return scoped_customers(user=user, scope=scope).exclude(
        lifecycle_stage=Customer.LifecycleStage.CHURNED
    )


def _open_deals() -> QuerySet[Sale]:
    return Sale.objects.filter(customer=OuterRef("pk")).exclude(status__in=[WON, LOST])


def _with_churn(customers: QuerySet, *, has_open_deals, now: datetime) -> QuerySet[Customer]:
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
    return customers.annotate(
        has_open_deals=has_open_deals,
        contact_risk=Greatest(contact, Value(0.0)),
        deals_risk=Case(
            When(has_open_deals=True, then=Value(0.0)),
            default=Value(1.0),
            output_field=FloatField(),
        ),  # fmt: skip
        engagement_risk=engagement,
    ).annotate(
        churn_probability=ExpressionWrapper(
            F("contact_risk") * CHURN_WEIGHTS["contact"]
            + F("deals_risk") * CHURN_WEIGHTS["deals"]
            + F("engagement_risk") * CHURN_WEIGHTS["engagement"],
            output_field=FloatField(),
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
    """The `limit` customers most at risk (at least `threshold`), with their reasons.

    Two queries, customers without open deals and those with, each with its deals factor a
    constant: the planner then sorts each half by probability and checks open deals only
    until it has `limit` (an anti-join and a semi-join), instead of looking up the open
    deals of every customer to sort them (200k customers: 0.42 s -> 0.24 s)."""
    now = now or timezone.now()
    candidates = _churn_candidates(user=user, scope=scope)
    halves = [
        _with_churn(candidates.filter(~Exists(_open_deals())), has_open_deals=Value(False),
                    now=now),
        _with_churn(candidates.filter(Exists(_open_deals())), has_open_deals=Value(True),
                    now=now),
    ]  # fmt: skip
    found = [
        customer
        for half in halves
        for customer in half.filter(churn_probability__gte=threshold)
        .select_related("owner")
        .order_by("-churn_probability", "pk")[:limit]
    ]
    rows = sorted(found, key=lambda customer: (-customer.churn_probability, customer.pk))[:limit]
    for customer in rows:
        customer.churn_reasons = churn_reasons(customer, now=now)
    return rows


# Sales velocity and the funnel --------------------------------------------------------------


def _won_q(start: datetime, end: datetime, *, with_amount: bool = False) -> Q:
    won = Q(status=WON, closed_at__gte=start, closed_at__lte=end)
    return won & Q(amount__isnull=False) if with_amount else won


def month_starts(now: datetime, months: int) -> list[datetime]:
    """The first moments of this month and the `months - 1` before it, oldest first."""
    return [month_start(now, back) for back in range(months - 1, -1, -1)]


def _month_index(field: str, starts: list[datetime]) -> Case:
    """Which of `starts` (month starts, oldest first) holds `field`: its index, -1 before the
    first. Compared with fixed boundaries, which over a million deals is far cheaper than
    truncating every date in the time zone."""
    return Case(
        *(When(**{f"{field}__gte": start}, then=Value(index))
          for index, start in reversed(list(enumerate(starts)))),
        default=Value(-1),
        output_field=IntegerField(),
    )  # fmt: skip


def _velocity(*, opportunities: int, closed: int, won: int, average_size, cycle_days):
    """Win rate and velocity = opportunities x win rate x average size / cycle days."""
    win_rate = won / closed if closed else 0.0
    cycle = cycle_days or 0.0
    velocity = opportunities * win_rate * float(average_size or 0) / cycle if cycle else 0.0
    return win_rate, velocity


CLOSED_SUMS = ("closed", "won", "won_amount", "won_with_amount", "cycle_total")


def _closed_aggregates(prefix: str = "", within: Q | None = None) -> dict:
    """Additive sums over closed deals (so groups can be added up): closed, won, the won
    amount and how many won deals have one, and the won deals' total cycle (created to
    closed); only the deals `within` when given. Counting a column rather than the id lets
    an index answer."""
    won = Q(status=WON) & within if within else Q(status=WON)
    return {
        f"{prefix}closed": Count("closed_at", filter=within),
        f"{prefix}won": Count("closed_at", filter=won),
        f"{prefix}won_amount": Sum("amount", filter=won),
        f"{prefix}won_with_amount": Count("amount", filter=won),
        f"{prefix}cycle_total": Sum(DaysBetween("created_at", "closed_at"), filter=won),
    }


def _velocity_row(currency: str, opportunities: int, closed_rows: list[dict], prefix: str = ""):
    """One currency's velocity from its created count and its closed sums (any number of
    groups, e.g. months, added up)."""
    sums = {name: sum((row[prefix + name] or 0) for row in closed_rows) for name in CLOSED_SUMS}
    average_size = sums["won_amount"] / sums["won_with_amount"] if sums["won_with_amount"] else None
    cycle_days = sums["cycle_total"] / sums["won"] if sums["won"] else None
    row = {
        "currency": currency, "opportunities": opportunities, "closed": sums["closed"],
        "won": sums["won"], "average_size": average_size, "cycle_days": cycle_days,
        "cycle_total": sums["cycle_total"] if sums["won"] else None,
    }  # fmt: skip
    win_rate, velocity = _velocity(
        opportunities=opportunities, closed=row["closed"], won=row["won"],
        average_size=average_size, cycle_days=cycle_days,
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


def deal_flow(
    *, user, scope: Scope = Scope(), days: int = 90, months: int = 6, now=None
) -> dict[str, Any]:
    """Sales velocity over the last `days` (`velocity`), the same per calendar month for this
    month and the `months - 1` before it (`trend`), and the win/loss funnel of the deals
    created in the last `days` (`funnel`). Two queries, whatever the amount of data: deals
    created, and deals closed, each per month and currency with the period's share counted
    beside.

    Velocity = opportunities (deals created) x win rate (won of closed) x average won size /
    average cycle (created to closed for won deals), per day and per currency. The funnel
    counts the deals that got at least as far as each stage (one moved from New straight to
    Proposal has passed Contacted; Sale.furthest_stage_rank), and those won and lost."""
    now = now or timezone.now()
    since = now - timedelta(days=days)
    starts = month_starts(now, months)
    first = min([since, *starts])
    sales = scoped_sales(user=user, scope=scope).order_by()
    recent = Q(created_at__gte=since)
    created = list(
        sales.filter(created_at__gte=first, created_at__lte=now)
        .annotate(month=_month_index("created_at", starts))
        .values("month", "currency")
        .annotate(
            created=Count("created_at"),
            period_created=Count("created_at", filter=recent),
            **{f"period_reached_{rank}":
               Count("created_at", filter=recent & Q(furthest_stage_rank__gte=rank))
               for rank in range(1, len(Sale.OPEN_STATUSES))},
            period_won=Count("created_at", filter=recent & Q(status=WON)),
            period_lost=Count("created_at", filter=recent & Q(status=LOST)),
        )
    )  # fmt: skip
    closed = list(
        sales.filter(closed_at__gte=first, closed_at__lte=now)
        .annotate(month=_month_index("closed_at", starts))
        .values("month", "currency")
        .annotate(
            **_closed_aggregates(),
            **_closed_aggregates("period_", within=Q(closed_at__gte=since)),
        )
    )
    currencies = sorted({row["currency"] for row in [*created, *closed]})

    by_currency = []
    for currency in currencies:
        opportunities = sum(r["period_created"] for r in created if r["currency"] == currency)
        closed_rows = [row for row in closed if row["currency"] == currency]
        row = _velocity_row(currency, opportunities, closed_rows, prefix="period_")
        if row["opportunities"] or row["closed"]:
            by_currency.append(row)

    trend = []
    for index, start in enumerate(starts):
        month_by_currency = []
        for currency in currencies:
            made = [r for r in created if (r["month"], r["currency"]) == (index, currency)]
            done = [r for r in closed if (r["month"], r["currency"]) == (index, currency)]
            if made or done:
                opportunities = made[0]["created"] if made else 0
                month_by_currency.append(_velocity_row(currency, opportunities, done))
        trend.append({"month": start.date(), **_velocity_totals(month_by_currency)})

    reached = {
        Sale.FUNNEL_STATUSES[0]: sum(row["period_created"] for row in created),
        **{Sale.FUNNEL_STATUSES[rank]: sum(row[f"period_reached_{rank}"] for row in created)
           for rank in range(1, len(Sale.OPEN_STATUSES))},
        WON: sum(row["period_won"] for row in created),
        LOST: sum(row["period_lost"] for row in created),
    }  # fmt: skip
    return {
        "velocity": {**_velocity_totals(by_currency), "days": days},
        "trend": trend,
        "funnel": [{"status": s.value, "label": s.label, "deals": reached[s.value]}
                   for s in Sale.Status],
    }  # fmt: skip


def sales_velocity(*, user, scope: Scope = Scope(), days: int = 90, now=None) -> dict[str, Any]:
    """Velocity over the last `days`, per currency (`by_currency`) and for all together (see
    _velocity_totals); see deal_flow."""
    return deal_flow(user=user, scope=scope, days=days, months=0, now=now)["velocity"]


def velocity_trend(*, user, scope: Scope = Scope(), months: int = 6, now=None) -> list[dict]:
    """sales_velocity per calendar month: this month so far and the `months - 1` before."""
    return deal_flow(user=user, scope=scope, days=1, months=months, now=now)["trend"]


def win_loss_funnel(*, user, scope: Scope = Scope(), days: int = 365, now=None) -> list[dict]:
    """Of the deals created in the last `days`: how many reached each stage, won and lost."""
    return deal_flow(user=user, scope=scope, days=days, months=0, now=now)["funnel"]


def stage_durations(*, user, scope: Scope = Scope(), days: int = 365, now=None) -> list[dict]:
    """Days spent in each open stage (entering it until leaving it, StageChange.left_at),
    median and average, over the stages entered in the last `days` and left since. One
    query (from stagechange_left_idx alone when every deal is visible)."""
    now = now or timezone.now()
    changes = StageChange.objects.filter(
        changed_at__gte=now - timedelta(days=days), changed_at__lte=now, left_at__isnull=False
    )
    sales = scoped_sales(user=user, scope=scope)
    if sales.query.has_filters():
        changes = changes.filter(sale__in=sales.values("pk"))
    spent = DaysBetween("changed_at", "left_at")
    stages = [status for status in Sale.Status if status.value in Sale.OPEN_STATUSES]
    totals = {}
    for status in stages:
        in_stage = Q(to_status=status.value)
        totals[f"{status.value}_median"] = Median(spent, filter=in_stage)
        totals[f"{status.value}_average"] = Avg(spent, filter=in_stage)
        totals[f"{status.value}_n"] = Count("left_at", filter=in_stage)  # not id: index-only
    row = changes.order_by().aggregate(**totals)
    return [
        {"status": status.value, "label": status.label,
         "median_days": row[f"{status.value}_median"],
         "average_days": row[f"{status.value}_average"],
         "changes": row[f"{status.value}_n"]}
        for status in stages
    ]  # fmt: skip


# Revenue and pipeline -----------------------------------------------------------------------


REVENUE_WINDOWS = {"last_30": 30, "last_90": 90, "last_365": 365}


def won_revenue(*, user, scope: Scope = Scope(), months: int = 24, now=None) -> dict[str, list]:
    """Won revenue in one query: per currency over the last 30, 90 and 365 days with the
    average won deal of the year (`windows`), and per calendar month and currency for this
    month and the `months - 1` before it (`by_month`: amount, deals)."""
    now = now or timezone.now()
    starts = month_starts(now, months)
    year_ago = now - timedelta(days=365)
    money = DecimalField(max_digits=18, decimal_places=2)
    windows = {name: Q(closed_at__gte=now - timedelta(days=days))
               for name, days in REVENUE_WINDOWS.items()}  # fmt: skip
    rows = list(
        scoped_sales(user=user, scope=scope)
        .filter(_won_q(min([year_ago, *starts]), now, with_amount=True))
        .order_by()
        .annotate(month=_month_index("closed_at", starts))
        .values("month", "currency")
        .annotate(
            month_amount=Sum("amount", output_field=money),
            deals=Count("amount"),
            **{name: Sum("amount", filter=q, output_field=money) for name, q in windows.items()},
            year_deals=Count("amount", filter=windows["last_365"]),
        )
    )
    by_currency: dict[str, dict] = {}
    for row in rows:
        if not row["year_deals"]:
            continue
        total = by_currency.setdefault(
            row["currency"],
            {"currency": row["currency"], "deals": 0, **dict.fromkeys(windows, Decimal(0))},
        )
        total["deals"] += row["year_deals"]
        for name in windows:
            total[name] += row[name] or Decimal(0)
    for total in by_currency.values():
        total["average_size"] = total["last_365"] / total.pop("deals")
    return {
        "windows": [by_currency[currency] for currency in sorted(by_currency)],
        "by_month": sorted(
            ({"month": starts[row["month"]], "currency": row["currency"],
              "amount": row["month_amount"], "deals": row["deals"]}
             for row in rows if row["month"] >= 0),
            key=lambda row: (row["month"], row["currency"]),
        ),
    }  # fmt: skip


def revenue(*, user, scope: Scope = Scope(), now=None) -> list[dict]:
    """Won revenue per currency over the last 30, 90 and 365 days; see won_revenue."""
    return won_revenue(user=user, scope=scope, months=1, now=now)["windows"]


def revenue_by_month(*, user, scope: Scope = Scope(), months: int = 24, now=None) -> list[dict]:
    """Won revenue per calendar month and currency; see won_revenue."""
    return won_revenue(user=user, scope=scope, months=months, now=now)["by_month"]


def open_pipeline(
    *, user, scope: Scope = Scope(), closing_days: int = 30, now=None
) -> dict[str, list[dict]]:
    """Open deals per stage and currency (`by_stage`: deals, value) and per currency
    (`summary`: deals, value, and those expected to close within `closing_days`). One query
    per stage and currency; the per-currency totals add up its few rows."""
    now = now or timezone.now()
    soon = _closing_q(now, closing_days)
    money = DecimalField(max_digits=18, decimal_places=2)
    rows = list(
        scoped_sales(user=user, scope=scope)
        .exclude(status__in=[WON, LOST])
        .order_by()
        .values("status", "currency")
        .annotate(
            # Counting rows, not ids, lets this read sale_open_value_idx alone; a deal
            # closing soon has an expected close date.
            deals=Count("*"),
            value=Coalesce(Sum("amount"), Value(Decimal(0)), output_field=money),
            closing_soon=Count("expected_close_date", filter=soon),
            closing_soon_value=Coalesce(
                Sum("amount", filter=soon), Value(Decimal(0)), output_field=money
            ),
        )
        .order_by("status", "currency")
    )
    summary: dict[str, dict] = {}
    for row in rows:
        total = summary.setdefault(
            row["currency"],
            {"currency": row["currency"], "deals": 0, "value": Decimal(0), "closing_soon": 0,
             "closing_soon_value": Decimal(0)},
        )  # fmt: skip
        for name in ("deals", "value", "closing_soon", "closing_soon_value"):
            total[name] += row[name]
    return {
        "by_stage": [{name: row[name] for name in ("status", "currency", "deals", "value")}
                     for row in rows],
        "summary": [summary[currency] for currency in sorted(summary)],
    }  # fmt: skip


def _closing_q(now: datetime, days: int) -> Q:
    today = timezone.localdate(now)
    return Q(expected_close_date__gte=today, expected_close_date__lte=today + timedelta(days=days))


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
        .annotate(won=Sum("amount"), deals=Count("amount"))  # not the id: index-only
        .order_by("-won", "assigned_to")[:limit]
    )


FUNNEL_RANKS = {status: rank for rank, status in enumerate(Sale.FUNNEL_STATUSES)}


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
            sales = sales.filter(furthest_stage_rank__gte=FUNNEL_RANKS[status])
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
