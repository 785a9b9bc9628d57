"""Customer lifetime value (DESIGN.md "Analytics"): the expected lifespan, CLV per customer
and currency, the highest-CLV customers and the CLV of a set of customers. Amounts in
different currencies never add up."""

import copy
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db.models import (
    Avg,
    Count,
    DecimalField,
    ExpressionWrapper,
    F,
    FilteredRelation,
    FloatField,
    Func,
    IntegerField,
    Max,
    Min,
    Q,
    QuerySet,
    Sum,
    Value,
    Window,
)
from django.db.models.functions import Cast, Coalesce, Greatest, RowNumber
from django.utils import timezone

from analytics.expressions import DaysBetween
from analytics.selectors.periods import WON
from crm.permissions.analytics import UNSCOPED, AnalyticsScope, scoped_customers
from customers.models import Customer
from sales.models import Sale

DEFAULT_LIFESPAN_YEARS = 3.0
MIN_CHURNED_FOR_LIFESPAN = 20  # fewer churned customers with history: the spec's 3 years

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
    scope: AnalyticsScope = UNSCOPED,
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
        scoped_customers(user, scope)
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


def _won_deals(*, user, scope: AnalyticsScope) -> QuerySet[Sale]:
    """Won deals with an amount of the customers in scope (all of their deals, whoever
    works them: CLV is the customer's)."""
    won = Sale.objects.filter(status=WON, amount__isnull=False).order_by()
    customers = scoped_customers(user, scope)
    if customers.query.has_filters():
        won = won.filter(customer__in=customers.values("pk"))
    return won


def buyers_with_clv(
    *,
    user,
    lifespan_years: float,
    scope: AnalyticsScope = UNSCOPED,
    now: datetime | None = None,
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
    scope: AnalyticsScope = UNSCOPED,
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
    scope: AnalyticsScope = UNSCOPED,
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
    members = scoped_customers(user, scope)
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
    scope: AnalyticsScope = UNSCOPED,
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
