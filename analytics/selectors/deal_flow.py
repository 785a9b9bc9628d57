"""Deal flow (DESIGN.md "Analytics"): sales velocity over a period and per month, the
win/loss funnel of the deals created in a period, and the days deals spend in each stage."""

from datetime import timedelta
from typing import Any

from django.db.models import (
    Avg,
    Count,
    Q,
    Sum,
)
from django.utils import timezone

from analytics.expressions import DaysBetween, Median
from analytics.selectors.periods import LOST, WON, month_index, month_starts
from crm.permissions.analytics import UNSCOPED, AnalyticsScope, scoped_sales
from sales.models import Sale, StageChange


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
    *, user, scope: AnalyticsScope = UNSCOPED, days: int = 90, months: int = 6, now=None
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
    sales = scoped_sales(user, scope).order_by()
    recent = Q(created_at__gte=since)
    created = list(
        sales.filter(created_at__gte=first, created_at__lte=now)
        .annotate(month=month_index("created_at", starts))
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
        .annotate(month=month_index("closed_at", starts))
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


def stage_durations(
    *, user, scope: AnalyticsScope = UNSCOPED, days: int = 365, now=None
) -> list[dict]:
    """Days spent in each open stage (entering it until leaving it, StageChange.left_at),
    median and average, over the stages entered in the last `days` and left since. One
    query (from stagechange_left_idx alone when every deal is visible)."""
    now = now or timezone.now()
    changes = StageChange.objects.filter(
        changed_at__gte=now - timedelta(days=days), changed_at__lte=now, left_at__isnull=False
    )
    sales = scoped_sales(user, scope)
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
