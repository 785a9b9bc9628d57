"""The records behind a dashboard number: the deals it counts, with the same conditions as
the selector that counted it."""

from datetime import date, datetime, timedelta

from django.db.models import QuerySet
from django.utils import timezone

from analytics.selectors.periods import LOST, WON, closing_q, month_start, won_q
from crm.permissions.analytics import UNSCOPED, AnalyticsScope, scoped_sales
from crm.permissions.scopes import of_owner
from sales.models import Sale

FUNNEL_RANKS = {status: rank for rank, status in enumerate(Sale.FUNNEL_STATUSES)}


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
    scope: AnalyticsScope = UNSCOPED,
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
    sales = scoped_sales(user, scope)
    if metric in ("revenue", "won"):
        sales = sales.filter(won_q(start, end, with_amount=metric == "revenue"))
    elif metric == "lost":
        sales = sales.filter(status=LOST, closed_at__gte=start, closed_at__lte=end)
    elif metric == "closed":
        sales = sales.filter(closed_at__gte=start, closed_at__lte=end)
    elif metric == "created":
        sales = sales.filter(created_at__gte=start, created_at__lte=end)
    elif metric == "open":
        sales = sales.exclude(status__in=[WON, LOST])
    elif metric == "closing":
        sales = sales.exclude(status__in=[WON, LOST]).filter(closing_q(now, days or 30))
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
        sales = of_owner(sales, owner_id)  # a row of the dashboard, within the scope
    return sales.select_related("customer", "assigned_to").order_by("-closed_at", "-created_at")
