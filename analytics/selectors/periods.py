"""Time windows the analytics share: calendar months in the local time zone, won deals
closed in a window, open deals expected to close soon."""

from datetime import datetime, timedelta

from django.db.models import (
    Case,
    IntegerField,
    Q,
    Value,
    When,
)
from django.utils import timezone

from sales.models import Sale

WON = Sale.Status.WON
LOST = Sale.Status.LOST


def month_start(moment: datetime, months_back: int = 0) -> datetime:
    """Midnight on the first of the month `months_back` months before `moment`'s (local)."""
    local = timezone.localtime(moment)
    index = local.year * 12 + local.month - 1 - months_back
    return local.replace(
        year=index // 12, month=index % 12 + 1, day=1, hour=0, minute=0, second=0, microsecond=0
    )


def won_q(start: datetime, end: datetime, *, with_amount: bool = False) -> Q:
    won = Q(status=WON, closed_at__gte=start, closed_at__lte=end)
    return won & Q(amount__isnull=False) if with_amount else won


def month_starts(now: datetime, months: int) -> list[datetime]:
    """The first moments of this month and the `months - 1` before it, oldest first."""
    return [month_start(now, back) for back in range(months - 1, -1, -1)]


def month_index(field: str, starts: list[datetime]) -> Case:
    """Which of `starts` (month starts, oldest first) holds `field`: its index, -1 before the
    first. Compared with fixed boundaries, which over a million deals is far cheaper than
    truncating every date in the time zone."""
    return Case(
        *(When(**{f"{field}__gte": start}, then=Value(index))
          for index, start in reversed(list(enumerate(starts)))),
        default=Value(-1),
        output_field=IntegerField(),
    )  # fmt: skip


def closing_q(now: datetime, days: int) -> Q:
    today = timezone.localdate(now)
    return Q(expected_close_date__gte=today, expected_close_date__lte=today + timedelta(days=days))
