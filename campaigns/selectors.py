"""Reads for campaigns, scoped by who is asking.

Managers run campaigns: a manager sees the campaigns they or a co-manager of one of their
teams created; an admin sees all; a rep sees, read-only, the campaigns that emailed one of
their customers, and within them only their customers' messages.
"""

from django.contrib.auth import get_user_model
from django.db.models import Count, Exists, OuterRef, Q, QuerySet
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
from crm.permissions import visible_customers
from crm.roles import Role, role_of


def _co_manager_ids(user) -> list[int]:
    User = get_user_model()
    return list(
        User.objects.filter(Q(pk=user.pk) | Q(managed_teams__managers=user))
        .distinct()
        .values_list("pk", flat=True)
    )


def _authored_in_scope(queryset: QuerySet, user) -> QuerySet:
    """Templates, segments and campaigns belong to their author's management circle: an
    admin sees all; a manager what they or a co-manager of one of their teams made."""
    role = role_of(user)
    if role == Role.ADMIN:
        return queryset
    if role == Role.MANAGER:
        return queryset.filter(created_by_id__in=_co_manager_ids(user))
    return queryset.none()


def campaigns_visible(*, user) -> QuerySet[EmailCampaign]:
    campaigns = EmailCampaign.objects.all()
    role = role_of(user)
    if role == Role.ADMIN:
        return campaigns
    if role == Role.MANAGER:
        return campaigns.filter(created_by_id__in=_co_manager_ids(user))
    mailed_mine = EmailMessage.objects.filter(
        campaign=OuterRef("pk"), customer__in=visible_customers(user).values("pk")
    )
    return campaigns.filter(Exists(mailed_mine))


def campaigns_editable(*, user) -> QuerySet[EmailCampaign]:
    if role_of(user) == Role.REP:
        return EmailCampaign.objects.none()
    return campaigns_visible(user=user)


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
    campaigns = campaigns_visible(user=user).select_related("segment", "template", "created_by")
    if status:
        campaigns = campaigns.filter(status=status)
    if q:
        campaigns = campaigns.filter(name__icontains=q)
    return campaigns.order_by(SORTS.get(sort, "-created_at"), "-id")


def campaign_recipients(*, user, campaign: EmailCampaign, status: str = "") -> QuerySet:
    """The campaign's messages to customers this user may see (a co-manager of the author
    may share only some of the author's teams)."""
    messages = campaign.messages.select_related("customer", "run").order_by("-run_id", "id")
    if role_of(user) != Role.ADMIN:
        messages = messages.filter(customer__in=visible_customers(user).values("pk"))
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


def campaign_runs(*, campaign: EmailCampaign) -> QuerySet[CampaignRun]:
    return campaign.runs.order_by("-started_at", "-id")[:20]


def customer_campaign_messages(*, customer, limit: int = 20) -> QuerySet[EmailMessage]:
    """What campaigns sent this customer (for its page; the caller checked access)."""
    return customer.email_messages.select_related("campaign").order_by("-queued_at")[:limit]


def templates_visible(*, user) -> QuerySet[EmailTemplate]:
    return _authored_in_scope(EmailTemplate.objects.all(), user)


def segments_visible(*, user) -> QuerySet[CustomerSegment]:
    return _authored_in_scope(CustomerSegment.objects.all(), user)


def templates_list(*, user) -> QuerySet[EmailTemplate]:
    return templates_visible(user=user).select_related("created_by").order_by("name")


def segments_list(*, user) -> QuerySet[CustomerSegment]:
    return segments_visible(user=user).select_related("created_by").order_by("name")


def preview_customers(*, user, limit: int = 200):
    """Whom a template can be previewed for: recently updated customers the user sees."""
    return visible_customers(user).order_by("-updated_at", "-pk")[:limit]


def preview_customer_first(*, user):
    return visible_customers(user).order_by("-updated_at", "-pk").first()


def outbox_list(*, user, q: str = "") -> QuerySet[OutboxMessage]:
    """The local outbox as this user may read it: an admin everything; a manager the emails
    to customers they see and to themselves."""
    messages = OutboxMessage.objects.order_by("-created_at", "-id")
    if role_of(user) != Role.ADMIN:
        messages = messages.filter(
            Q(to_email__in=visible_customers(user).values("email")) | Q(to_email=user.email or "-")
        )
    if q:
        messages = messages.filter(Q(to_email__icontains=q) | Q(subject__icontains=q))
    return messages
