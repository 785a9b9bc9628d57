"""campaigns.sending.batches: claiming, sending, marking, and judging in-flight batches."""

import pytest
from django.utils import timezone

from campaigns import sending
from campaigns.models import (
    CampaignRun,
    EmailCampaign,
    EmailMessage,
    SendBatch,
)
from campaigns.sending import batches, leases
from campaigns.sending.counters import campaign_counters_refresh
from campaigns.sending.provider import ProviderCannotTell
from campaigns.sending.sendgrid import SendGrid
from campaigns.templating import SubstitutionPlan
from customers.models import Suppression

pytestmark = pytest.mark.django_db


def test_batches_of_the_configured_size(send_now, campaign, audience, fake_sendgrid, settings):
    settings.CAMPAIGN_BATCH_SIZE = 2
    send_now(campaign)
    assert [len(r.payload["personalizations"]) for r in fake_sendgrid.accepted] == [2, 2, 1]
    assert SendBatch.objects.filter(status="sent").count() == 3


def test_a_4xx_fails_its_batch_with_the_reason_and_the_rest_still_go(
    send_now, campaign, audience, fake_sendgrid, settings
):
    settings.CAMPAIGN_BATCH_SIZE = 2
    fake_sendgrid.fail_next(400, body={"errors": [{"message": "Invalid from address"}]})
    campaign = send_now(campaign)
    failed = SendBatch.objects.get(status="failed")
    assert "Invalid from address" in failed.error
    assert len(fake_sendgrid.recipients()) == 3
    assert campaign.failed_count == 2 and campaign.sent_count == 3
    assert "Invalid from address" in CampaignRun.objects.get().last_error


def test_a_batch_in_flight_when_its_worker_died_and_accepted_is_not_sent_again(
    claimed_batch, campaign, manager, audience, fake_sendgrid, settings
):
    settings.CAMPAIGN_BATCH_SIZE = 2
    run, batch = claimed_batch(campaign)
    plan = SubstitutionPlan(subject="s", html="h", text="t")
    # The provider got it; then the crash.
    SendGrid().send_batch(batches.batch_outgoing(run, batch, plan))
    assert sending.run_send(run_id=run.pk) == "sent"
    recipients = fake_sendgrid.recipients()
    assert sorted(recipients) == sorted(c.email for c in audience["mine"])
    assert len(recipients) == 5


def test_a_batch_in_flight_that_never_arrived_is_sent_on_resume(
    claimed_batch, campaign, manager, audience, fake_sendgrid, settings
):
    settings.CAMPAIGN_BATCH_SIZE = 2
    settings.CAMPAIGN_INFLIGHT_SETTLE_SECONDS = 0
    run, batch = claimed_batch(campaign)
    assert sending.run_send(run_id=run.pk) == "sent"
    assert sorted(fake_sendgrid.recipients()) == sorted(c.email for c in audience["mine"])
    assert SendBatch.objects.get(pk=batch.pk).status == "requeued"


def test_a_recent_unconfirmed_batch_waits_and_its_recipients_are_not_claimed_again(
    claimed_batch, campaign, manager, audience, fake_sendgrid, settings
):
    settings.CAMPAIGN_BATCH_SIZE = 2
    run, batch = claimed_batch(campaign)  # the activity feed does not show it yet
    assert sending.run_send(run_id=run.pk) == "waiting for the provider"
    in_flight = {"ann@a.example", "bob@b.example"}
    assert in_flight.isdisjoint(fake_sendgrid.recipients()) and len(fake_sendgrid.recipients()) == 3
    assert CampaignRun.objects.get().status == "sending"
    settings.CAMPAIGN_INFLIGHT_SETTLE_SECONDS = 0  # later: the feed still does not show it
    CampaignRun.objects.filter(pk=run.pk).update(lease_until=None)
    assert sending.run_send(run_id=run.pk) == "sent"
    assert sorted(fake_sendgrid.recipients()) == sorted(c.email for c in audience["mine"])


