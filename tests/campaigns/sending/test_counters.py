"""campaigns.sending.counters: one recount from the messages, every few seconds while a
sender works and once more when it stops."""

import pytest

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


def test_a_sender_that_stops_leaves_the_counters_exact(campaign, started, monkeypatch):
    original = batches.batch_send

    def send_then_pause(provider, run, batch, plan):
        original(provider, run, batch, plan)
        EmailCampaign.objects.filter(pk=campaign.pk).update(status="paused")

    monkeypatch.setattr(batches, "batch_send", send_then_pause)
    assert sending.run_send(run_id=started.pk) == "paused"
    assert _sent_count(campaign) == 2
