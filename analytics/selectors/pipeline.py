"""The open pipeline (DESIGN.md "Analytics"): value per stage and currency, and the deals
expected to close soon."""

from decimal import Decimal

from django.db.models import (
    Count,
    DecimalField,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from analytics.selectors.periods import LOST, WON, closing_q
from crm.permissions.analytics import UNSCOPED, AnalyticsScope, scoped_sales


def open_pipeline(
    *, user, scope: AnalyticsScope = UNSCOPED, closing_days: int = 30, now=None
) -> dict[str, list[dict]]:
    """Open deals per stage and currency (`by_stage`: deals, value) and per currency
    (`summary`: deals, value, and those expected to close within `closing_days`). One query
    per stage and currency; the per-currency totals add up its few rows."""
    now = now or timezone.now()
    soon = closing_q(now, closing_days)
    money = DecimalField(max_digits=18, decimal_places=2)
    rows = list(
        scoped_sales(user, scope)
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
