"""Events for the open pages, the Odoo bus's way: each is a row of crm.RealtimeEvent written in
the transaction that caused it and pushed through the channel layer after the commit (nothing
is pushed for a change rolled back), to the groups of the users who may receive it; every
socket checks again (crm.permissions.realtime) before sending. A client that reconnects gives
the last id it saw and is sent, once and in order, what it missed from the table.

The pages react to these events (static/js/realtime.js): the bell counts again, an open board
redraws the columns a deal left and entered, a campaign or import page its progress.
"""

import logging
from datetime import timedelta

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from crm.models import RealtimeEvent
from crm.permissions.realtime import deal_audience

logger = logging.getLogger(__name__)

ADMINS_GROUP = "crm.admins"
MESSAGE_TYPE = "crm.event"  # the consumer's crm_event handler
PROGRESS_TYPE = "crm.progress"  # its crm_progress handler


def user_group(user_id: int) -> str:
    return f"crm.user.{user_id}"


def event_message(event: RealtimeEvent) -> dict:
    """What a socket is sent: the event's id and topic with its payload."""
    return {"type": "event", "id": event.pk, "topic": event.topic, **event.payload}


def event_publish(
    *, topic: str, payload: dict, user_ids, for_admins: bool = False
) -> RealtimeEvent:
    """Write the event now (in the caller's transaction) and push it once that commits."""
    event = RealtimeEvent.objects.create(
        topic=topic, payload=payload, user_ids=sorted(set(user_ids)), for_admins=for_admins
    )
    transaction.on_commit(lambda: events_push([event]))
    return event


def events_push(events: list[RealtimeEvent]) -> None:
    """Hand committed events to the channel layer. A layer that is down must not fail the
    request whose work is already committed: the rows stay, and clients get them when they
    reconnect (or at the next poll of the embedded mode)."""
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(_send)(layer, events)
    except Exception:
        logger.exception("Real-time events %s not pushed", [event.pk for event in events])


async def _send(layer, events: list[RealtimeEvent]) -> None:
    for event in events:
        message = {
            "type": MESSAGE_TYPE,
            "event": event_message(event),
            "user_ids": event.user_ids,
            "for_admins": event.for_admins,
        }
        groups = [user_group(user_id) for user_id in event.user_ids]
        if event.for_admins:
            groups.append(ADMINS_GROUP)
        for group in groups:
            await layer.group_send(group, message)


def progress_push(
    *, subject: str, subject_id: int, status: str, user_ids, after_commit: bool = True
) -> None:
    """Tell the open pages of a long job (a campaign's send, a CSV import) to look again at
    its progress. Not written to the table: a page that missed one still polls, and the
    job's end is a notification. `after_commit=False` for a job inside its own long
    transaction (an import), whose progress lives in the cache meanwhile."""
    message = {
        "type": PROGRESS_TYPE,
        "event": {"type": "progress", "object": subject, "id": subject_id, "status": status},
        "user_ids": sorted(set(user_ids)),
        "for_admins": True,
    }

    def push():
        layer = get_channel_layer()
        if layer is None:
            return
        try:
            async_to_sync(_send_progress)(layer, message)
        except Exception:
            logger.exception("Progress of %s %s not pushed", subject, subject_id)

    if after_commit:
        transaction.on_commit(push)
    else:
        push()


async def _send_progress(layer, message: dict) -> None:
    for group in [*(user_group(user_id) for user_id in message["user_ids"]), ADMINS_GROUP]:
        await layer.group_send(group, message)


def last_event_id() -> int:
    """The newest event's id: a page rendered now has seen everything up to it."""
    return RealtimeEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0


def events_after(event_id: int, *, limit: int | None = None) -> list[RealtimeEvent] | None:
    """Events after `event_id`, oldest first; None when more than `limit` are waiting (the
    client reloads instead of replaying a day's traffic)."""
    limit = limit or settings.REALTIME_REPLAY_LIMIT
    rows = list(RealtimeEvent.objects.filter(id__gt=event_id).order_by("id")[: limit + 1])
    return None if len(rows) > limit else rows


def events_recent(*, after_id: int, seconds: float) -> list[RealtimeEvent]:
    """For the embedded mode's poll: events after `after_id` and those of the last `seconds`
    (an event whose transaction committed after a newer one's has a lower id)."""
    since = timezone.now() - timedelta(seconds=seconds)
    rows = RealtimeEvent.objects.filter(id__gt=after_id) | RealtimeEvent.objects.filter(
        created_at__gte=since
    )
    return list(rows.order_by("id")[: settings.REALTIME_REPLAY_LIMIT])


def events_prune(*, now=None) -> int:
    """Delete events older than REALTIME_EVENT_DAYS (a client away longer reloads)."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.REALTIME_EVENT_DAYS)
    deleted, _ = RealtimeEvent.objects.filter(created_at__lt=cutoff).delete()
    return deleted


def deal_changed_publish(
    *,
    sale_id: int,
    action: str,
    actor=None,
    title: str = "",
    from_status: str = "",
    to_status: str = "",
    viewers_before: set[int] | None = None,
) -> RealtimeEvent:
    """A deal created, moved, edited or deleted (crm.reactions DEAL_CHANGED): to everyone who
    may see it now and everyone who saw it before (their board drops the card)."""
    user_ids = deal_audience(sale_id, before=viewers_before, deleted=action == "deleted")
    payload = {
        "deal": sale_id,
        "action": action,
        "title": title,
        "from": from_status,
        "to": to_status,
        "by": getattr(actor, "pk", None),
        "by_name": (actor.get_full_name() or actor.username) if actor else "the automation",
    }
    return event_publish(
        topic=RealtimeEvent.Topic.DEAL, payload=payload, user_ids=user_ids, for_admins=True
    )
