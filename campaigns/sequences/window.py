"""The send window: weekdays between a sequence's window_start and window_end, in the CRM's
time zone (settings.TIME_ZONE). A step that falls due outside it waits for its next opening,
so a step due on Saturday goes on Monday at the window's start."""

from datetime import date, datetime, time, timedelta

from django.utils import timezone

WEEKEND = (5, 6)  # Saturday, Sunday (date.weekday())


def _at(day: date, moment: time) -> datetime:
    return timezone.make_aware(datetime.combine(day, moment))


def window_open(*, start: time, end: time, now: datetime) -> bool:
    local = timezone.localtime(now)
    return local.weekday() not in WEEKEND and start <= local.time() < end


def next_in_window(*, start: time, end: time, moment: datetime) -> datetime:
    """`moment` when the window is open then, else the window's next opening."""
    local = timezone.localtime(moment)
    if window_open(start=start, end=end, now=moment):
        return moment
    day = local.date()
    if local.weekday() not in WEEKEND and local.time() < start:
        return _at(day, start)
    day += timedelta(days=1)
    while day.weekday() in WEEKEND:
        day += timedelta(days=1)
    return _at(day, start)
