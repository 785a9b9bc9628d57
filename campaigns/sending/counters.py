"""The campaign counters, one way: recounted from the EmailMessage rows in SQL."""

import time

from django.db.models import Count, Q

from campaigns.models import EmailCampaign, EmailMessage

# While a sender works, the counters are recounted at most this often (and when it stops):
# one aggregate over a 100,000-recipient campaign per batch would cost more than the sending.
REFRESH_EVERY_SECONDS = 5.0

COUNTER_FIELDS = [
    "total_recipients",
    "sent_count",
    "delivered_count",
    "opened_count",
    "clicked_count",
    "bounced_count",
    "unsubscribed_count",
    "failed_count",
]


def campaign_counters_refresh(*, campaign_ids: list[int]) -> None:
    """The counters from the messages themselves, one aggregate per campaign: exact however
    often events are replayed."""

    def counted(field):
        return Count("id", filter=Q(**{f"{field}__isnull": False}))

    for campaign_id in campaign_ids:
        totals = EmailMessage.objects.filter(campaign_id=campaign_id).aggregate(
            total_recipients=Count("id"),
            sent_count=counted("sent_at"),
            delivered_count=counted("delivered_at"),
            opened_count=counted("opened_at"),
            clicked_count=counted("clicked_at"),
            bounced_count=counted("bounced_at"),
            unsubscribed_count=counted("unsubscribed_at"),
            failed_count=Count("id", filter=Q(status=EmailMessage.Status.FAILED)),
        )
        EmailCampaign.objects.filter(pk=campaign_id).update(**totals)


class CountersWhileSending:
    """A sender's batches change the counters; this refreshes them every few seconds and
    once more when the sender stops (`flush`)."""

    def __init__(self, campaign_id: int):
        self.campaign_id = campaign_id
        self.changed = False
        self.refreshed_at = time.monotonic()

    def changed_by_a_batch(self) -> None:
        self.changed = True
        if time.monotonic() - self.refreshed_at >= REFRESH_EVERY_SECONDS:
            self.flush()

    def refreshed(self) -> None:
        """Someone else just refreshed them (the run finished)."""
        self.changed = False
        self.refreshed_at = time.monotonic()

    def flush(self) -> None:
        if self.changed:
            campaign_counters_refresh(campaign_ids=[self.campaign_id])
            self.refreshed()
