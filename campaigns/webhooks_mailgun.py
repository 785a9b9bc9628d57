"""Mailgun's webhooks: verify the signature, refuse stale and replayed deliveries, map the
event into the same EmailEvent storage as SendGrid's (campaigns.webhooks applies both).

A delivery is one JSON object: `signature` ({timestamp, token, signature}) and `event-data`
(one event). The signature is the hex HMAC-SHA256 of timestamp + token under the webhook
signing key (MAILGUN_WEBHOOK_SIGNING_KEY, shown in Mailgun's webhook settings; not the API
key). A timestamp more than MAILGUN_WEBHOOK_MAX_AGE_SECONDS away is refused, and so is a
token seen before (remembered in the cache for twice that long, only once its event was
stored, so a delivery that failed here can be retried by Mailgun).
"""

import hashlib
import hmac
import json
import logging
import math
import time
from datetime import UTC, datetime

from django.conf import settings
from django.core.cache import cache

from campaigns.models import EmailEvent, EmailProvider
from campaigns.webhooks import (
    MAX_EVENT_TIMESTAMP,
    SignatureRejected,
    _message_id,
    _unstorable,
    events_insert,
)
from crm.errors import ValidationFailed

logger = logging.getLogger(__name__)

MAX_TOKEN_LENGTH = 256
TOKEN_CACHE_PREFIX = "mailgun-webhook-token:"

# Mailgun's event -> the neutral name campaigns.webhooks applies (SendGrid's vocabulary).
EVENT_TYPES = {
    "accepted": "processed",
    "delivered": "delivered",
    "opened": "open",
    "clicked": "click",
    "unsubscribed": "unsubscribe",
    "complained": "spamreport",
    "rejected": "rejected",  # Mailgun refused the request itself: recorded, nothing follows
}


class ReplayRejected(SignatureRejected):
    """A token seen before: answered with 403 like a bad signature."""


def signature_parse(body: bytes) -> tuple[dict, dict]:
    """(signature, event-data) of a webhook body, or ValidationFailed."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise ValidationFailed("Body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise ValidationFailed("Body must be a JSON object.")
    signature, event = data.get("signature"), data.get("event-data")
    if not isinstance(signature, dict):
        raise ValidationFailed("No signature object.")
    if not isinstance(event, dict):
        raise ValidationFailed("No event-data object.")
    return signature, event


def webhook_verify(signature: dict) -> str:
    """Check the HMAC, the timestamp's age; returns the token (checked for replay later)."""
    key = settings.MAILGUN_WEBHOOK_SIGNING_KEY
    if not key:
        logger.warning("Mailgun webhook refused: MAILGUN_WEBHOOK_SIGNING_KEY is not set.")
        raise SignatureRejected("Signature does not match.")
    timestamp, token, digest = (signature.get(k) for k in ("timestamp", "token", "signature"))
    if isinstance(timestamp, int) and not isinstance(timestamp, bool):
        timestamp = str(timestamp)
    if not all(isinstance(value, str) and value for value in (timestamp, token, digest)):
        raise SignatureRejected("Missing signature fields.")
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
        raise SignatureRejected("Bad timestamp.")
    if len(token) > MAX_TOKEN_LENGTH or not token.isascii():
        raise SignatureRejected("Bad token.")
    if abs(int(time.time()) - int(timestamp)) > settings.MAILGUN_WEBHOOK_MAX_AGE_SECONDS:
        raise SignatureRejected("Stale or future timestamp.")
    expected = hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    if not (digest.isascii() and hmac.compare_digest(expected, digest.lower())):
        raise SignatureRejected("Signature does not match.")
    return token


def _token_key(token: str) -> str:
    return TOKEN_CACHE_PREFIX + hashlib.sha256(token.encode()).hexdigest()


def token_claim(token: str) -> None:
    """Remember a verified token; ReplayRejected when it was seen before (atomic add)."""
    if not cache.add(_token_key(token), 1, timeout=2 * settings.MAILGUN_WEBHOOK_MAX_AGE_SECONDS):
        raise ReplayRejected("This webhook delivery was seen before.")


def token_release(token: str) -> None:
    """Storing failed: Mailgun's retry of the same delivery must get in."""
    cache.delete(_token_key(token))


def event_type(data: dict) -> str:
    """The neutral type of a Mailgun event. `failed`: permanent for a hard bounce (or an
    address Mailgun already suppresses: `dropped`, with its `suppress-*` reason), temporary
    for a deferral."""
    event = data.get("event")
    if event == "failed":
        if str(data.get("severity", "")).lower() == "temporary":
            return "deferred"
        reason = str(data.get("reason", "")).lower()
        return "bounce" if reason in ("bounce", "generic", "") else "dropped"
    return EVENT_TYPES.get(event, f"mailgun-{event}"[:30])


def event_row(data: dict) -> EmailEvent:
    """The event as an EmailEvent (not saved), or ValidationFailed."""
    event_id, event = data.get("id"), data.get("event")
    if not isinstance(event_id, str) or not event_id or len(event_id) > 80:
        raise ValidationFailed("The event has no id.")
    if not isinstance(event, str) or not event:
        raise ValidationFailed("The event has no type.")
    timestamp = data.get("timestamp")
    if not isinstance(timestamp, int | float) or isinstance(timestamp, bool):
        raise ValidationFailed("The event has no numeric timestamp.")
    if not (math.isfinite(timestamp) and 0 <= timestamp <= MAX_EVENT_TIMESTAMP):
        raise ValidationFailed("The event's timestamp is out of range.")
    problem = _unstorable(data)
    if problem:
        raise ValidationFailed(f"The event {problem}.")
    variables = data.get("user-variables")
    variables = variables if isinstance(variables, dict) else {}
    recipient = data.get("recipient")
    return EmailEvent(
        # Mailgun's ids are unique within a day: the day goes along.
        sg_event_id=f"mailgun:{int(timestamp) // 86400}:{event_id}",
        provider=EmailProvider.MAILGUN,
        event=event_type(data),
        email=recipient[:254] if isinstance(recipient, str) else "",
        message_id=_message_id(variables),
        occurred_at=datetime.fromtimestamp(timestamp, tz=UTC),
        payload=data,
    )


def webhook_receive(body: bytes) -> int:
    """One webhook delivery: ValidationFailed (400) for a malformed body, SignatureRejected
    (403) for a forged, stale or replayed one. Returns how many events were new (0 or 1)."""
    signature, data = signature_parse(body)
    token = webhook_verify(signature)
    row = event_row(data)
    token_claim(token)
    try:
        return events_insert([row])
    except Exception:
        token_release(token)
        raise
