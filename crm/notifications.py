"""Notifications: durable rows for one user each, written after the commit of the action they
tell about (never for one rolled back), pushed to the user's open pages, listed by the bell and
the notifications page, and emailed once a day to whoever chose the digest for a kind.

The apps raise an event of crm.reactions with the notices to send (who, what, where to look);
`notify` is the reaction. A user's preference per kind decides: in the app (the default),
in the app and the daily digest, or off (nothing is written).
"""

from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.db import models, transaction
from django.db.models import QuerySet
from django.utils import timezone

from crm.models import Notification, NotificationPreference, RealtimeEvent
from crm.reactions import Question, ask
from crm.realtime import event_publish
from crm.services import send_email

Delivery = NotificationPreference.Delivery
LATEST_COUNT = 8  # the bell's dropdown
DIGEST_MAX_ITEMS = 50


@dataclass(frozen=True)
class Notice:
    """One notification to write for each of `recipient_ids` (the actor is left out: nobody
    is told about what they did themselves)."""

    kind: str
    recipient_ids: list[int]
    text: str
    link: str = ""
    obj: models.Model | None = None
    actor: object = None


def notify(*, notices: list[Notice]) -> None:
    """The reaction of every notification event (crm.reactions): write the notices once the
    caller's transaction commits; nothing when it rolls back."""
    notices = [notice for notice in notices if notice.recipient_ids]
    if notices:
        transaction.on_commit(lambda: notices_write(notices))


@transaction.atomic
def notices_write(notices: list[Notice]) -> list[Notification]:
    recipients = {
        (notice.kind, user_id)
        for notice in notices
        for user_id in notice.recipient_ids
        if user_id != getattr(notice.actor, "pk", None)
    }
    off = set(
        NotificationPreference.objects.filter(
            delivery=Delivery.OFF, user_id__in={user_id for _, user_id in recipients}
        ).values_list("kind", "user_id")
    )
    active = set(
        get_user_model()
        .objects.filter(pk__in={user_id for _, user_id in recipients}, is_active=True)
        .values_list("pk", flat=True)
    )
    rows = []
    for notice in notices:
        content_type = ContentType.objects.get_for_model(notice.obj) if notice.obj else None
        for user_id in dict.fromkeys(notice.recipient_ids):
            if (notice.kind, user_id) not in recipients or (notice.kind, user_id) in off:
                continue
            if user_id not in active:
                continue
            rows.append(
                Notification(
                    recipient_id=user_id,
                    kind=notice.kind,
                    text=notice.text[:300],
                    link=notice.link[:300],
                    content_type=content_type,
                    object_id=str(notice.obj.pk) if notice.obj else "",
                    actor=notice.actor if getattr(notice.actor, "pk", None) else None,
                )
            )
    created = Notification.objects.bulk_create(rows)
    for notification in created:
        event_publish(
            topic=RealtimeEvent.Topic.NOTIFICATION,
            payload={
                "notification": notification.pk,
                "kind": notification.kind,
                "text": notification.text,
                "link": notification.link,
            },
            user_ids=[notification.recipient_id],
        )
    return created


# Reads ------------------------------------------------------------------------------------


def unread_count(user) -> int:
    return Notification.objects.filter(recipient=user, read_at__isnull=True).count()


def latest(user, count: int = LATEST_COUNT) -> list[Notification]:
    return list(Notification.objects.filter(recipient=user).order_by("-id")[:count])


def notifications_of(user, *, kind: str = "", state: str = "") -> QuerySet[Notification]:
    """The notifications page: the user's own, newest first, by kind and read state."""
    rows = Notification.objects.filter(recipient=user).order_by("-id")
    if kind:
        rows = rows.filter(kind=kind)
    if state == "unread":
        rows = rows.filter(read_at__isnull=True)
    elif state == "read":
        rows = rows.filter(read_at__isnull=False)
    return rows


def preferences_of(user) -> dict[str, str]:
    """{kind: delivery} for every kind (the default where the user chose nothing)."""
    chosen = dict(NotificationPreference.objects.filter(user=user).values_list("kind", "delivery"))
    return {kind: chosen.get(kind, Delivery.IN_APP) for kind in Notification.Kind.values}


# Writes -----------------------------------------------------------------------------------


def notifications_mark_read(*, user, ids: list[int] | None = None) -> int:
    """Mark the user's unread notifications read: these `ids`, or all of them."""
    rows = Notification.objects.filter(recipient=user, read_at__isnull=True)
    if ids is not None:
        rows = rows.filter(pk__in=ids)
    return rows.update(read_at=timezone.now())


@transaction.atomic
def preferences_save(*, user, deliveries: dict[str, str]) -> None:
    for kind, delivery in deliveries.items():
        if kind not in Notification.Kind.values or delivery not in Delivery.values:
            continue
        NotificationPreference.objects.update_or_create(
            user=user, kind=kind, defaults={"delivery": delivery}
        )


def digests_send(*, now=None) -> int:
    """The daily digest: to each active user with an address who chose it for some kind,
    their unread notifications of those kinds not emailed yet (the last day's at most; older
    ones were either read or are stale). Through crm.services.send_email, the single-email
    path; an address on the suppression list (a bounce, a complaint) gets none. Returns how
    many emails went."""
    now = now or timezone.now()
    wanted = NotificationPreference.objects.filter(delivery=Delivery.DIGEST)
    kinds_of: dict[int, set[str]] = {}
    for user_id, kind in wanted.values_list("user_id", "kind"):
        kinds_of.setdefault(user_id, set()).add(kind)
    users = list(get_user_model().objects.filter(pk__in=kinds_of, is_active=True).exclude(email=""))
    suppressed = ask(Question.SUPPRESSED_ADDRESSES, set(), emails=[u.email for u in users])
    sent = 0
    for user in users:
        if user.email.lower() in suppressed:
            continue
        with transaction.atomic():
            rows = list(
                Notification.objects.select_for_update(skip_locked=True)
                .filter(
                    recipient=user,
                    kind__in=kinds_of[user.pk],
                    read_at__isnull=True,
                    emailed_at__isnull=True,
                    created_at__gte=now - timedelta(days=1),
                )
                .order_by("id")[:DIGEST_MAX_ITEMS]
            )
            if not rows:
                continue
            Notification.objects.filter(pk__in=[row.pk for row in rows]).update(emailed_at=now)
            transaction.on_commit(lambda user=user, rows=rows: _digest_email(user, rows))
        sent += 1
    return sent


def _digest_email(user, rows: list[Notification]) -> None:
    from django.conf import settings

    lines = [
        f"- {row.text}" + (f"\n  {settings.SITE_URL}{row.link}" if row.link else "") for row in rows
    ]
    send_email(
        to=user.email,
        subject=f"CRM: {len(rows)} notification{'s' if len(rows) != 1 else ''} today",
        text=(
            f"Hello {user.get_full_name() or user.username},\n\n"
            + "\n".join(lines)
            + f"\n\nChange what you receive: {settings.SITE_URL}/notifications/preferences/\n"
        ),
    )
