from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns import sending
from campaigns.models import CampaignRun, EmailCampaign
from campaigns.sending import batches, leases
from campaigns.services import campaign_send_now


@pytest.fixture
def pause_after_a_batch(monkeypatch):
    """Each batch, once sent, is followed by a manager pausing the campaign (arm it with the
    campaign); the sender should stop before the next one."""

    def arm(campaign):
        original = batches.batch_send

        def send_then_pause(provider, run, batch, plan):
            original(provider, run, batch, plan)
            EmailCampaign.objects.filter(pk=campaign.pk).update(status="paused")

        monkeypatch.setattr(batches, "batch_send", send_then_pause)

    return arm


@pytest.fixture
def send_now(manager, django_capture_on_commit_callbacks):
    """Send the campaign now as the manager, running the tasks it queues."""

    def send(campaign):
        with django_capture_on_commit_callbacks(execute=True):
            campaign_send_now(actor=manager, campaign=campaign)
        campaign.refresh_from_db()
        return campaign

    return send


@pytest.fixture
def claimed_batch():
    """A run with one batch claimed (in flight) by a sender that then died."""

    def claim(campaign):
        campaign.status = EmailCampaign.Status.SENDING
        campaign.save()
        run = sending.run_start(campaign_id=campaign.pk, run_key="once")
        assert leases.lease_take(run.pk, "dead-sender")
        batch = batches.batch_claim(run, "dead-sender")
        CampaignRun.objects.filter(pk=run.pk).update(
            lease_until=timezone.now() - timedelta(seconds=1)
        )
        return run, batch

    return claim
