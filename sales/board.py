"""Reads for the pipeline board: a few queries whatever the size of the pipeline.

Cards of every column come from one query (ROW_NUMBER per stage, first COLUMN_SIZE of each), the
column totals from one GROUP BY; "load more" pages one column.
"""

from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import Count, QuerySet, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from crm.permissions import visible_sales
from crm.permissions.scopes import OTHER_TEAMS, of_owner, of_team, outside_reach
from sales.managers import stale_condition
from sales.models import Sale, StageSetting
from sales.selectors import with_close_and_amount_filters

# A screenful and a half; the rest loads as the column scrolls (rendering cards is most of
# the board's cost).
COLUMN_SIZE = 20
MAX_COLUMN_OFFSET = 10_000_000  # beyond any column; keeps OFFSET within a bigint
BOARD_STAGES = list(Sale.OPEN_STATUSES)


def board_deals(*, user, filters: dict[str, Any]) -> QuerySet[Sale]:
    deals = visible_sales(user).open()
    # Owner and team among the choices crm.permissions gave the filter form.
    if filters.get("owner") == OTHER_TEAMS:
        deals = outside_reach(deals, user)
    elif filters.get("owner"):
        deals = of_owner(deals, filters["owner"])
    if filters.get("team"):
        deals = of_team(deals, filters["team"])
    return with_close_and_amount_filters(deals, filters)


def _cards(deals: QuerySet[Sale], now, stale=None) -> QuerySet[Sale]:
    return (
        deals.select_related("customer", "assigned_to")
        .with_is_stale(now=now, condition=stale)
        .only(
            "id", "title", "status", "amount", "currency", "stage_entered_at", "probability",
            "customer__name", "assigned_to__first_name", "assigned_to__last_name",
            "assigned_to__username",
        )
    )  # fmt: skip


def board(
    *, user, filters: dict[str, Any], now=None, statuses: list[str] | None = None
) -> dict[str, Any]:
    """The columns with their first cards and their totals (count, value, weighted value per
    currency): all of them, or those of `statuses` (the two a move changed)."""
    now = now or timezone.now()
    stages = [status for status in BOARD_STAGES if statuses is None or status in statuses]
    settings = list(
        StageSetting.objects.values_list("status", "base_probability", "max_days_in_stage")
    )
    rates = {status: rate for status, rate, _ in settings}
    max_days = {status: days for status, _, days in settings}
    deals = board_deals(user=user, filters=filters)
    if statuses is not None:
        deals = deals.filter(status__in=stages)
    totals: dict[str, list[dict]] = {status: [] for status in stages}
    # Per probability too (a handful of values): the weighted sums are done here, not with
    # numeric arithmetic on every row.
    groups: dict[tuple[str, str], dict] = {}
    for row in (
        deals.order_by()
        .values("status", "currency", "probability")
        .annotate(count=Count("id"), value=Coalesce(Sum("amount"), Decimal("0")))
    ):
        key = (row["status"], row["currency"])
        group = groups.setdefault(
            key,
            {"status": key[0], "currency": key[1], "count": 0, "value": Decimal(0),
             "weighted": Decimal(0)},
        )  # fmt: skip
        rate = row["probability"] if row["probability"] is not None else rates.get(key[0], 0)
        group["count"] += row["count"]
        group["value"] += row["value"]
        group["weighted"] += row["value"] * rate / 100
    for group in sorted(groups.values(), key=lambda g: (g["status"], -g["count"])):
        group["weighted"] = group["weighted"].quantize(Decimal("0.01"))
        totals[group["status"]].append(group)
    stale = stale_condition(now=now, max_days=max_days)
    # One LIMIT per column, UNION ALL: each walks sale_board_column_idx and stops at COLUMN_SIZE.
    parts = [
        _cards(deals.filter(status=status), now, stale=stale).order_by("-stage_entered_at", "-id")[
            :COLUMN_SIZE
        ]
        for status in stages
    ]
    cards: dict[str, list[Sale]] = {status: [] for status in stages}
    if len(parts) < 2:
        rows = list(parts[0]) if parts else []
    elif connection.features.supports_slicing_ordering_in_compound:
        rows = parts[0].union(*parts[1:], all=True)
    else:  # SQLite (the embedded default) cannot LIMIT inside a UNION: one query per column
        rows = [sale for part in parts for sale in part]
    # Newest in the stage first: a card just moved shows at the top of its new column.
    ranked = sorted(rows, key=lambda s: (s.stage_entered_at, s.pk), reverse=True)
    for sale in ranked:
        sale.days_in_stage = (now - sale.stage_entered_at).days
        cards[sale.status].append(sale)
    return {
        "columns": [
            {
                "status": status,
                "label": Sale.Status(status).label,
                "cards": cards[status],
                "totals": totals[status],
                "count": sum(row["count"] for row in totals[status]),
                "next_offset": (
                    COLUMN_SIZE
                    if sum(row["count"] for row in totals[status]) > len(cards[status])
                    else None
                ),
            }
            for status in stages
        ],
        "rates": rates,
    }


def board_column_page(
    *, user, filters: dict[str, Any], status: str, offset: int, now=None
) -> list[Sale]:
    """The next cards of one column ("load more" on scroll)."""
    now = now or timezone.now()
    deals = board_deals(user=user, filters=filters).filter(status=status)
    page = list(
        _cards(deals, now).order_by("-stage_entered_at", "-id")[offset : offset + COLUMN_SIZE]
    )
    for sale in page:
        sale.days_in_stage = (now - sale.stage_entered_at).days
    return page
