"""What a campaign's author is told (crm.notifications, crm.reactions CAMPAIGN_ENDED): its
send finished, paused after the provider kept refusing, or a batch failed; and the live
progress its open pages follow."""

from django.urls import reverse

from campaigns.models import EmailCampaign
from crm.models import Notification
from crm.notifications import Notice
from crm.permissions.realtime import campaign_audience
from crm.reactions import Event, react
from crm.realtime import progress_push


def campaign_author_notify(*, campaign_id: int, what: str) -> None:
    """`what` completes "Your campaign “name” ..."."""
    campaign = EmailCampaign.objects.filter(pk=campaign_id).only("name", "created_by_id").first()
    if campaign is None or campaign.created_by_id is None:
        return
    notice = Notice(
        kind=Notification.Kind.CAMPAIGN_ENDED,
        recipient_ids=[campaign.created_by_id],
        text=f"Your campaign “{campaign.name}” {what}",
        link=reverse("campaigns:campaign_detail", args=[campaign.pk]),
        obj=campaign,
    )
    react(Event.CAMPAIGN_ENDED, notices=[notice])


def campaign_progress_push(*, campaign_id: int) -> None:
    """The campaign's open pages look at its progress again (after commit)."""
    row = EmailCampaign.objects.filter(pk=campaign_id).values("status", "created_by_id").first()
    if row:
        progress_push(
            subject="campaign",
            subject_id=campaign_id,
            status=row["status"],
            user_ids=campaign_audience(row["created_by_id"]),
        )
