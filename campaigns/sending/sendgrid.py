"""SendGrid: the v3 mail/send payload and the client calls. Everything SendGrid-specific
about sending lives here (its Event Webhook is read by campaigns.webhooks)."""

import json
from email.utils import parseaddr
from urllib.error import URLError

from django.conf import settings
from python_http_client import exceptions as http_errors
from sendgrid import SendGridAPIClient

from campaigns.sending.provider import (
    Accepted,
    InFlight,
    OutgoingBatch,
    OutgoingEmail,
    PermanentSendError,
    ProviderCannotTell,
    TransientSendError,
    unsubscribe_headers,
)


def _address(value: str) -> dict:
    name, email = parseaddr(value)
    return {"email": email, "name": name} if name else {"email": email}


def batch_payload(batch: OutgoingBatch) -> dict:
    """One mail/send request: a personalization per recipient, the bodies with substitution
    keys once. Up to 1,000 personalizations per request (the library does not check)."""
    personalizations = []
    for recipient in batch.recipients:
        email, name = recipient.email, recipient.name
        personalization = {
            "to": [{"email": email, "name": name} if name else {"email": email}],
            "substitutions": recipient.substitutions,
            "custom_args": {"email_message_id": str(recipient.message_id)},
        }
        if recipient.unsubscribe_url:
            personalization["headers"] = unsubscribe_headers(recipient.unsubscribe_url)
        personalizations.append(personalization)
    content = [{"type": "text/plain", "value": batch.text or " "}]
    if batch.html:
        content.append({"type": "text/html", "value": batch.html})
    return {
        "personalizations": personalizations,
        "from": _address(batch.from_email),
        "subject": batch.subject,
        "content": content,
        "custom_args": {"batch_key": batch.key, "campaign_id": str(batch.campaign_id)},
        "categories": [f"campaign-{batch.campaign_id}"],
    }


def email_payload(email: OutgoingEmail) -> dict:
    content = [{"type": "text/plain", "value": email.text or " "}]
    if email.html:
        content.append({"type": "text/html", "value": email.html})
    payload = {
        "personalizations": [{"to": [_address(address) for address in email.to]}],
        "from": _address(email.from_email),
        "subject": email.subject,
        "content": content,
    }
    if email.headers:
        payload["headers"] = dict(email.headers)
    if email.reply_to:
        payload["reply_to"] = _address(email.reply_to)
    return payload


class SendGrid:
    """The provider when SENDGRID_API_KEY is set."""

    @staticmethod
    def is_configured() -> bool:
        return bool(settings.SENDGRID_API_KEY)

    def send_batch(self, batch: OutgoingBatch) -> Accepted:
        return mail_send(batch_payload(batch))

    def send_email(self, email: OutgoingEmail) -> Accepted:
        return mail_send(email_payload(email))

    def was_accepted(self, batch: InFlight) -> bool:
        query = f"unique_args['batch_key']=\"{batch.key}\""
        try:
            response = _client().client.messages.get(query_params={"query": query, "limit": 1})
        except http_errors.HTTPError as error:
            if error.status_code == 429 or error.status_code >= 500:
                raise TransientSendError(
                    f"SendGrid activity lookup: {error.status_code}"
                ) from error
            # 401/403/404: the account has no Email Activity feed (a paid add-on).
            raise ProviderCannotTell(f"SendGrid activity lookup: {error.status_code}") from error
        except (URLError, TimeoutError, OSError) as error:
            raise TransientSendError(f"SendGrid unreachable: {error}") from error
        return bool(json.loads(response.body or b"{}").get("messages"))

    def timeout_seconds(self) -> float:
        return settings.SENDGRID_TIMEOUT_SECONDS


def _client() -> SendGridAPIClient:
    client = SendGridAPIClient(settings.SENDGRID_API_KEY, host=settings.SENDGRID_API_HOST)
    client.client.timeout = settings.SENDGRID_TIMEOUT_SECONDS  # the library sets none
    return client


def mail_send(payload: dict) -> Accepted:
    """POST one v3 mail/send payload."""
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
