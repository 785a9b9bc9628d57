"""Hands a SendGrid v3 mail/send payload to SendGrid, or to the local outbox when no API key
is configured. Both take the same payload, so the whole sending pipeline runs either way."""

import json
import uuid
from dataclasses import dataclass
from urllib.error import URLError

from django.conf import settings
from python_http_client import exceptions as http_errors
from sendgrid import SendGridAPIClient

from campaigns.models import OutboxMessage
from campaigns.templating import apply_substitutions


class TransientSendError(Exception):
    """Worth retrying later: rate limited (429), provider error (5xx), network trouble."""


class PermanentSendError(Exception):
    """The provider refused the request (4xx); retrying the same request cannot help."""

    def __init__(self, reason: str, status: int | None = None):
        super().__init__(reason)
        self.reason = reason
        self.status = status


class ProviderCannotTell(Exception):
    """The provider will not say whether it accepted a request (e.g. no activity feed)."""


@dataclass(frozen=True)
class Accepted:
    message_id: str


def uses_sendgrid() -> bool:
    return bool(settings.SENDGRID_API_KEY)


def _client() -> SendGridAPIClient:
    client = SendGridAPIClient(settings.SENDGRID_API_KEY, host=settings.SENDGRID_API_HOST)
    client.client.timeout = settings.SENDGRID_TIMEOUT_SECONDS  # the library sets none
    return client


def mail_send(payload: dict) -> Accepted:
    if not uses_sendgrid():
        return _outbox_send(payload)
    try:
        response = _client().client.mail.send.post(request_body=payload)
    except http_errors.HTTPError as error:
        if error.status_code == 429 or error.status_code >= 500:
            raise TransientSendError(f"SendGrid answered {error.status_code}") from error
        raise PermanentSendError(_reason(error), error.status_code) from error
    except (URLError, TimeoutError, OSError) as error:
        raise TransientSendError(f"SendGrid unreachable: {error}") from error
    return Accepted(message_id=response.headers.get("X-Message-Id", ""))


def _reason(error: http_errors.HTTPError) -> str:
    body = error.body.decode("utf-8", "replace") if isinstance(error.body, bytes) else error.body
    try:
        messages = [item.get("message", "") for item in json.loads(body)["errors"]]
        return f"SendGrid {error.status_code}: " + "; ".join(m for m in messages if m)
    except (ValueError, KeyError, TypeError, AttributeError):
        return f"SendGrid {error.status_code}: {str(body)[:500]}"


def batch_was_accepted(batch_key: str) -> bool:
    """Did the provider accept the request carrying this batch key? Asked only for a batch
    whose worker died while the request was in flight."""
    if not uses_sendgrid():
        return OutboxMessage.objects.filter(custom_args__batch_key=batch_key).exists()
    query = f"unique_args['batch_key']=\"{batch_key}\""
    try:
        response = _client().client.messages.get(query_params={"query": query, "limit": 1})
    except http_errors.HTTPError as error:
        if error.status_code == 429 or error.status_code >= 500:
            raise TransientSendError(f"SendGrid activity lookup: {error.status_code}") from error
        # 401/403/404: the account has no Email Activity feed (a paid add-on).
        raise ProviderCannotTell(f"SendGrid activity lookup: {error.status_code}") from error
    except (URLError, TimeoutError, OSError) as error:
        raise TransientSendError(f"SendGrid unreachable: {error}") from error
    return bool(json.loads(response.body or b"{}").get("messages"))


def _outbox_send(payload: dict) -> Accepted:
    """What SendGrid would deliver: one message per personalization, substitutions applied."""
    message_id = uuid.uuid4().hex
    contents = {item["type"]: item["value"] for item in payload.get("content", [])}
    rows = []
    for personalization in payload["personalizations"]:
        substitutions = personalization.get("substitutions", {})
        subject = personalization.get("subject", payload.get("subject", ""))
        rows.append(
            OutboxMessage(
                to_email=personalization["to"][0]["email"],
                from_email=payload["from"]["email"],
                subject=apply_substitutions(subject, substitutions)[:300],
                text_body=apply_substitutions(contents.get("text/plain", ""), substitutions),
                html_body=apply_substitutions(contents.get("text/html", ""), substitutions),
                headers={**payload.get("headers", {}), **personalization.get("headers", {})},
                custom_args={
                    **payload.get("custom_args", {}),
                    **personalization.get("custom_args", {}),
                },
                message_id=message_id,
            )
        )
    OutboxMessage.objects.bulk_create(rows, batch_size=1000)
    return Accepted(message_id=message_id)
