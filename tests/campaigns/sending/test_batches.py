"""campaigns.sending.batches: claiming, sending, marking, and judging in-flight batches."""

from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.test import Client
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
from campaigns.sending.provider import ProviderCannotTell, TransientSendError
from campaigns.sending.sendgrid import SendGrid
from campaigns.templating import SubstitutionPlan
from campaigns.tokens import unsubscribe_url
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


# Claiming from where the last batch ended --------------------------------------------------
# A sender claims each batch after the last message of its previous one (the claim reads no
# message sent before it) and sweeps the run from its first message before calling it done.


def _run_of(campaign):
    """The campaign's run, started, and its messages in id order (claims go in id order)."""
    campaign.status = EmailCampaign.Status.SENDING
    campaign.save()
    run = sending.run_start(campaign_id=campaign.pk, run_key="once")
    return run, list(EmailMessage.objects.filter(run=run).order_by("id"))


def _exactly_once(fake_sendgrid, messages):
    recipients = fake_sendgrid.recipients()
    assert sorted(recipients) == sorted(m.email for m in messages)
    assert len(recipients) == len(set(recipients))


def test_a_batch_requeued_after_a_failed_request_mid_run_is_sent_once_by_the_retry(
    campaign, manager, audience, fake_sendgrid, settings, monkeypatch
):
    settings.CAMPAIGN_BATCH_SIZE = 2
    run, messages = _run_of(campaign)
    original = batches.batch_send

    def refused_after_the_first(provider, run, batch, plan):
        if fake_sendgrid.requests_seen == 1:
            fake_sendgrid.fail_next(503)
        original(provider, run, batch, plan)

    monkeypatch.setattr(batches, "batch_send", refused_after_the_first)
    with pytest.raises(TransientSendError, match="503"):
        sending.run_send(run_id=run.pk, sender="task-1")
    monkeypatch.undo()
    requeued = SendBatch.objects.get(status="requeued")
    assert (requeued.first_message_id, requeued.last_message_id) == (messages[2].pk, messages[3].pk)
    assert sending.run_send(run_id=run.pk, sender="task-1") == "sent"  # the task's retry
    _exactly_once(fake_sendgrid, messages)
    assert fake_sendgrid.requests_seen == 4  # 2 + the refused one + the 2 of the retry
    campaign.refresh_from_db()
    assert (campaign.status, campaign.total_recipients, campaign.sent_count) == ("sent", 5, 5)


@pytest.mark.parametrize("accepted", [True, False], ids=["accepted", "not accepted"])
def test_a_dead_senders_batch_in_flight_is_never_inside_another_batch(
    accepted, campaign, manager, audience, fake_sendgrid, settings, monkeypatch
):
    """The dead sender's first batch timed out and was judged unsent (requeued); its second
    one is still in flight when a new sender takes over: the provider may have it without
    its activity feed showing it yet. Claimed from the run's start, the first batch's
    message and the last one are queued on either side of it: the new batch must stop
    before it, or its recipients would go a second time."""
    settings.CAMPAIGN_BATCH_SIZE = 2
    settings.CAMPAIGN_INFLIGHT_SETTLE_SECONDS = 300
    run, messages = _run_of(campaign)
    first, rest = messages[0], messages[1:]
    type(first.customer).objects.filter(pk=first.customer_id).update(unsubscribed_at=timezone.now())
    assert leases.lease_take(run.pk, "dead-sender")
    timed_out = batches.batch_claim(run, "dead-sender")  # the unsubscriber is cancelled
    assert (timed_out.first_message_id, timed_out.last_message_id) == (rest[0].pk, rest[0].pk)
    SendBatch.objects.filter(pk=timed_out.pk).update(
        started_at=timezone.now() - timedelta(minutes=10)
    )
    in_flight = batches.batch_claim(run, "dead-sender", skip=[timed_out])
    assert (in_flight.first_message_id, in_flight.last_message_id) == (rest[1].pk, rest[2].pk)
    if accepted:
        plan = SubstitutionPlan(subject="s", html="h", text="t")
        SendGrid().send_batch(batches.batch_outgoing(run, in_flight, plan))
    CampaignRun.objects.filter(pk=run.pk).update(lease_until=timezone.now() - timedelta(seconds=1))
    shown = {timed_out.key}  # the activity feed does not show the recent request yet
    was_accepted = SendGrid.was_accepted
    monkeypatch.setattr(
        SendGrid,
        "was_accepted",
        lambda self, batch: batch.key in shown and was_accepted(self, batch),
    )
    sent_before = len(fake_sendgrid.recipients())

    assert sending.run_send(run_id=run.pk) == "waiting for the provider"
    assert sorted(fake_sendgrid.recipients()[sent_before:]) == sorted(
        [rest[0].email, rest[3].email]
    )
    assert all(len(request.payload["personalizations"]) <= 2 for request in fake_sendgrid.accepted)
    assert SendBatch.objects.get(pk=timed_out.pk).status == "requeued"
    assert set(
        EmailMessage.objects.filter(pk__in=[rest[1].pk, rest[2].pk]).values_list(
            "status", flat=True
        )
    ) == {"queued"}

    shown.add(in_flight.key)  # later: the feed has caught up
    settings.CAMPAIGN_INFLIGHT_SETTLE_SECONDS = 0
    CampaignRun.objects.filter(pk=run.pk).update(lease_until=None)
    assert sending.run_send(run_id=run.pk) == "sent"
    _exactly_once(fake_sendgrid, rest)
    assert SendBatch.objects.get(pk=in_flight.pk).status == ("sent" if accepted else "requeued")
    statuses = dict(EmailMessage.objects.filter(run=run).values_list("pk", "status"))
    assert statuses == {first.pk: "cancelled", **{m.pk: "sent" for m in rest}}
    campaign.refresh_from_db()
    assert (campaign.status, campaign.total_recipients, campaign.sent_count) == ("sent", 5, 4)
    assert CampaignRun.objects.get(pk=run.pk).skipped == {"unsubscribed": 1}


