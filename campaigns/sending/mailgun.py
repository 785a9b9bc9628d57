"""Mailgun: the Messages API payload (batch sending with recipient-variables) and the calls
made through the official `mailgun` SDK. Everything Mailgun-specific about sending lives
here (its webhooks are read by campaigns.webhooks_mailgun; its suppression lists are read
page by page for campaigns.providers).

Batch sending: one request names up to 1,000 `to` addresses and a `recipient-variables`
object keyed by address. With it, Mailgun sends each recipient a message of their own (To:
only them); without it every recipient would see the whole list. The bodies carry
`%recipient.sN%` placeholders where the SendGrid path has substitution keys, and the custom
variables (`v:`) and the List-Unsubscribe header take each recipient's values the same way.

The SDK retries 429/5xx and network errors by itself unless told not to: its retry would
send a batch twice after a timeout that hid an acceptance, so it is switched off
(`RetryPolicy(max_retries=0)`) and the sending machinery retries with its own backoff.
"""

import json
import time
from collections.abc import Iterator
from urllib.parse import parse_qsl, urlsplit

from django.conf import settings
from mailgun.client import Client
from mailgun.config import RetryPolicy
from mailgun.handlers.error_handler import ApiError, MailgunTimeoutError

from campaigns.sending.provider import (
    Accepted,
    InFlight,
    OutcomeUnknown,
    OutgoingBatch,
    OutgoingEmail,
    PermanentSendError,
    ProviderCannotTell,
    TransientSendError,
    unsubscribe_headers,
)
from campaigns.templating import apply_substitutions

REGIONS = {"us": "https://api.mailgun.net", "eu": "https://api.eu.mailgun.net"}
EVENTS_PAGE_LIMIT = 300  # the Events API's maximum
SUPPRESSIONS_PAGE_LIMIT = 1000  # the suppressions API's maximum
# How far before a batch's request its accepted events are looked for (clock skew).
EVENTS_LOOKBACK_SECONDS = 120


def api_url() -> str:
    if settings.MAILGUN_API_URL:
        return settings.MAILGUN_API_URL
    return REGIONS.get(settings.MAILGUN_REGION.strip().lower(), REGIONS["us"])


_clients: dict[tuple, Client] = {}


def _client() -> Client:
    """One SDK client per process and configuration, kept open: building one costs a TLS
    context (~0.1 s, more than a 1,000-recipient request), and its session pools the
    connection."""
    timeout = float(settings.MAILGUN_TIMEOUT_SECONDS)
    key = (settings.MAILGUN_API_KEY, api_url(), timeout)
    client = _clients.get(key)
    if client is None:
        if len(_clients) >= 8:  # settings changed often (tests): drop the old ones
            for old in _clients.values():
                old.close()
            _clients.clear()
        client = _clients[key] = Client(
            auth=("api", settings.MAILGUN_API_KEY),
            api_url=api_url(),
            timeout=(min(timeout, 5.0), timeout),
            retry_policy=RetryPolicy(max_retries=0),
        )
    return client


def _address(name: str, email: str) -> str:
    """`"Name" <address>` for a `to` field. Not email.utils.formataddr: it refuses
    non-ASCII addresses (müller@example.de), which Mailgun takes as they are."""
    name = " ".join((name or "").split())  # no line breaks or runs of spaces
    if not name:
        return email
    quoted = name.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{quoted}" <{email}>'


def _variable_names(batch: OutgoingBatch) -> dict[str, str]:
    """Each substitution key of the bodies -> the recipient variable that replaces it."""
    keys: dict[str, str] = {}
    for recipient in batch.recipients:
        for key in recipient.substitutions:
            keys.setdefault(key, f"s{len(keys)}")
    return keys


def batch_payload(batch: OutgoingBatch) -> list[tuple[str, str]]:
    """One Messages API request (form fields, repeated `to`): the bodies once with
    `%recipient.sN%` placeholders, each recipient's values in recipient-variables."""
    names = _variable_names(batch)
    placeholders = {key: f"%recipient.{name}%" for key, name in names.items()}
    fields = [
        ("from", batch.from_email),
        ("subject", apply_substitutions(batch.subject, placeholders)),
        ("text", apply_substitutions(batch.text or " ", placeholders)),
    ]
    if batch.html:
        fields.append(("html", apply_substitutions(batch.html, placeholders)))
    variables = {}
    for recipient in batch.recipients:
        fields.append(("to", _address(recipient.name, recipient.email)))
        values = {names[key]: value for key, value in recipient.substitutions.items()}
        values["message_id"] = str(recipient.message_id)
        values["unsubscribe_url"] = recipient.unsubscribe_url
        variables[recipient.email] = values
    fields += [
        ("recipient-variables", json.dumps(variables, separators=(",", ":"))),
        # Custom variables come back in every event of the message (`user-variables`).
        ("v:email_message_id", "%recipient.message_id%"),
        ("v:batch_key", batch.key),
        ("v:campaign_id", str(batch.campaign_id)),
        ("o:tag", f"campaign-{batch.campaign_id}"),
    ]
    headers = unsubscribe_headers("%recipient.unsubscribe_url%")
    fields += [(f"h:{name}", value) for name, value in headers.items()]
    return fields


def email_payload(email: OutgoingEmail) -> list[tuple[str, str]]:
    fields = [("from", email.from_email), ("subject", email.subject), ("text", email.text or " ")]
    if email.html:
        fields.append(("html", email.html))
    fields += [("to", address) for address in email.to]
    if email.reply_to:
        fields.append(("h:Reply-To", email.reply_to))
    fields += [(f"h:{name}", value) for name, value in email.headers.items()]
    return fields


