"""Reads for campaigns, scoped by who is asking through crm.permissions.campaigns."""

from dataclasses import dataclass

from django.db.models import Count, Q, QuerySet
from django.db.models.functions import TruncDate

from campaigns.models import (
    CampaignRun,
    CustomerSegment,
    EmailCampaign,
    EmailMessage,
    EmailTemplate,
    OutboxMessage,
    SendBatch,
)
from campaigns.segments import criteria_summary, segment_customers
from crm.permissions.campaigns import (
    visible_campaign_messages,
    visible_campaigns,
    visible_outbox_messages,
    visible_segments,
    visible_templates,
)
from crm.permissions.customers import visible_customers
from customers.email_gate import EmailKind, Refusal, refusals_summary, with_email_refusal

SORTS = {
    "name": "name",
    "-name": "-name",
    "created": "created_at",
    "-created": "-created_at",
    "sent": "sent_count",
    "-sent": "-sent_count",
    "status": "status",
}


def campaign_list(*, user, status: str = "", q: str = "", sort: str = "-created"):
    campaigns = visible_campaigns(user).select_related("segment", "template", "created_by")
    if status:
        campaigns = campaigns.filter(status=status)
    if q:
        campaigns = campaigns.filter(name__icontains=q)
    return campaigns.order_by(SORTS.get(sort, "-created_at"), "-id")


def campaign_recipients(*, user, campaign: EmailCampaign, status: str = "") -> QuerySet:
    """The campaign's messages to customers this user may see (a co-manager of the author
    may share only some of the author's teams)."""
    messages = campaign.messages.select_related("customer", "run").order_by("-run_id", "id")
    messages = visible_campaign_messages(user, messages)
    if status:
        messages = messages.filter(status=status)
    return messages


def campaign_funnel(*, campaign: EmailCampaign) -> list[dict]:
    steps = [
        ("Sent", campaign.sent_count),
        ("Delivered", campaign.delivered_count),
        ("Opened", campaign.opened_count),
        ("Clicked", campaign.clicked_count),
        ("Bounced", campaign.bounced_count),
        ("Unsubscribed", campaign.unsubscribed_count),
    ]
    return [
        {"label": label, "count": count, "rate": campaign.rate(count)} for label, count in steps
    ]


def campaign_timeline(*, campaign: EmailCampaign) -> dict:
    """Opens, clicks and deliveries per day, one GROUP BY per kind."""
    days: dict[str, dict[str, int]] = {}
    for field, label in (
        ("delivered_at", "delivered"),
        ("opened_at", "opened"),
        ("clicked_at", "clicked"),
    ):
        rows = (
            EmailMessage.objects.filter(campaign=campaign, **{f"{field}__isnull": False})
            .annotate(day=TruncDate(field))
            .values("day")
            .annotate(n=Count("id"))
            .order_by("day")
        )
        for row in rows:
            days.setdefault(row["day"].isoformat(), {})[label] = row["n"]
    labels = sorted(days)
    return {
        "labels": labels,
        "series": {
            kind: [days[day].get(kind, 0) for day in labels]
            for kind in ("delivered", "opened", "clicked")
        },
    }


def campaign_progress(*, campaign: EmailCampaign) -> dict:
    """Sent of total for the latest run, from one aggregate."""
    run = campaign.runs.order_by("-started_at", "-id").first()
    if run is None:
        return {"run": None, "total": 0, "done": 0, "percent": 0}
    counts = EmailMessage.objects.filter(run=run).aggregate(
        done=Count("id", filter=~Q(status__in=["queued", "sending"])),
        sent=Count("id", filter=Q(sent_at__isnull=False)),
    )
    total = run.total
    return {
        "run": run,
        "total": total,
        "done": counts["done"],
        "sent": counts["sent"],
        "percent": round(100 * counts["done"] / total) if total else 100,
    }


def campaign_failed_batches(*, campaign: EmailCampaign) -> QuerySet[SendBatch]:
    return SendBatch.objects.filter(
        run__campaign=campaign, status__in=[SendBatch.Status.FAILED, SendBatch.Status.REQUEUED]
    ).order_by("-id")[:20]


