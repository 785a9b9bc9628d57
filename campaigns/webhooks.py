"""SendGrid's Event Webhook: verify, store each event once, then apply the events in bulk
(Mailgun's events, read by campaigns.webhooks_mailgun, are stored and applied the same way).

The request only verifies and stores (fast, and idempotent on sg_event_id: a replayed batch
inserts nothing); events_process, in a task, applies what was stored with a few set-based
statements per chunk of events.
"""

import base64
import json
import logging
import math
import time
from collections import defaultdict
from datetime import UTC, datetime

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from django.conf import settings
from django.db import transaction
from django.db.models import Case, F, Min, OuterRef, Subquery, Value, When
from django.db.models.functions import Coalesce, Least
from django.utils import timezone
from sendgrid.helpers.eventwebhook import EventWebhook

from campaigns.models import EmailEvent, EmailMessage, EmailProvider
from campaigns.sending.counters import campaign_counters_refresh
from crm.errors import CrmError, ValidationFailed
from customers.models import ConsentSource, Suppression
from customers.services import customers_mark_unsubscribed, suppressions_add
from leads.services import lead_activities_record_bulk

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
MAX_EVENTS_PER_REQUEST = 10_000
MAX_NESTING = 32  # SendGrid's events are flat; anything deeper is not from SendGrid
# Event times that both datetime and PostgreSQL hold: the epoch to the end of year 9999.
MAX_EVENT_TIMESTAMP = 253_402_300_799
MAX_MESSAGE_ID = 2**63 - 1

# Which EmailMessage timestamp each event sets (the earliest such event wins).
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
Reason = Suppression.Reason
SUPPRESSION_REASONS = {
    "bounce": Reason.BOUNCE,
    "spamreport": Reason.SPAM,
    "unsubscribe": Reason.UNSUBSCRIBE,
    "group_unsubscribe": Reason.UNSUBSCRIBE,
}
# A `dropped` event's reason (lower-cased); any other reason suppresses as `dropped`.
DROPPED_REASONS = {
    "bounced address": Reason.BOUNCE,
    "invalid": Reason.INVALID,
    "spam reporting address": Reason.SPAM,
    "unsubscribed address": Reason.UNSUBSCRIBE,
    # Mailgun's `failed` events for an address it already suppresses (campaigns.webhooks_
    # mailgun maps them to `dropped`).
    "suppress-bounce": Reason.BOUNCE,
    "suppress-complaint": Reason.SPAM,
    "suppress-unsubscribe": Reason.UNSUBSCRIBE,
}
LEAD_ACTIVITIES = {"open": "email_open", "click": "email_click"}
Status = EmailMessage.Status


class SignatureRejected(CrmError):
    """Unsigned, forged or stale: answered with 403."""


def webhook_verify(*, body: bytes, signature: str | None, timestamp: str | None) -> None:
    """ECDSA (P-256, SHA-256) over the timestamp header followed by the raw body, checked
    with the verification key SendGrid shows (base64 DER, no PEM armour)."""
    public_key = settings.SENDGRID_WEBHOOK_PUBLIC_KEY
    if not public_key:
        # Not said to the caller: whether a key is configured is nobody else's business.
        logger.warning("SendGrid webhook refused: SENDGRID_WEBHOOK_PUBLIC_KEY is not set.")
        raise SignatureRejected("Signature does not match.")
    if not signature or not timestamp:
        raise SignatureRejected("Missing signature headers.")
    # Seconds since the epoch, digits only, compared as integers (no float overflow).
    if not (timestamp.isascii() and timestamp.isdigit()):
        raise SignatureRejected("Bad timestamp header.")
    try:
        age = abs(int(time.time()) - int(timestamp))
    except ValueError:  # more digits than int() accepts
        raise SignatureRejected("Bad timestamp header.") from None
    if age > settings.SENDGRID_WEBHOOK_MAX_AGE_SECONDS:
        raise SignatureRejected("Stale or future timestamp.")
    try:
        key = EventWebhook().convert_public_key_to_ecdsa(public_key)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise SignatureRejected("SENDGRID_WEBHOOK_PUBLIC_KEY is not a public key.") from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise SignatureRejected("SENDGRID_WEBHOOK_PUBLIC_KEY is not an ECDSA key.")
    try:
        # The raw bytes, not a decoded string: what was signed is exactly what arrived.
        key.verify(
            base64.b64decode(signature), timestamp.encode() + body, ec.ECDSA(hashes.SHA256())
        )
    except (InvalidSignature, ValueError):  # ValueError: not base64
        raise SignatureRejected("Signature does not match.") from None


def events_parse(body: bytes) -> list[dict]:
    """The events of a webhook body, or ValidationFailed: all of a batch or none of it.
    What passes can be stored: PostgreSQL refuses NUL characters, unpaired surrogates and
    non-finite numbers, and datetime refuses times out of its range."""
    try:
        events = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
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
        timestamp = event.get("timestamp")
        if not isinstance(timestamp, int | float) or isinstance(timestamp, bool):
            raise ValidationFailed(f"Event {index} has no numeric timestamp.")
        if not (math.isfinite(timestamp) and 0 <= timestamp <= MAX_EVENT_TIMESTAMP):
            raise ValidationFailed(f"Event {index} has a timestamp out of range.")
        problem = _unstorable(event)
        if problem:
            raise ValidationFailed(f"Event {index} {problem}.")
    return events


