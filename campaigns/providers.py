"""The email providers as the admin sees them (which are configured, which one is the
default, where their webhooks must point), and connecting Mailgun: importing its existing
bounces, complaints and unsubscribes into the one suppression list the email gate reads."""

from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from campaigns.models import EmailProvider, ProviderConnection
from campaigns.sending import mailgun
from campaigns.sending.provider import (
    LABELS,
    PROVIDERS,
    configured_providers,
    provider_can_send,
    provider_name,
)
from customers.models import ConsentSource, Suppression
from customers.services import customers_mark_unsubscribed, suppressions_add

Reason = Suppression.Reason
# Each Mailgun suppression list -> the reason its addresses are suppressed with.
MAILGUN_LISTS = {
    "bounces": Reason.BOUNCE,
    "complaints": Reason.SPAM,
    "unsubscribes": Reason.UNSUBSCRIBE,
}


@dataclass(frozen=True)
class ProviderStatus:
    name: str
    label: str
    configured: bool  # its keys are set
    sends: bool  # it is one a campaign can send through now
    is_default: bool  # single emails and campaigns that name none go through it
    webhook_url: str  # what to set in the provider's settings ("" for the outbox)
    webhook_key_set: bool
    detail: str


def provider_statuses() -> list[ProviderStatus]:
    """Every provider with its state, for the admin page."""
    configured, default = configured_providers(), provider_name()
    site = settings.SITE_URL
    rows = []
    for name in PROVIDERS:
        if name == EmailProvider.SENDGRID:
            webhook = site + reverse("sendgrid_webhook")
            key_set = bool(settings.SENDGRID_WEBHOOK_PUBLIC_KEY)
            detail = settings.SENDGRID_API_HOST
        elif name == EmailProvider.MAILGUN:
            webhook = site + reverse("mailgun_webhook")
            key_set = bool(settings.MAILGUN_WEBHOOK_SIGNING_KEY)
            detail = f"domain {settings.MAILGUN_DOMAIN or '(none)'}, {mailgun.api_url()}"
        else:
            webhook, key_set, detail = "", False, "stores what would be sent (Campaigns › Outbox)"
        rows.append(
            ProviderStatus(
                name=name,
                label=LABELS[name],
                configured=provider_can_send(name),
                sends=name in configured,
                is_default=name == default,
                webhook_url=webhook,
                webhook_key_set=key_set,
                detail=detail,
            )
        )
    return rows


def mailgun_connect() -> ProviderConnection | None:
    """Connecting Mailgun (its key and domain configured): once per sending domain, import
    its suppression lists. Called from beat every few minutes; does nothing once done."""
    if not provider_can_send(EmailProvider.MAILGUN):
        return None
    connection, _ = ProviderConnection.objects.get_or_create(
        provider=EmailProvider.MAILGUN, account=settings.MAILGUN_DOMAIN
    )
    if connection.status == ProviderConnection.Status.IMPORTED:
        return connection
    return mailgun_suppressions_import(connection_id=connection.pk)


def mailgun_suppressions_import(*, connection_id: int) -> ProviderConnection | None:
    """Read Mailgun's bounces, complaints and unsubscribes page by page into Suppression
    (source: imported from Mailgun), withdrawing the consent of who unsubscribed or
    complained. The connection's row stays locked meanwhile (a second worker skips it).
    Idempotent: a failure keeps the pages read so far and marks the connection FAILED; the
    next try reads every list again and adds what is missing. None when another worker is
    on it."""
    with transaction.atomic():
        connection = (
            ProviderConnection.objects.select_for_update(skip_locked=True)
            .filter(pk=connection_id, provider=EmailProvider.MAILGUN)
            .first()
        )
        if connection is None:
            return None
        if connection.account != settings.MAILGUN_DOMAIN:
            return connection  # configured for another domain now; its own row imports
        try:
            imported, seen = _import_lists()
        except mailgun.MailgunUnavailable as error:
            connection.status = ProviderConnection.Status.FAILED
            connection.last_error = str(error)[:2000]
        else:
            connection.status = ProviderConnection.Status.IMPORTED
            connection.imported, connection.seen = imported, seen
            connection.imported_at = timezone.now()
            connection.last_error = ""
        connection.save(update_fields=["status", "imported", "seen", "imported_at",
                                       "last_error"])  # fmt: skip
    return connection


def _import_lists() -> tuple[dict[str, int], dict[str, int]]:
    imported: dict[str, int] = {}
    seen: dict[str, int] = {}
    for kind, reason in MAILGUN_LISTS.items():
        imported[kind] = seen[kind] = 0
        for page in mailgun.suppression_pages(kind):
            entries = []
            for item in page:
                address = item.get("address")
                if isinstance(address, str) and "@" in address:
                    entries.append((address, reason, _detail(kind, item)))
            seen[kind] += len(entries)
            imported[kind] += suppressions_add(
                entries=entries, source=Suppression.Source.MAILGUN_IMPORT
            )
            if reason in (Reason.UNSUBSCRIBE, Reason.SPAM) and entries:
                customers_mark_unsubscribed(
                    emails=[address for address, _, _ in entries], source=ConsentSource.WEBHOOK
                )
    return imported, seen


def _detail(kind: str, item: dict) -> str:
    created = item.get("created_at") if isinstance(item.get("created_at"), str) else ""
    if kind == "bounces":
        code, error = item.get("code", ""), item.get("error", "")
        text = f"Mailgun bounce {code}: {error}".strip().rstrip(":")
    elif kind == "complaints":
        text = "Mailgun complaint"
    else:
        tags = item.get("tags")
        tags = ", ".join(str(tag) for tag in tags) if isinstance(tags, list) else ""
        text = f"Mailgun unsubscribe ({tags or '*'})"
    return f"{text} (since {created})" if created else text