def test_when_the_provider_cannot_tell_the_batch_counts_as_sent(
    claimed_batch, campaign, manager, audience, fake_sendgrid, settings, monkeypatch
):
    def cannot_tell(self, key):
        raise ProviderCannotTell("no activity feed")

    monkeypatch.setattr(SendGrid, "was_accepted", cannot_tell)
    settings.CAMPAIGN_BATCH_SIZE = 2
    settings.CAMPAIGN_INFLIGHT_SETTLE_SECONDS = 0
    run, batch = claimed_batch(campaign)
    assert sending.run_send(run_id=run.pk) == "sent"
    assert len(fake_sendgrid.recipients()) == 3  # nobody twice, at the risk of two unsent
    assert "could not say" in SendBatch.objects.get(pk=batch.pk).error


def test_an_event_processed_before_the_batch_is_marked_sent_keeps_its_status(
    campaign, manager, audience, fake_sendgrid
):
    campaign.status = EmailCampaign.Status.SENDING
    campaign.save()
    run = sending.run_start(campaign_id=campaign.pk, run_key="once")
    leases.lease_take(run.pk, "me")
    batch = batches.batch_claim(run, "me")
    EmailMessage.objects.filter(run=run, email="ann@a.example").update(
        delivered_at=timezone.now(), status="delivered"
    )
    batches.batch_mark_sent(batch, message_id="m1")
    ann = EmailMessage.objects.get(email="ann@a.example")
    assert ann.status == "delivered" and ann.sent_at is not None
    campaign_counters_refresh(campaign_ids=[campaign.pk])  # what the sender does as it goes
    assert EmailCampaign.objects.get(pk=campaign.pk).sent_count == 5


def test_someone_who_unsubscribes_mid_run_is_not_sent_to(
    campaign, manager, audience, fake_sendgrid, settings
):
    campaign.status = EmailCampaign.Status.SENDING
    campaign.save()
    run = sending.run_start(campaign_id=campaign.pk, run_key="once")
    ann, bob = audience["mine"][:2]
    type(ann).objects.filter(pk=ann.pk).update(unsubscribed_at=timezone.now())
    Suppression.objects.create(email="bob@b.example", reason="bounce")
    assert sending.run_send(run_id=run.pk) == "sent"
    assert sorted(fake_sendgrid.recipients()) == ["cy@c.example", "di@d.example", "ed@e.example"]
    assert EmailMessage.objects.filter(status="cancelled").count() == 2
    assert EmailMessage.objects.get(email="bob@b.example").error == (
        "Not sent: bounced (found just before its batch went)."
    )
    assert run.__class__.objects.get(pk=run.pk).skipped == {"unsubscribed": 1, "bounced": 1}


def test_consent_withdrawn_or_an_address_dropped_mid_run_is_cancelled_with_its_reason(
    campaign, manager, audience, fake_sendgrid
):
    campaign.status = EmailCampaign.Status.SENDING
    campaign.save()
    run = sending.run_start(campaign_id=campaign.pk, run_key="once")
    ann, bob, cy = audience["mine"][:3]
    type(ann).objects.filter(pk=ann.pk).update(email_consent="withdrawn")
    type(bob).objects.filter(pk=bob.pk).update(email_consent="unknown")
    Suppression.objects.create(email="cy@c.example", reason="dropped")
    assert sending.run_send(run_id=run.pk) == "sent"
    assert sorted(fake_sendgrid.recipients()) == ["di@d.example", "ed@e.example"]
    errors = dict(EmailMessage.objects.filter(status="cancelled").values_list("email", "error"))
    assert errors == {
        "ann@a.example": "Not sent: consent withdrawn (found just before its batch went).",
        "bob@b.example": "Not sent: no consent (found just before its batch went).",
        "cy@c.example": "Not sent: dropped by the provider (found just before its batch went).",
    }
    run.refresh_from_db()
    assert run.skipped == {"withdrawn": 1, "no_consent": 1, "dropped": 1}
