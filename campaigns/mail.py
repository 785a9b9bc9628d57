"""A Django email backend over campaigns.transport, so single emails (lead workflows, test
sends) go the way campaigns go: SendGrid with a key, the local outbox without."""

from email.utils import parseaddr

from django.core.mail.backends.base import BaseEmailBackend

from campaigns.transport import PermanentSendError, TransientSendError, mail_send


def _address(value: str) -> dict:
    name, email = parseaddr(value)
    return {"email": email, "name": name} if name else {"email": email}


class CrmEmailBackend(BaseEmailBackend):
    def send_messages(self, email_messages) -> int:
        sent = 0
        for message in email_messages:
            content = [{"type": "text/plain", "value": message.body or " "}]
            for alternative, mimetype in getattr(message, "alternatives", []):
                if mimetype == "text/html":
                    content.append({"type": "text/html", "value": alternative})
            payload = {
                "personalizations": [{"to": [_address(address) for address in message.to]}],
                "from": _address(message.from_email),
                "subject": message.subject,
                "content": content,
            }
            if message.extra_headers:
                payload["headers"] = {k: str(v) for k, v in message.extra_headers.items()}
            try:
                mail_send(payload)
            except (PermanentSendError, TransientSendError):
                if not self.fail_silently:
                    raise
                continue
            sent += 1
        return sent
