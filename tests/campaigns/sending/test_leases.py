"""campaigns.sending.leases: one sender per run."""

import pytest

from campaigns import sending
from campaigns.models import (
    EmailCampaign,
)
from campaigns.sending import leases

pytestmark = pytest.mark.django_db


def test_a_live_sender_keeps_the_run_to_itself(campaign, manager, audience, fake_sendgrid):
    campaign.status = EmailCampaign.Status.SENDING
    campaign.save()
    run = sending.run_start(campaign_id=campaign.pk, run_key="once")
    assert leases.lease_take(run.pk, "alive")
    assert sending.run_send(run_id=run.pk) == "busy or finished"
    assert fake_sendgrid.recipients() == []


def test_the_lease_outlasts_a_slow_provider_request(settings):
    settings.CAMPAIGN_SEND_LEASE_SECONDS = 5
    settings.SENDGRID_API_KEY = "SG.x"
    settings.SENDGRID_TIMEOUT_SECONDS = 10
    settings.MAILGUN_API_KEY = ""
    settings.MAILGUN_TIMEOUT_SECONDS = 60  # not configured: its timeout does not count
    assert sending.lease_seconds() == 30
    settings.MAILGUN_API_KEY, settings.MAILGUN_DOMAIN = "key-x", "mg.example.com"
    assert sending.lease_seconds() == 180
