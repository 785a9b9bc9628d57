"""Reads for deals and tasks, always filtered through crm.permissions (a user's own
records, for their home page and tasks, by crm.permissions.scopes.of_owner)."""

from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Case, Count, IntegerField, Q, QuerySet, Sum, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from crm.permissions import visible_sales, visible_tasks
from crm.permissions.scopes import of_owner, of_reach
from sales.models import Sale, SaleActivity, StageChange, Task

SALE_SORTS = {
    "title": ("title", "id"),
    "customer": ("customer__name", "id"),
    "owner": ("assigned_to__username", "id"),
    "amount": ("amount", "id"),
    "status": ("stage_order", "id"),
    "close": ("expected_close_date", "id"),
    "created": ("created_at", "id"),
}
DEFAULT_SALE_SORT = "-created"


def _order_by(sort: str) -> list[str]:
    descending = sort.startswith("-")
    columns = SALE_SORTS.get(sort.lstrip("-")) or SALE_SORTS["created"]
    if not SALE_SORTS.get(sort.lstrip("-")):
        descending = True
    return [f"-{c}" for c in columns] if descending else list(columns)


def with_close_and_amount_filters(sales: QuerySet[Sale], filters: dict) -> QuerySet[Sale]:
    """The deal list's and the board's expected-close and amount ranges (bounds included)."""
    if filters.get("close_from"):
        sales = sales.filter(expected_close_date__gte=filters["close_from"])
    if filters.get("close_to"):
        sales = sales.filter(expected_close_date__lte=filters["close_to"])
    if filters.get("amount_min") is not None:
        sales = sales.filter(amount__gte=filters["amount_min"])
    if filters.get("amount_max") is not None:
        sales = sales.filter(amount__lte=filters["amount_max"])
    return sales


def sale_list(*, user, filters: dict[str, Any] | None = None) -> QuerySet[Sale]:
    filters = filters or {}
    sales = visible_sales(user)
    if filters.get("q"):
        text = filters["q"].strip()
        sales = sales.filter(Q(title__icontains=text) | Q(customer__name__icontains=text))
    if filters.get("status") == "open":
        sales = sales.open()
    elif filters.get("status"):
        sales = sales.filter(status=filters["status"])
    if filters.get("owner"):  # one of the assignable users crm.permissions offered
        sales = of_owner(sales, filters["owner"])
    if filters.get("customer"):
        sales = sales.filter(customer=filters["customer"])
    sales = with_close_and_amount_filters(sales, filters)
    ordering = _order_by(filters.get("sort") or DEFAULT_SALE_SORT)
    if any(column.lstrip("-") == "stage_order" for column in ordering):
        # Stages sort in pipeline order (New ... Won, Lost), not alphabetically.
        sales = sales.annotate(
            stage_order=Case(
                *(When(status=value, then=index) for index, value in enumerate(Sale.Status.values)),
                output_field=IntegerField(),
            )
        )
    return sales.order_by(*ordering)


def sale_totals(sales: QuerySet[Sale]) -> dict[str, Any]:
    """Counts of a (filtered) deal list and its values per currency, in one query.

    Amounts in different currencies are never added together.
    """
    open_q = ~Q(status__in=Sale.CLOSED_STATUSES)
    won_q = Q(status=Sale.Status.WON)
    by_currency = list(
        sales.order_by()
        .values("currency")
        .annotate(
            count=Count("id"),
            open_count=Count("id", filter=open_q),
            won_count=Count("id", filter=won_q),
            total_amount=Coalesce(Sum("amount"), Decimal("0")),
            open_amount=Coalesce(Sum("amount", filter=open_q), Decimal("0")),
            won_amount=Coalesce(Sum("amount", filter=won_q), Decimal("0")),
        )
        .order_by("-count", "currency")
    )
    # A handful of rows, one per currency: the counts add up across currencies.
    return {
        "count": sum(row["count"] for row in by_currency),
        "open_count": sum(row["open_count"] for row in by_currency),
        "won_count": sum(row["won_count"] for row in by_currency),
        "by_currency": by_currency,
    }


def sale_activities(*, sale: Sale) -> QuerySet[SaleActivity]:
    return sale.activities.select_related("user")


def sale_tasks(*, sale: Sale) -> QuerySet[Task]:
    return sale.tasks.select_related("assigned_to", "sale", "customer").order_by(
        "completed_at", "due_at"
    )


def sale_stage_history(*, sale: Sale) -> QuerySet[StageChange]:
    """Stage changes in order; each one's left_at gives its duration."""
    return sale.stage_changes.select_related("changed_by").order_by("changed_at", "id")


