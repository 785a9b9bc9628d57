"""The local outbox: the provider when no provider key is configured. It stores what a
provider would deliver (one OutboxMessage per recipient, substitutions applied), so the whole
sending pipeline runs, and the UI shows the result."""

import uuid
from email.utils import parseaddr

from campaigns.models import OutboxMessage
from campaigns.sending.provider import (
    Accepted,
    InFlight,
    OutgoingBatch,
    OutgoingEmail,
    unsubscribe_headers,
)
from campaigns.templating import apply_substitutions


class Outbox:
    """The local outbox: what sends when no provider is configured (the embedded default)."""

    @staticmethod
    def is_configured() -> bool:
        return True

    def send_batch(self, batch: OutgoingBatch) -> Accepted:
        message_id = uuid.uuid4().hex
        from_email = parseaddr(batch.from_email)[1]
        text = batch.text or " "
        rows = []
        for recipient in batch.recipients:
            substitutions = recipient.substitutions
            link = recipient.unsubscribe_url
            rows.append(
                OutboxMessage(
                    to_email=recipient.email,
                    from_email=from_email,
                    subject=apply_substitutions(batch.subject, substitutions)[:300],
                    text_body=apply_substitutions(text, substitutions),
                    html_body=apply_substitutions(batch.html, substitutions),
                    headers=unsubscribe_headers(link) if link else {},
                    custom_args={
                        "batch_key": batch.key,
                        "campaign_id": str(batch.campaign_id),
                        "email_message_id": str(recipient.message_id),
                    },
                    message_id=message_id,
                )
            )
        OutboxMessage.objects.bulk_create(rows, batch_size=1000)
        return Accepted(message_id=message_id)

    def send_email(self, email: OutgoingEmail) -> Accepted:
        message_id = uuid.uuid4().hex
        OutboxMessage.objects.create(
            to_email=parseaddr(email.to[0])[1],
            from_email=parseaddr(email.from_email)[1],
            subject=email.subject[:300],
            text_body=email.text or " ",
            html_body=email.html,
            headers={**email.headers, **({"Reply-To": email.reply_to} if email.reply_to else {})},
            custom_args={},
            message_id=message_id,
        )
        return Accepted(message_id=message_id)

    def was_accepted(self, batch: InFlight) -> bool:
        return OutboxMessage.objects.filter(custom_args__batch_key=batch.key).exists()

    def timeout_seconds(self) -> float:
        return 0
