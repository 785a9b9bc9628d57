"""People's numbers (DESIGN.md "Analytics"): the top reps by won revenue, and a user's own
numbers this month against last month (their home page)."""

from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Count, DecimalField, Q, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from analytics.selectors.periods import month_start, won_q
from crm.permissions.analytics import (
    UNSCOPED,
    AnalyticsScope,
    scoped_sales_of_own_reps,
)
from crm.permissions.scopes import of_reach
from sales.models import Sale, SaleActivity


def top_reps(
    *, user, scope: AnalyticsScope = UNSCOPED, days: int = 90, limit: int = 5, now=None
) -> list:
    now = now or timezone.now()
    return list(
        scoped_sales_of_own_reps(user, scope)
        .filter(
            won_q(now - timedelta(days=days), now, with_amount=True),
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


def rep_month_numbers(*, user, now=None) -> dict[str, Any]:
    """The numbers of the user's reach (a rep's own, a manager's team's) this month (so far)
    and last month: won revenue per currency, deals won, activities logged. Two queries."""
    now = now or timezone.now()
    this_start, last_start = month_start(now, 0), month_start(now, 1)
    this, last = Q(closed_at__gte=this_start), Q(closed_at__lt=this_start)
    money = DecimalField(max_digits=18, decimal_places=2)
    won = list(
        of_reach(Sale.objects.all(), user)
        .filter(won_q(last_start, now))
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
    logged = SaleActivity.objects.filter(occurred_at__gte=last_start, occurred_at__lte=now)
    activities = of_reach(logged, user, field="user").aggregate(
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
