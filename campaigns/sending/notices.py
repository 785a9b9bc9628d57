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


class CampaignProgress:
    """A sender's live progress hints, one after each batch: who may see the campaign (its
    author and their co-managers) is read once a sender, and the status is the one the
    sender has just read between batches, instead of two queries a batch. A manager who
    joins or leaves the author's teams mid-send is heard by the next sender (a hint names
    only the campaign and its status; its page checks access when it fetches)."""

    def __init__(self, *, campaign_id: int, author_id: int | None):
        self.campaign_id = campaign_id
        self.author_id = author_id
        self._audience: list[int] | None = None

    def push(self, *, status: str) -> None:
        if self._audience is None:
            self._audience = campaign_audience(self.author_id)
        progress_push(
            subject="campaign", subject_id=self.campaign_id, status=status, user_ids=self._audience
        )
