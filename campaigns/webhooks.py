"""SendGrid's Event Webhook: verify, store each event once, then apply the events in bulk.

The request only verifies and stores (fast, and idempotent on sg_event_id: a replayed batch
inserts nothing); events_process, in a task, applies what was stored with a few set-based
statements per chunk of events.
"""

import binascii
import json
import time
from collections import defaultdict
from datetime import UTC, datetime

from django.conf import settings
from django.db import transaction
from django.db.models import Case, F, Min, OuterRef, Subquery, Value, When
from django.utils import timezone
from sendgrid.helpers.eventwebhook import EventWebhook

from campaigns.models import EmailEvent, EmailMessage, Suppression
from campaigns.sending import campaign_counters_refresh
from crm.errors import CrmError, ValidationFailed
from customers.services import customers_mark_unsubscribed
from leads.services import lead_activities_record_bulk

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
MAX_EVENTS_PER_REQUEST = 10_000

# Which EmailMessage timestamp each event sets (the first such event wins).
TIMESTAMP_FIELDS = {
    "processed": "sent_at",
    "delivered": "delivered_at",
    "open": "opened_at",
    "click": "clicked_at",
    "bounce": "bounced_at",
    "dropped": "dropped_at",
    "spamreport": "unsubscribed_at",
    "unsubscribe": "unsubscribed_at",
    "group_unsubscribe": "unsubscribed_at",
}
SUPPRESSION_REASONS = {
    "bounce": Suppression.Reason.BOUNCE,
    "spamreport": Suppression.Reason.SPAM,
    "unsubscribe": Suppression.Reason.UNSUBSCRIBE,
    "group_unsubscribe": Suppression.Reason.UNSUBSCRIBE,
}
LEAD_ACTIVITIES = {"open": "email_open", "click": "email_click"}
Status = EmailMessage.Status


class SignatureRejected(CrmError):
    """Unsigned, forged or stale: answered with 403."""


def webhook_verify(*, body: bytes, signature: str | None, timestamp: str | None) -> None:
    public_key = settings.SENDGRID_WEBHOOK_PUBLIC_KEY
    if not public_key:
        raise SignatureRejected("Webhook verification key (SENDGRID_WEBHOOK_PUBLIC_KEY) not set.")
    if not signature or not timestamp:
        raise SignatureRejected("Missing signature headers.")
    try:
        age = abs(time.time() - int(timestamp))
    except ValueError:
        raise SignatureRejected("Bad timestamp header.") from None
    if age > settings.SENDGRID_WEBHOOK_MAX_AGE_SECONDS:
        raise SignatureRejected("Stale or future timestamp.")
    try:
        valid = EventWebhook(public_key).verify_signature(
            body.decode("utf-8"), signature, timestamp
        )
    except (ValueError, binascii.Error, UnicodeDecodeError):
        valid = False
    if not valid:
        raise SignatureRejected("Signature does not match.")


def events_parse(body: bytes) -> list[dict]:
    """The events of a webhook body, or ValidationFailed: all of a batch or none of it."""
    try:
        events = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise ValidationFailed("Body is not valid JSON.") from None
    if not isinstance(events, list):
        raise ValidationFailed("Body must be a JSON array of events.")
    if len(events) > MAX_EVENTS_PER_REQUEST:
        raise ValidationFailed(f"At most {MAX_EVENTS_PER_REQUEST} events per request.")
    for index, event in enumerate(events):
        if not isinstance(event, dict):
            raise ValidationFailed(f"Event {index} is not an object.")
        if not isinstance(event.get("sg_event_id"), str) or not event["sg_event_id"]:
            raise ValidationFailed(f"Event {index} has no sg_event_id.")
        if not isinstance(event.get("event"), str):
            raise ValidationFailed(f"Event {index} has no event type.")
        if not isinstance(event.get("timestamp"), int | float) or isinstance(
            event.get("timestamp"), bool
        ):
            raise ValidationFailed(f"Event {index} has no numeric timestamp.")
    return events


def _message_id(event: dict) -> int | None:
    value = event.get("email_message_id")
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def events_store(events: list[dict]) -> int:
    """Insert the events not seen before (by sg_event_id); queue processing after commit.
    Returns how many were new."""
    ids = [_message_id(event) for event in events]
    known = set(
        EmailMessage.objects.filter(pk__in={i for i in ids if i}).values_list("pk", flat=True)
    )
    rows = [
        EmailEvent(
            sg_event_id=event["sg_event_id"][:100],
            event=event["event"][:30],
            email=str(event.get("email", ""))[:254],
            message_id=message_id if message_id in known else None,
            occurred_at=datetime.fromtimestamp(event["timestamp"], tz=UTC),
            payload=event,
        )
        for event, message_id in zip(events, ids, strict=True)
    ]
    with transaction.atomic():
        before = EmailEvent.objects.count() if not rows else None
        created = EmailEvent.objects.bulk_create(rows, ignore_conflicts=True, batch_size=2000)
        del before
        transaction.on_commit(_process_later)
    return len(created)


