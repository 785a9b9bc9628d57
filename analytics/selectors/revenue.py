"""Won revenue (DESIGN.md "Analytics"): over the last 30, 90 and 365 days with the average
deal size, and per calendar month."""

from datetime import timedelta
from decimal import Decimal

from django.db.models import (
    Count,
    DecimalField,
    Q,
    Sum,
)
from django.utils import timezone

from analytics.selectors.periods import month_index, month_starts, won_q
from crm.permissions.analytics import UNSCOPED, AnalyticsScope, scoped_sales

REVENUE_WINDOWS = {"last_30": 30, "last_90": 90, "last_365": 365}


def won_revenue(
    *, user, scope: AnalyticsScope = UNSCOPED, months: int = 24, now=None
) -> dict[str, list]:
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
        scoped_sales(user, scope)
        .filter(won_q(min([year_ago, *starts]), now, with_amount=True))
        .order_by()
        .annotate(month=month_index("closed_at", starts))
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