def customer_sales(*, user, customer) -> QuerySet[Sale]:
    return visible_sales(user).filter(customer=customer).select_related("assigned_to")


def customer_tasks(*, user, customer) -> QuerySet[Task]:
    return (
        visible_tasks(user)
        .filter(customer=customer)
        .select_related("assigned_to", "sale", "customer")
        .order_by("completed_at", "due_at")
    )


def customer_activities(*, user, customer, limit: int = 50) -> QuerySet[SaleActivity]:
    return (
        SaleActivity.objects.filter(sale__in=customer_sales(user=user, customer=customer))
        .select_related("user", "sale")
        .order_by("-occurred_at", "-id")[:limit]
    )


OPEN_TASK_SECTIONS = {"overdue": "Overdue", "today": "Today", "upcoming": "Upcoming"}


def _start_of_tomorrow(now):
    return timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(
        days=1
    )


def my_tasks(*, user, now=None) -> dict[str, QuerySet[Task]]:
    """The user's open tasks: overdue, due today, upcoming; and the recently completed."""
    now = now or timezone.now()
    start_of_tomorrow = _start_of_tomorrow(now)
    mine = of_owner(Task.objects.all(), user).with_related()
    return {
        "overdue": mine.overdue(now=now).order_by("due_at", "id"),
        "today": mine.due_between(now, start_of_tomorrow).order_by("due_at", "id"),
        "upcoming": mine.pending().filter(due_at__gte=start_of_tomorrow).order_by("due_at", "id"),
        "done": mine.filter(completed_at__isnull=False).order_by("-completed_at")[:10],
    }


def open_task_counts(*, user, now=None) -> dict[str, int]:
    """How many of the user's open tasks are in each of my_tasks' open sections: one query
    over the open-tasks index."""
    now = now or timezone.now()
    start_of_tomorrow = _start_of_tomorrow(now)
    return (
        of_owner(Task.objects.all(), user)
        .pending()
        .aggregate(
            overdue=Count("id", filter=Q(due_at__lt=now)),
            today=Count("id", filter=Q(due_at__gte=now, due_at__lt=start_of_tomorrow)),
            upcoming=Count("id", filter=Q(due_at__gte=start_of_tomorrow)),
        )
    )


def home_summary(*, user, currency: str) -> dict[str, Any]:
    """Numbers for the home page in three queries, for the user's reach (a manager's: the
    team's): the open deals per currency, the open pipeline by stage in `currency`, won this
    month per currency, and the user's own overdue and due tasks. Only open deals are read
    (an index of their own), never the whole history."""
    now = timezone.now()
    month_start = timezone.localtime(now).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    mine = of_reach(Sale.objects.all(), user)
    open_rows = list(
        mine.open()
        .values("currency", "status")
        .annotate(count=Count("id"), value=Sum("amount"))
        .order_by()
    )
    open_by_currency: dict[str, dict[str, Any]] = {}
    for row in open_rows:  # currencies x stages: a handful of rows summed in SQL
        entry = open_by_currency.setdefault(
            row["currency"], {"currency": row["currency"], "open_count": 0, "open_amount": 0}
        )
        entry["open_count"] += row["count"]
        entry["open_amount"] += row["value"] or 0
    in_currency = {row["status"]: row for row in open_rows if row["currency"] == currency}
    pipeline = [
        {
            "status": status.label,
            "count": in_currency.get(status.value, {}).get("count", 0),
            "value": float(in_currency.get(status.value, {}).get("value") or 0),
        }
        for status in Sale.Status
        if status.value in Sale.OPEN_STATUSES
    ]
    won_this_month = list(
        mine.filter(status=Sale.Status.WON, closed_at__gte=month_start)
        .values("currency")
        .annotate(amount=Sum("amount"))
        .order_by("currency")
    )
    pending = of_owner(Task.objects.all(), user).filter(completed_at__isnull=True)
    tasks = pending.aggregate(
        overdue=Count("id", filter=Q(due_at__lt=now)),
        due_today=Count("id", filter=Q(due_at__gte=now, due_at__lt=now + timedelta(days=1))),
    )
    return {
        "open_count": sum(entry["open_count"] for entry in open_by_currency.values()),
        "open_by_currency": sorted(
            open_by_currency.values(), key=lambda entry: (-entry["open_count"], entry["currency"])
        ),
        "pipeline": pipeline,
        "won_this_month": won_this_month,
        **tasks,
    }


def sale_is_stale(*, sale: Sale) -> bool:
    if sale.is_closed:
        return False
    return Sale.objects.filter(pk=sale.pk).stale().exists()
