"""Who a run goes to, and each recipient's template variables: resolved when the run starts
(one INSERT ... SELECT) and read back, as plain columns, when its batches are built."""

from django.db.models import CharField, Count, DateTimeField, IntegerField
from django.db.models import Value as V
from django.utils import timezone

from campaigns.models import CampaignRun, EmailCampaign, EmailMessage
from campaigns.segments import criteria_clean, segment_customers
from campaigns.sending.provider import Recipient
from campaigns.templating import SubstitutionPlan
from campaigns.tokens import unsubscribe_url, unsubscribe_url_maker
from crm.bulk import insert_from_select
from customers.email_gate import EmailKind, with_email_refusal
from customers.models import Region

REGION_LABELS = dict(Region.choices)


def _audience(campaign: EmailCampaign):
    """The segment, within what its author may see, each customer with the email gate's
    refusal (marketing). The criteria are checked again: a segment edited in Django admin
    must not widen an audience by a typo."""
    criteria = criteria_clean(campaign.segment.criteria)
    customers = segment_customers(user=campaign.created_by, criteria=criteria)
    return with_email_refusal(customers, EmailKind.MARKETING)


def recipients_for(campaign: EmailCampaign):
    """Who the campaign goes to now: the audience the email gate lets through."""
    return _audience(campaign).filter(email_refusal__isnull=True)


def recipients_skipped(campaign: EmailCampaign) -> dict[str, int]:
    """How many of the audience the gate refuses, per Refusal: one grouped query."""
    return dict(
        _audience(campaign)
        .filter(email_refusal__isnull=False)
        .order_by()
        .values("email_refusal")
        .annotate(n=Count("pk"))
        .values_list("email_refusal", "n")
    )


def recipients_insert(campaign: EmailCampaign, run: CampaignRun) -> int:
    """The run's EmailMessage rows, queued; a repeated call adds nobody twice."""
    messages_queue(customers=recipients_for(campaign), run=run)
    return EmailMessage.objects.filter(run=run).count()


def messages_queue(*, customers, run: CampaignRun) -> int:
    """A queued EmailMessage of `run` for each of `customers`. INSERT ... SELECT: 100,000
    recipients in one statement instead of 100,000 objects. Returns how many were added."""
    select = (
        customers.order_by()
        .annotate(
            m_campaign=V(run.campaign_id, output_field=IntegerField()),
            m_run=V(run.pk, output_field=IntegerField()),
            m_status=V(EmailMessage.Status.QUEUED, output_field=CharField()),
            m_blank=V("", output_field=CharField()),
            m_now=V(timezone.now(), output_field=DateTimeField()),
        )
        .values_list(
            "m_campaign", "m_run", "pk", "email", "m_status", "m_blank", "m_blank", "m_now"
        )
    )
    columns = ["campaign_id", "run_id", "customer_id", "email", "status",
               "provider_message_id", "error", "queued_at"]  # fmt: skip
    return insert_from_select(EmailMessage, columns, select)


def recipient_values(customer, *, message_id: int | None = None) -> dict[str, str]:
    """The template variables for one customer (preview and test sends)."""
    if customer is None:
        return {}
    owner = customer.owner
    return _values(
        name=customer.name,
        email=customer.email,
        company=customer.company,
        job_title=customer.job_title,
        region=customer.region,
        owner_name=(owner.get_full_name() or owner.username) if owner else "",
        owner_email=owner.email if owner else "",
        unsubscribe_url=unsubscribe_url(customer.pk, message_id),
    )


def _values(*, name, email, company, job_title, region, owner_name, owner_email, unsubscribe_url):
    first, _, last = (name or "").partition(" ")
    return {
        "first_name": first,
        "last_name": last,
        "full_name": name or "",
        "email": email or "",
        "company": company or "",
        "job_title": job_title or "",
        "region": REGION_LABELS.get(region, ""),
        "owner_name": owner_name,
        "owner_email": owner_email or "",
        "unsubscribe_url": unsubscribe_url,
    }


RECIPIENT_COLUMNS = [
    "id",
    "email",
    "customer_id",
    "customer__name",
    "customer__company",
    "customer__job_title",
    "customer__region",
    "customer__owner__first_name",
    "customer__owner__last_name",
    "customer__owner__username",
    "customer__owner__email",
]


def recipients_personalised(messages, plan: SubstitutionPlan) -> list[Recipient]:
    """Each message's recipient with its substitution values. Plain columns, not model
    objects: this runs 100,000 times for a large campaign."""
    rows = messages.order_by("id").values_list(*RECIPIENT_COLUMNS)
    make_unsubscribe_url = unsubscribe_url_maker()
    recipients = []
    for (
        message_id,
        email,
        customer_id,
        name,
        company,
        job_title,
        region,
        owner_first,
        owner_last,
        owner_username,
        owner_email,
    ) in rows:
        link = make_unsubscribe_url(customer_id, message_id) if customer_id else ""
        values = _values(
            name=name,
            email=email,
            company=company,
            job_title=job_title,
            region=region,
            owner_name=f"{owner_first} {owner_last}".strip() or owner_username or "",
            owner_email=owner_email,
            unsubscribe_url=link,
        )
        recipients.append(
            Recipient(message_id, email, name or "", plan.substitutions(values), link)
        )
    return recipients
