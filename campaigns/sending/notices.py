"""What a campaign's author is told (crm.notifications, crm.reactions CAMPAIGN_ENDED): its
send finished, paused after the provider kept refusing, or a batch failed; and the live
progress its open pages follow."""

from time import monotonic

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


# While a sender sends, its hints go at most this often (a change of status at once): each
# makes every open page of the campaign count the run's messages again, and the pages poll
# every 2 s anyway. One a batch was ten a second, 0.38 s of a 105,000-recipient send.
HINT_EVERY_SECONDS = 1.0


class CampaignProgress:
    """A sender's live progress hints: after a batch, at most one a second, and at once when
    the status changed (paused, cancelled). Who may see the campaign (its author and their
    co-managers) is read once a sender, and the status is the one the sender has just read
    between batches, instead of two queries a batch. A manager who joins or leaves the
    author's teams mid-send is heard by the next sender (a hint names only the campaign and
    its status; its page checks access when it fetches)."""

    def __init__(self, *, campaign_id: int, author_id: int | None):
        self.campaign_id = campaign_id
        self.author_id = author_id
        self._audience: list[int] | None = None
        self._last: tuple[str, float] | None = None  # the status hinted, and when

    def push(self, *, status: str) -> None:
        now = monotonic()
        if self._last and self._last[0] == status and now - self._last[1] < HINT_EVERY_SECONDS:
            return
        if self._audience is None:
            self._audience = campaign_audience(self.author_id)
        progress_push(
            subject="campaign", subject_id=self.campaign_id, status=status, user_ids=self._audience
        )
        self._last = (status, now)