def _process_later() -> None:
    from campaigns.tasks import process_events

    process_events.delay()


def events_process(*, chunk: int = 5000) -> int:
    """Apply every stored, unprocessed event. Safe to run concurrently (skip_locked)."""
    done = 0
    while True:
        with transaction.atomic():
            events = list(
                EmailEvent.objects.select_for_update(skip_locked=True)
                .filter(processed_at__isnull=True)
                .order_by("id")
                .values("id", "event", "message_id", "email", "occurred_at", "payload")[:chunk]
            )
            if not events:
                return done
            _apply(events)
            EmailEvent.objects.filter(pk__in=[e["id"] for e in events]).update(
                processed_at=timezone.now()
            )
            done += len(events)


def _apply(events: list[dict]) -> None:
    touched_by_field: dict[str, set[int]] = defaultdict(set)
    for event in events:
        field = TIMESTAMP_FIELDS.get(event["event"])
        if field and event["message_id"]:
            touched_by_field[field].add(event["message_id"])
    touched: set[int] = set()
    for field, message_ids in touched_by_field.items():
        kinds = [kind for kind, f in TIMESTAMP_FIELDS.items() if f == field]
        first = (
            EmailEvent.objects.filter(message=OuterRef("pk"), event__in=kinds)
            .order_by()
            .values("message")
            .annotate(first=Min("occurred_at"))
            .values("first")
        )
        EmailMessage.objects.filter(pk__in=message_ids, **{f"{field}__isnull": True}).update(
            **{field: Subquery(first)}
        )
        touched |= message_ids
    if touched:
        _statuses_refresh(touched)
        campaign_ids = set(
            EmailMessage.objects.filter(pk__in=touched).values_list("campaign_id", flat=True)
        )
        campaign_counters_refresh(campaign_ids=sorted(campaign_ids))
    _suppress(events)
    _record_lead_activities(events)


def _statuses_refresh(message_ids: set[int]) -> None:
    """Each message's status is its furthest step, derived from its timestamps."""
    EmailMessage.objects.filter(pk__in=message_ids).update(
        status=Case(
            When(unsubscribed_at__isnull=False, then=Value(Status.UNSUBSCRIBED)),
            When(bounced_at__isnull=False, then=Value(Status.BOUNCED)),
            When(dropped_at__isnull=False, then=Value(Status.DROPPED)),
            When(clicked_at__isnull=False, then=Value(Status.CLICKED)),
            When(opened_at__isnull=False, then=Value(Status.OPENED)),
            When(delivered_at__isnull=False, then=Value(Status.DELIVERED)),
            When(sent_at__isnull=False, then=Value(Status.SENT)),
            default=F("status"),
        )
    )


def _suppress(events: list[dict]) -> None:
    suppressions = {}
    unsubscribed = set()
    for event in events:
        reason = SUPPRESSION_REASONS.get(event["event"])
        email = (event["email"] or "").strip().lower()
        if reason and email:
            detail = str(event["payload"].get("reason", ""))[:500]
            suppressions.setdefault(email, Suppression(email=email, reason=reason, detail=detail))
            if reason in (Suppression.Reason.UNSUBSCRIBE, Suppression.Reason.SPAM):
                unsubscribed.add(email)
    Suppression.objects.bulk_create(suppressions.values(), ignore_conflicts=True)
    if unsubscribed:
        customers_mark_unsubscribed(emails=sorted(unsubscribed))


def _record_lead_activities(events: list[dict]) -> None:
    wanted = [e for e in events if e["event"] in LEAD_ACTIVITIES and e["message_id"]]
    if not wanted:
        return
    customers = dict(
        EmailMessage.objects.filter(
            pk__in={e["message_id"] for e in wanted}, customer__isnull=False
        ).values_list("pk", "customer_id")
    )
    rows = []
    for event in wanted:
        customer_id = customers.get(event["message_id"])
        if customer_id:
            details = {"email_message_id": event["message_id"]}
            if event["event"] == "click" and event["payload"].get("url"):
                details["url"] = str(event["payload"]["url"])[:500]
            rows.append(
                (customer_id, LEAD_ACTIVITIES[event["event"]], details, event["occurred_at"])
            )
    lead_activities_record_bulk(rows=rows)
