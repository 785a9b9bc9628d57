"""campaigns.sending.counters: one recount from the messages, every few seconds while a
sender works and once more when it stops."""

import pytest
from django.utils import timezone

from campaigns import sending
from campaigns.models import EmailCampaign
from campaigns.sending import batches, counters

pytestmark = pytest.mark.django_db


@pytest.fixture
def started(campaign, audience, fake_sendgrid, settings):
    settings.CAMPAIGN_BATCH_SIZE = 2
    campaign.status = EmailCampaign.Status.SENDING
    campaign.save()
    return sending.run_start(campaign_id=campaign.pk, run_key="once")


def _sent_count(campaign) -> int:
    return EmailCampaign.objects.values_list("sent_count", flat=True).get(pk=campaign.pk)


def test_while_sending_the_counters_follow_the_batches(campaign, started, monkeypatch):
    monkeypatch.setattr(counters, "REFRESH_EVERY_SECONDS", 0)
    seen = []
    original = batches.batch_send

    def send(provider, run, batch, plan):
        seen.append(_sent_count(campaign))
        original(provider, run, batch, plan)

    monkeypatch.setattr(batches, "batch_send", send)
    assert sending.run_send(run_id=started.pk) == "sent"
    assert seen == [0, 2, 4] and _sent_count(campaign) == 5


def test_a_sender_that_stops_leaves_the_counters_exact(campaign, started, pause_after_a_batch):
    pause_after_a_batch(campaign)
    assert sending.run_send(run_id=started.pk) == "paused"
    assert _sent_count(campaign) == 2


def _killed_after_two_sent(campaign, started):
    """What a sender SIGKILLed between a batch and its next recount leaves behind: messages
    marked sent that the campaign's counter does not count yet."""
    from campaigns.models import EmailMessage

    sent = list(EmailMessage.objects.filter(run=started).order_by("pk")[:2])
    EmailMessage.objects.filter(pk__in=[m.pk for m in sent]).update(
        status=EmailMessage.Status.SENT, sent_at=timezone.now()
    )
    assert _sent_count(campaign) == 0


def test_pausing_recounts_what_a_killed_sender_left_uncounted(campaign, started, manager):
    from campaigns.services import campaign_pause

    _killed_after_two_sent(campaign, started)
    paused = campaign_pause(actor=manager, campaign=campaign)
    assert paused.sent_count == 2 and _sent_count(campaign) == 2


def test_the_next_sender_recounts_even_when_it_judged_no_batch(campaign, started):
    _killed_after_two_sent(campaign, started)
    EmailCampaign.objects.filter(pk=campaign.pk).update(status="paused")
    assert sending.run_send(run_id=started.pk) == "paused"  # stops at once, sends nothing
    assert _sent_count(campaign) == 2


def test_giving_up_recounts(campaign, started):
    from campaigns.sending.runs import run_give_up

    _killed_after_two_sent(campaign, started)
    run_give_up(run_id=started.pk, reason="SendGrid 503 five times")
    assert _sent_count(campaign) == 2