def _unstorable(value) -> str | None:
    """Why a parsed JSON value cannot be stored in a jsonb column, or None. Iterative, so
    deep input cannot exhaust the stack."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_NESTING:
            return "is nested too deeply"
        if isinstance(item, dict):
            stack.extend((key, depth) for key in item)
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
        elif isinstance(item, str):
            if "\x00" in item:
                return "contains a NUL character"
            try:
                item.encode()
            except UnicodeEncodeError:
                return "contains an unpaired surrogate"
        elif isinstance(item, float) and not math.isfinite(item):
            return "contains a number out of range"
    return None


def _message_id(event: dict) -> int | None:
    """The EmailMessage id sent as a custom arg (SendGrid returns it as a string)."""
    value = event.get("email_message_id")
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 20:
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_MESSAGE_ID:
        return value
    return None


def _email(event: dict) -> str:
    value = event.get("email")
    return value[:254] if isinstance(value, str) else ""


def events_store(events: list[dict]) -> int:
    """Insert SendGrid's events not seen before (by sg_event_id); queue processing after
    commit. Returns how many were new."""
    return events_insert(
        [
            EmailEvent(
                sg_event_id=event["sg_event_id"][:100],
                provider=EmailProvider.SENDGRID,
                event=event["event"][:30],
                email=_email(event),
                message_id=_message_id(event),
                occurred_at=datetime.fromtimestamp(event["timestamp"], tz=UTC),
                payload=event,
            )
            for event in events
        ]
    )


def events_insert(rows: list[EmailEvent]) -> int:
    """Store provider events (each provider's mapped into EmailEvent rows, `event` in the
    neutral names) that were not seen before, by event id; queue their processing after
    commit. A message id that names no message is dropped. Returns how many were new."""
    by_event_id: dict[str, EmailEvent] = {}
    for row in rows:  # the same event twice in one batch: the first
        by_event_id.setdefault(row.sg_event_id, row)
    known = set(
        EmailMessage.objects.filter(
            pk__in={row.message_id for row in by_event_id.values() if row.message_id}
        ).values_list("pk", flat=True)
    )
    with transaction.atomic():
        seen = set(
            EmailEvent.objects.filter(sg_event_id__in=list(by_event_id)).values_list(
                "sg_event_id", flat=True
            )
        )
        new = [row for event_id, row in by_event_id.items() if event_id not in seen]
        for row in new:
            if row.message_id not in known:
                row.message_id = None
        # ignore_conflicts: a concurrent delivery of the same events may have got in first.
        EmailEvent.objects.bulk_create(new, ignore_conflicts=True, batch_size=2000)
        if rows:
            # Even for a replay: a provider retrying is a chance to finish what a lost task
            # left.
            transaction.on_commit(_process_later)
    return len(new)


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
                .values("id", "provider", "event", "message_id", "email", "occurred_at", "payload")[
                    :chunk
                ]
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
        # The earliest such event stored so far, whichever batch brought it: an early event
        # reported late still wins. Coalesce first: SQLite's MIN(a, b) is NULL when a is.
        earliest = Subquery(first)
        EmailMessage.objects.filter(pk__in=message_ids).update(
            **{field: Least(Coalesce(F(field), earliest), earliest)}
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


def suppression_reason(event: str, payload: dict) -> str | None:
    """The Suppression.Reason an event adds its address with, or None. A `dropped` event
    says why SendGrid would not send in its `reason`."""
    if event == "dropped":
        return DROPPED_REASONS.get(str(payload.get("reason", "")).strip().lower(), Reason.DROPPED)
    return SUPPRESSION_REASONS.get(event)


def suppression_detail(payload: dict) -> str:
    """What the provider said about a bounce or drop: SendGrid's `reason`, Mailgun's
    delivery-status message."""
    status = payload.get("delivery-status")
    if isinstance(status, dict):
        for key in ("description", "message"):
            if isinstance(status.get(key), str) and status[key].strip():
                return status[key].strip()
    reason = payload.get("reason", "")
    return reason if isinstance(reason, str) else str(reason)


# The Suppression.Source of each provider's events.
SUPPRESSION_SOURCES = {
    EmailProvider.SENDGRID: Suppression.Source.SENDGRID,
    EmailProvider.MAILGUN: Suppression.Source.MAILGUN,
}


def _suppress(events: list[dict]) -> None:
    entries: dict[str, list] = defaultdict(list)
    unsubscribed = set()
    for event in events:
        reason = suppression_reason(event["event"], event["payload"])
        email = (event["email"] or "").strip().lower()
        if reason and email:
            source = SUPPRESSION_SOURCES.get(event.get("provider"), "")
            entries[source].append((email, reason, suppression_detail(event["payload"])))
            if reason in (Reason.UNSUBSCRIBE, Reason.SPAM):
                unsubscribed.add(email)
    for source, rows in entries.items():
        suppressions_add(entries=rows, source=source)
    if unsubscribed:
        customers_mark_unsubscribed(emails=sorted(unsubscribed), source=ConsentSource.WEBHOOK)


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
