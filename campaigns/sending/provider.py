"""What the sending machinery asks of an email provider, in provider-neutral terms.

A provider takes a batch of personalised emails (one body with substitution keys, and each
recipient's values for them) or a single email, and says whether it accepted them. It
classifies its failures into the three errors below, which the machinery acts on (retry with
backoff, fail the batch, or count an in-flight batch as sent). A provider is one module with
a class like `sendgrid.SendGrid` or `mailgun.Mailgun`, listed in PROVIDERS.

Which one sends: a campaign or sequence may name one of the configured providers; a run
keeps the one it started with (its in-flight batches are judged by the provider that got
them); everything else (single emails) goes through the default.
"""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from django.conf import settings
from django.utils.module_loading import import_string


class TransientSendError(Exception):
    """Worth retrying later: rate limited (429), provider error (5xx), network trouble."""


class OutcomeUnknown(TransientSendError):
    """The request went out but no answer came (a read timeout): the provider may have
    accepted it. Its batch stays in flight, to be judged like one whose worker died."""


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


@dataclass(frozen=True)
class InFlight:
    """A batch whose worker died mid-request, as a provider's lookup needs it: its key (sent
    along as a custom variable), one of its recipients and when its request went out (a
    provider that cannot search by custom variable narrows by recipient and time)."""

    key: str
    recipient: str
    started_at: datetime


class Provider(Protocol):
    def send_batch(self, batch: OutgoingBatch) -> Accepted:
        """Hand the batch over in one request; TransientSendError or PermanentSendError."""

    def send_email(self, email: OutgoingEmail) -> Accepted: ...

    def was_accepted(self, batch: InFlight) -> bool:
        """Did the request carrying `batch.key` get accepted? Asked only for a batch whose
        worker died mid-request; ProviderCannotTell when the provider will not say."""

    def timeout_seconds(self) -> float:
        """How long one request may take before the client gives up."""

    @staticmethod
    def is_configured() -> bool:
        """Are its settings (an API key) there?"""


class ProviderNotConfigured(Exception):
    """A run or campaign names a provider whose settings are gone."""


# The providers, in the order the default is chosen when EMAIL_DEFAULT_PROVIDER names none:
# the first whose settings are configured (`is_configured`); the local outbox, last, always is.
PROVIDERS = {
    "sendgrid": "campaigns.sending.sendgrid.SendGrid",
    "mailgun": "campaigns.sending.mailgun.Mailgun",
    "outbox": "campaigns.sending.outbox.Outbox",
}
LABELS = {"sendgrid": "SendGrid", "mailgun": "Mailgun", "outbox": "Local outbox"}


def configured_providers() -> list[str]:
    """The names of the providers that can send now: SendGrid and Mailgun when their keys
    are set; the local outbox only when neither is (it never stands in for a real one)."""
    real = [
        name
        for name, path in PROVIDERS.items()
        if name != "outbox" and import_string(path).is_configured()
    ]
    return real or ["outbox"]


def provider_name() -> str:
    """The default provider: EMAIL_DEFAULT_PROVIDER when it is configured, else the first."""
    configured = configured_providers()
    chosen = settings.EMAIL_DEFAULT_PROVIDER.strip().lower()
    return chosen if chosen in configured else configured[0]


def provider_for(name: str = "") -> str:
    """The provider that sends for a campaign or sequence naming `name` ("" = the default).
    ProviderNotConfigured when it names one whose settings are gone."""
    if not name:
        return provider_name()
    if name not in configured_providers():
        raise ProviderNotConfigured(f"{LABELS.get(name, name)} is not configured.")
    return name


def provider_for_new_run(name: str = "") -> str:
    """The provider a new run sends through when its campaign or sequence names `name`: that
    one while it is configured, else the default (a provider whose key was removed cannot
    send, and the run must not wait for it)."""
    try:
        return provider_for(name)
    except ProviderNotConfigured:
        return provider_name()


def provider_can_send(name: str) -> bool:
    """Whether the provider named can send now (the local outbox always can)."""
    return name in PROVIDERS and import_string(PROVIDERS[name]).is_configured()


def provider_named(name: str) -> Provider:
    return import_string(PROVIDERS[name])()


def current_provider() -> Provider:
    """The default provider, which single emails (drafts, test sends, digests) go through."""
    return provider_named(provider_name())


def longest_request_seconds() -> float:
    """The longest a request to any provider that can send may take (the sender's lease
    outlasts it)."""
    return max(
        import_string(path)().timeout_seconds()
        for name, path in PROVIDERS.items()
        if provider_can_send(name)
    )
