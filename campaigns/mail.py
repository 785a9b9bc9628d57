"""A Django email backend over the campaigns provider, so single emails (lead workflows, test
sends) go the way campaigns go: SendGrid with a key, the local outbox without."""

from django.core.mail.backends.base import BaseEmailBackend

from campaigns.sending.provider import (
    OutgoingEmail,
    PermanentSendError,
    TransientSendError,
    current_provider,
)


class CrmEmailBackend(BaseEmailBackend):
    def send_messages(self, email_messages) -> int:
        provider = current_provider()
        sent = 0
        for message in email_messages:
            html = next(
                (
                    alt
                    for alt, mimetype in getattr(message, "alternatives", [])
                    if mimetype == "text/html"
                ),
                "",
            )
            email = OutgoingEmail(
                to=list(message.to),
                from_email=message.from_email,
                subject=message.subject,
                text=message.body,
                html=html,
                headers={k: str(v) for k, v in (message.extra_headers or {}).items()},
                reply_to=", ".join(message.reply_to or []),
            )
            try:
                provider.send_email(email)
            except (PermanentSendError, TransientSendError):
                if not self.fail_silently:
                    raise
                continue
            sent += 1
        return sent