def campaign_skipped(*, campaign: EmailCampaign) -> dict:
    """Whom the email gate refused over the campaign's runs: the total, the groups a sender
    reads at a glance ("280 no consent, 30 suppressed, 2 invalid") and each exact reason.
    The runs' counts are merged in Python: a campaign has a run per firing, not per
    recipient."""
    counts: dict[str, int] = {}
    for skipped in campaign.runs.values_list("skipped", flat=True):
        for reason, count in (skipped or {}).items():
            counts[reason] = counts.get(reason, 0) + count
    total, groups = refusals_summary(counts)
    labels = dict(Refusal.choices)
    reasons = sorted(
        ((labels.get(reason, reason), count) for reason, count in counts.items() if count),
        key=lambda item: (-item[1], item[0]),
    )
    return {"total": total, "groups": groups, "reasons": reasons}


def campaign_runs(*, campaign: EmailCampaign) -> QuerySet[CampaignRun]:
    return campaign.runs.order_by("-started_at", "-id")[:20]


def customer_campaign_messages(*, customer, limit: int = 20) -> QuerySet[EmailMessage]:
    """What campaigns sent this customer (for its page; the caller checked access)."""
    return customer.email_messages.select_related("campaign__sequence_step__sequence").order_by(
        "-queued_at"
    )[:limit]


def templates_list(*, user) -> QuerySet[EmailTemplate]:
    return visible_templates(user).select_related("created_by").order_by("name")


def segments_list(*, user) -> QuerySet[CustomerSegment]:
    return visible_segments(user).select_related("created_by").order_by("name")


def preview_customers(*, user, limit: int = 200):
    """Whom a template can be previewed for: recently updated customers the user sees."""
    return visible_customers(user).order_by("-updated_at", "-pk")[:limit]


def preview_customer_first(*, user):
    return visible_customers(user).order_by("-updated_at", "-pk").first()


def outbox_list(*, user, q: str = "") -> QuerySet[OutboxMessage]:
    """The local outbox as this user may read it: an admin everything; a manager the emails
    to customers they see and to themselves."""
    messages = visible_outbox_messages(user, OutboxMessage.objects.order_by("-created_at", "-id"))
    if q:
        messages = messages.filter(Q(to_email__icontains=q) | Q(subject__icontains=q))
    return messages


@dataclass(frozen=True)
class SegmentReach:
    """A segment's members, and how many of them the email gate lets marketing reach."""

    count: int
    reachable: int
    refused: tuple[int, list[tuple[str, int]]]  # customers.email_gate.refusals_summary


def segment_reach(*, user, criteria: dict) -> SegmentReach:
    """One grouped query: the members by the gate's refusal (None: reachable)."""
    counts = dict(
        with_email_refusal(segment_customers(user=user, criteria=criteria), EmailKind.MARKETING)
        .order_by()
        .values("email_refusal")
        .annotate(n=Count("pk"))
        .values_list("email_refusal", "n")
    )
    reachable = counts.pop(None, 0)
    return SegmentReach(
        count=reachable + sum(counts.values()),
        reachable=reachable,
        refused=refusals_summary(counts),
    )


def segment_summaries(segments) -> dict[int, list[str]]:
    """{segment id: its criteria in words} for a page of segments: two queries for the
    names of the tags and owners they name, whatever the page's size."""
    from django.contrib.auth import get_user_model

    from customers.models import Tag

    tag_ids = {i for s in segments for i in s.criteria.get("tags", []) if isinstance(i, int)}
    owner_ids = {i for s in segments for i in s.criteria.get("owner", []) if isinstance(i, int)}
    users = get_user_model().objects.filter(pk__in=owner_ids)
    names = {
        "tags": dict(Tag.objects.filter(pk__in=tag_ids).values_list("pk", "name")),
        "owner": {u.pk: u.get_full_name() or u.username for u in users},
    }
    return {s.pk: criteria_summary(s.criteria, names=names) for s in segments}