def _reason(response) -> str:
    try:
        message = response.json().get("message", "")
    except (ValueError, AttributeError):
        message = ""
    return f"Mailgun {response.status_code}: {message or response.text[:500]}"


def messages_send(fields: list[tuple[str, str]]) -> Accepted:
    """POST one Messages API request to MAILGUN_DOMAIN."""
    try:
        # multipart/form-data, as Mailgun's own examples send (curl -F): a 1,000-recipient
        # request is mostly one JSON field, which form-encoding would percent-quote byte by
        # byte in Python.
        response = _client().messages.create(
            files=[(name, (None, value)) for name, value in fields],
            domain=settings.MAILGUN_DOMAIN,
        )
    except MailgunTimeoutError as error:  # sent, perhaps accepted, no answer
        raise OutcomeUnknown(f"Mailgun did not answer in time: {error}") from error
    except (ApiError, OSError) as error:  # network trouble: not sent
        raise TransientSendError(f"Mailgun unreachable: {error}") from error
    except ValueError as error:  # the SDK refused the request itself (a header it rejects)
        raise PermanentSendError(f"Mailgun client refused the request: {error}") from error
    status = response.status_code
    if status == 429 or status >= 500:
        raise TransientSendError(_reason(response))
    if status >= 400:
        raise PermanentSendError(_reason(response), status)
    try:
        message_id = str(response.json().get("id", ""))
    except (ValueError, AttributeError):
        message_id = ""
    return Accepted(message_id=message_id.strip("<>")[:100])


class Mailgun:
    """The provider when MAILGUN_API_KEY and MAILGUN_DOMAIN are set."""

    @staticmethod
    def is_configured() -> bool:
        return bool(settings.MAILGUN_API_KEY and settings.MAILGUN_DOMAIN)

    def send_batch(self, batch: OutgoingBatch) -> Accepted:
        return messages_send(batch_payload(batch))

    def send_email(self, email: OutgoingEmail) -> Accepted:
        return messages_send(email_payload(email))

    def was_accepted(self, batch: InFlight) -> bool:
        """The Events API cannot filter by custom variable: it is asked for the `accepted`
        events of one of the batch's recipients since just before the request, and each
        event's `user-variables` tell whether it was this batch."""
        if not batch.recipient:
            raise ProviderCannotTell("The batch has no recipient left to look up.")
        filters = {
            "event": "accepted",
            "recipient": batch.recipient,
            "begin": str(int(batch.started_at.timestamp()) - EVENTS_LOOKBACK_SECONDS),
            "ascending": "yes",
            "limit": EVENTS_PAGE_LIMIT,
        }
        items = events_get(filters)
        if any((item.get("user-variables") or {}).get("batch_key") == batch.key for item in items):
            return True
        if len(items) >= EVENTS_PAGE_LIMIT:
            raise ProviderCannotTell("More accepted events for the recipient than one page.")
        return False

    def timeout_seconds(self) -> float:
        return settings.MAILGUN_TIMEOUT_SECONDS


def events_get(filters: dict) -> list[dict]:
    try:
        response = _client().events.get(domain=settings.MAILGUN_DOMAIN, filters=filters)
    except (ApiError, OSError) as error:
        raise TransientSendError(f"Mailgun unreachable: {error}") from error
    status = response.status_code
    if status == 429 or status >= 500:
        raise TransientSendError(f"Mailgun events lookup: {status}")
    if status >= 400:
        raise ProviderCannotTell(f"Mailgun events lookup: {status}")
    try:
        items = response.json().get("items", [])
    except (ValueError, AttributeError):
        raise ProviderCannotTell("Mailgun events lookup: not JSON") from None
    return [item for item in items if isinstance(item, dict)]


SUPPRESSION_LISTS = ("bounces", "complaints", "unsubscribes")


class MailgunUnavailable(Exception):
    """A suppression list could not be read now (network, 429/5xx, refused key)."""


def suppression_pages(kind: str, *, max_pages: int = 100_000) -> Iterator[list[dict]]:
    """Every page of one suppression list (`bounces`, `complaints` or `unsubscribes`), in
    Mailgun's order, following each page's `paging.next` until a page comes back empty."""
    if kind not in SUPPRESSION_LISTS:
        raise ValueError(kind)
    filters: dict = {"limit": SUPPRESSIONS_PAGE_LIMIT}
    endpoint = getattr(_client(), kind)
    for _ in range(max_pages):
        response = None
        for attempt in range(4):  # a short backoff on 429/5xx; the task retries later
            try:
                response = endpoint.get(domain=settings.MAILGUN_DOMAIN, filters=filters)
            except (ApiError, OSError) as error:
                raise MailgunUnavailable(f"Mailgun unreachable: {error}") from error
            if response.status_code != 429 and response.status_code < 500:
                break
            time.sleep(0.5 * 2**attempt)
        if response.status_code >= 400:
            raise MailgunUnavailable(_reason(response))
        try:
            body = response.json()
        except ValueError:
            raise MailgunUnavailable("Mailgun answered with something not JSON.") from None
        items = [item for item in body.get("items") or [] if isinstance(item, dict)]
        if not items:
            return
        yield items
        following = dict(parse_qsl(urlsplit((body.get("paging") or {}).get("next", "")).query))
        if not following or following == filters:
            return
        filters = following