def test_someone_who_unsubscribes_after_the_first_batch_is_not_sent_to(
    campaign, manager, audience, fake_sendgrid, settings, monkeypatch
):
    settings.CAMPAIGN_BATCH_SIZE = 2
    run, messages = _run_of(campaign)
    leaving = messages[3]
    original = batches.batch_send

    def unsubscribe_after_the_first(provider, run, batch, plan):
        original(provider, run, batch, plan)
        if fake_sendgrid.requests_seen == 1:
            # The one-click link of an earlier email, mid-run.
            Client().post(urlsplit(unsubscribe_url(leaving.customer_id)).path)

    monkeypatch.setattr(batches, "batch_send", unsubscribe_after_the_first)
    assert sending.run_send(run_id=run.pk) == "sent"
    _exactly_once(fake_sendgrid, [m for m in messages if m.pk != leaving.pk])
    leaving.refresh_from_db()
    assert leaving.status == "cancelled"
    assert leaving.error == "Not sent: unsubscribed (found just before its batch went)."
    assert CampaignRun.objects.get(pk=run.pk).skipped == {"unsubscribed": 1}
    campaign.refresh_from_db()
    assert (campaign.total_recipients, campaign.sent_count) == (5, 4)


def test_a_message_queued_again_behind_the_sender_is_sent_before_the_run_is_done(
    campaign, manager, audience, fake_sendgrid, settings, monkeypatch
):
    """Each claim starts after the sender's last batch; whatever queues a message again
    behind it (nothing does today) still gets it sent: a run is done only when a claim from
    its first message finds nothing."""
    settings.CAMPAIGN_BATCH_SIZE = 2
    run, messages = _run_of(campaign)
    original = batches.batch_send

    def queue_the_first_again(provider, run, batch, plan):
        original(provider, run, batch, plan)
        if fake_sendgrid.requests_seen == 2:
            EmailMessage.objects.filter(pk=messages[0].pk).update(status="queued", sent_at=None)

    monkeypatch.setattr(batches, "batch_send", queue_the_first_again)
    assert sending.run_send(run_id=run.pk) == "sent"
    assert sorted(fake_sendgrid.recipients()) == sorted(
        [m.email for m in messages] + [messages[0].email]
    )
    assert set(EmailMessage.objects.filter(run=run).values_list("status", flat=True)) == {"sent"}


def test_claims_read_from_the_last_batch_on_not_from_the_runs_first_message(
    campaign, manager, audience, fake_sendgrid, settings
):
    settings.CAMPAIGN_BATCH_SIZE = 2
    run, messages = _run_of(campaign)
    assert leases.lease_take(run.pk, "me")
    batch = batches.batch_claim(run, "me", after=messages[1].pk)
    assert (batch.first_message_id, batch.last_message_id) == (messages[2].pk, messages[3].pk)
    assert batches.batch_claim(run, "me", after=messages[4].pk) is None
