"""What the sending machinery asks of an email provider, in provider-neutral terms.

A provider takes a batch of personalised emails (one body with substitution keys, and each
recipient's values for them) or a single email, and says whether it accepted them. It
classifies its failures into the three errors below, which the machinery acts on (retry with
backoff, fail the batch, or count an in-flight batch as sent). A second provider (Mailgun)
is one new module with a class like `sendgrid.SendGrid`, listed in PROVIDERS.
"""

from dataclasses import dataclass, field
from typing import Protocol

from django.utils.module_loading import import_string


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


@dataclass(slots=True)
class Recipient:
    message_id: int  # the EmailMessage, sent along so that provider events name it
    email: str
    name: str
    substitutions: dict[str, str]  # the substitution keys of the bodies -> this one's values
    unsubscribe_url: str  # "" when the message has no customer any more


@dataclass
class OutgoingBatch:
    """One request's worth of a campaign run: up to CAMPAIGN_BATCH_SIZE recipients."""

    key: str  # SendBatch.key, sent along so that `was_accepted` can find the request
    campaign_id: int
    from_email: str  # as in DEFAULT_FROM_EMAIL: "Name <address>"
    subject: str  # with substitution keys (templating.SubstitutionPlan)
    html: str
    text: str
    recipients: list[Recipient] = field(default_factory=list)


@dataclass
class OutgoingEmail:
    """A single email (lead workflows, test sends): no substitutions."""

    to: list[str]  # "Name <address>" or "address"
    from_email: str
    subject: str
    text: str
    html: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    reply_to: str = ""  # a provider sets it as its API says (SendGrid refuses the header)


def unsubscribe_headers(link: str) -> dict[str, str]:
    """RFC 8058 one-click unsubscribe, for every provider."""
    return {"List-Unsubscribe": f"<{link}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}


class Provider(Protocol):
    def send_batch(self, batch: OutgoingBatch) -> Accepted:
        """Hand the batch over in one request; TransientSendError or PermanentSendError."""

    def send_email(self, email: OutgoingEmail) -> Accepted: ...

    def was_accepted(self, batch_key: str) -> bool:
        """Did the request carrying `batch_key` get accepted? Asked only for a batch whose
        worker died mid-request; ProviderCannotTell when the provider will not say."""

    def timeout_seconds(self) -> float:
        """How long one request may take before the client gives up."""

    @staticmethod
    def is_configured() -> bool:
        """Are its settings (an API key) there? The first configured provider sends."""


# Which provider sends: the first listed whose settings are configured (`is_configured`);
# the local outbox, last, always is.
PROVIDERS = {
    "sendgrid": "campaigns.sending.sendgrid.SendGrid",
    "outbox": "campaigns.sending.outbox.Outbox",
}


def provider_name() -> str:
    return next(name for name, path in PROVIDERS.items() if import_string(path).is_configured())


def current_provider() -> Provider:
    return import_string(PROVIDERS[provider_name()])()


def longest_request_seconds() -> float:
    """The longest a request to any provider may take (the sender's lease outlasts it)."""
    return max(import_string(path)().timeout_seconds() for path in PROVIDERS.values())
