from datetime import timedelta

import pytest
from celery.exceptions import Retry
from django.utils import timezone

from campaigns import sending
from campaigns.models import (
    CampaignRun,
    EmailCampaign,
    EmailMessage,
    OutboxMessage,
    SendBatch,
    Suppression,
)
from campaigns.sending import batches, leases
from campaigns.sending.counters import campaign_counters_refresh
from campaigns.sending.provider import ProviderCannotTell, TransientSendError
from campaigns.sending.sendgrid import SendGrid
from campaigns.services import campaign_cancel, campaign_pause, campaign_resume, campaign_send_now
from campaigns.templating import SubstitutionPlan

pytestmark = pytest.mark.django_db


def _send(campaign, actor, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        campaign_send_now(actor=actor, campaign=campaign)
    campaign.refresh_from_db()
    return campaign


def test_send_now_through_sendgrid_reaches_each_visible_recipient_once(
    campaign, manager, audience, fake_sendgrid, django_capture_on_commit_callbacks
):
    campaign = _send(campaign, manager, django_capture_on_commit_callbacks)
    assert sorted(fake_sendgrid.recipients()) == sorted(c.email for c in audience["mine"])
    assert campaign.status == EmailCampaign.Status.SENT
    assert (campaign.total_recipients, campaign.sent_count) == (5, 5)
    messages = EmailMessage.objects.filter(campaign=campaign)
    assert set(messages.values_list("status", flat=True)) == {"sent"}
    (request,) = fake_sendgrid.accepted
    assert all(m.provider_message_id == request.message_id for m in messages)


def test_the_payload_carries_substitutions_custom_args_and_unsubscribe_headers(
    campaign, manager, audience, fake_sendgrid, django_capture_on_commit_callbacks
):
    _send(campaign, manager, django_capture_on_commit_callbacks)
    payload = fake_sendgrid.accepted[0].payload
    by_email = {p["to"][0]["email"]: p for p in payload["personalizations"]}
    bob = by_email["bob@b.example"]
    message = EmailMessage.objects.get(email="bob@b.example")
    assert bob["custom_args"] == {"email_message_id": str(message.pk)}
    assert bob["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert bob["headers"]["List-Unsubscribe"].startswith("<http://")
    html = payload["content"][1]["value"]
    for key, value in bob["substitutions"].items():
        html = html.replace(key, value)
    # Values are escaped in HTML; the template's own markup is not.
    assert html == "<p>Hi Bob,</p><p>B &amp; Co</p>"
    assert payload["custom_args"]["batch_key"].startswith("batch-")


def test_suppressed_unsubscribed_and_invalid_addresses_are_dropped(
    campaign, manager, audience, fake_sendgrid, django_capture_on_commit_callbacks
):
    ann, bob, cy, di, _ed = audience["mine"]
    Suppression.objects.create(email="ann@a.example", reason="bounce")
    bob.unsubscribed_at = timezone.now()
    bob.save()
    type(cy).objects.filter(pk=cy.pk).update(email="not-an-address")
    type(di).objects.filter(pk=di.pk).update(email="DI@D.example")
    Suppression.objects.create(email="di@d.example", reason="spam")  # case-insensitive
    _send(campaign, manager, django_capture_on_commit_callbacks)
    assert fake_sendgrid.recipients() == ["ed@e.example"]


def test_batches_of_the_configured_size(
    campaign, manager, audience, fake_sendgrid, settings, django_capture_on_commit_callbacks
):
    settings.CAMPAIGN_BATCH_SIZE = 2
    _send(campaign, manager, django_capture_on_commit_callbacks)
    assert [len(r.payload["personalizations"]) for r in fake_sendgrid.accepted] == [2, 2, 1]
    assert SendBatch.objects.filter(status="sent").count() == 3


def test_429_and_500_requeue_the_batch_and_a_retry_sends_nobody_twice(
    campaign, manager, audience, fake_sendgrid, settings
):
    settings.CAMPAIGN_BATCH_SIZE = 2
    campaign.status = EmailCampaign.Status.SENDING
    campaign.save()
    run = sending.run_start(campaign_id=campaign.pk, run_key="once")
    fake_sendgrid.fail_next(429)
    with pytest.raises(TransientSendError, match="429"):
        sending.run_send(run_id=run.pk, sender="task-1")  # the task retries with backoff
    # During the backoff the run stays leased: no other sender (e.g. a resume) starts.
    assert sending.run_send(run_id=run.pk) == "busy or finished"
    assert sending.stalled_runs() == []
    fake_sendgrid.fail_next(500)
    with pytest.raises(TransientSendError, match="500"):
        sending.run_send(run_id=run.pk, sender="task-1")
    assert sending.run_send(run_id=run.pk, sender="task-1") == "sent"
    recipients = fake_sendgrid.recipients()
    assert sorted(recipients) == sorted(c.email for c in audience["mine"])
    assert len(recipients) == len(set(recipients))
    assert fake_sendgrid.requests_seen == 5
    assert SendBatch.objects.filter(status="requeued").count() == 2


def test_the_send_task_retries_with_exponential_backoff(
    campaign, manager, audience, fake_sendgrid, settings
):
    from campaigns.tasks import send_run

    settings.CAMPAIGN_RETRY_BASE_SECONDS = 3
    campaign.status = EmailCampaign.Status.SENDING
    campaign.save()
    run = sending.run_start(campaign_id=campaign.pk, run_key="once")
    fake_sendgrid.fail_next(429)
    countdowns = []
    original = send_run.retry
    send_run.retry = lambda **kw: countdowns.append(kw["countdown"]) or original(**kw)
    try:
        with pytest.raises(Retry):  # eagerly, the retry is raised to the caller
            send_run.apply(args=[run.pk], retries=2)
    finally:
        send_run.retry = original
    assert countdowns == [12]  # 3 s x 2**2


def test_a_4xx_fails_its_batch_with_the_reason_and_the_rest_still_go(
    campaign, manager, audience, fake_sendgrid, settings, django_capture_on_commit_callbacks
):
    settings.CAMPAIGN_BATCH_SIZE = 2
    fake_sendgrid.fail_next(400, body={"errors": [{"message": "Invalid from address"}]})
    campaign = _send(campaign, manager, django_capture_on_commit_callbacks)
    failed = SendBatch.objects.get(status="failed")
    assert "Invalid from address" in failed.error
    assert len(fake_sendgrid.recipients()) == 3
    assert campaign.failed_count == 2 and campaign.sent_count == 3
    assert "Invalid from address" in CampaignRun.objects.get().last_error


def test_without_an_api_key_the_outbox_gets_the_rendered_emails(
    campaign, manager, audience, settings, django_capture_on_commit_callbacks
):
    settings.SENDGRID_API_KEY = ""
    _send(campaign, manager, django_capture_on_commit_callbacks)
    bob = OutboxMessage.objects.get(to_email="bob@b.example")
    assert bob.subject == "News for B & Co"
    assert "<p>B &amp; Co</p>" in bob.html_body
    assert "/u/" in bob.text_body and bob.headers["List-Unsubscribe-Post"]
    assert OutboxMessage.objects.count() == 5


def _claimed_batch(campaign, manager):
    """A run with one batch claimed (in flight) by a sender that then died."""
    campaign.status = EmailCampaign.Status.SENDING
    campaign.save()
    run = sending.run_start(campaign_id=campaign.pk, run_key="once")
    assert leases.lease_take(run.pk, "dead-sender")
    batch = batches.batch_claim(run, "dead-sender")
    CampaignRun.objects.filter(pk=run.pk).update(lease_until=timezone.now() - timedelta(seconds=1))
    return run, batch


def test_a_batch_in_flight_when_its_worker_died_and_accepted_is_not_sent_again(
    campaign, manager, audience, fake_sendgrid, settings
):
    settings.CAMPAIGN_BATCH_SIZE = 2
    run, batch = _claimed_batch(campaign, manager)
    plan = SubstitutionPlan(subject="s", html="h", text="t")
    # The provider got it; then the crash.
    SendGrid().send_batch(batches.batch_outgoing(run, batch, plan))
    assert sending.run_send(run_id=run.pk) == "sent"
    recipients = fake_sendgrid.recipients()
    assert sorted(recipients) == sorted(c.email for c in audience["mine"])
    assert len(recipients) == 5


def test_a_batch_in_flight_that_never_arrived_is_sent_on_resume(
    campaign, manager, audience, fake_sendgrid, settings
):
    settings.CAMPAIGN_BATCH_SIZE = 2
    settings.CAMPAIGN_INFLIGHT_SETTLE_SECONDS = 0
    run, batch = _claimed_batch(campaign, manager)
    assert sending.run_send(run_id=run.pk) == "sent"
    assert sorted(fake_sendgrid.recipients()) == sorted(c.email for c in audience["mine"])
    assert SendBatch.objects.get(pk=batch.pk).status == "requeued"


def test_a_live_sender_keeps_the_run_to_itself(campaign, manager, audience, fake_sendgrid):
    campaign.status = EmailCampaign.Status.SENDING
    campaign.save()
    run = sending.run_start(campaign_id=campaign.pk, run_key="once")
    assert leases.lease_take(run.pk, "alive")
    assert sending.run_send(run_id=run.pk) == "busy or finished"
    assert fake_sendgrid.recipients() == []


def test_pause_stops_between_batches_and_resume_sends_the_rest(
    campaign, manager, audience, fake_sendgrid, settings, django_capture_on_commit_callbacks
):
    settings.CAMPAIGN_BATCH_SIZE = 2
    campaign.status = EmailCampaign.Status.SENDING
    campaign.save()
    run = sending.run_start(campaign_id=campaign.pk, run_key="once")
    original = batches.batch_send

    def send_then_pause(provider, run_, batch, plan):
        original(provider, run_, batch, plan)
        EmailCampaign.objects.filter(pk=campaign.pk).update(status="paused")

    batches.batch_send = send_then_pause
    try:
        assert sending.run_send(run_id=run.pk) == "paused"
    finally:
        batches.batch_send = original
    assert len(fake_sendgrid.recipients()) == 2
    assert CampaignRun.objects.get().status == "paused"
    with django_capture_on_commit_callbacks(execute=True):
        campaign_resume(actor=manager, campaign=campaign)
    assert len(fake_sendgrid.recipients()) == 5
    campaign.refresh_from_db()
    assert campaign.status == "sent"


def test_cancel_while_paused_cancels_what_is_left(
    campaign, manager, audience, fake_sendgrid, settings
):
    campaign.status = EmailCampaign.Status.SENDING
    campaign.save()
    sending.run_start(campaign_id=campaign.pk, run_key="once")
    campaign_pause(actor=manager, campaign=campaign)
    campaign_cancel(actor=manager, campaign=campaign)
    assert set(EmailMessage.objects.values_list("status", flat=True)) == {"cancelled"}
    assert CampaignRun.objects.get().status == "cancelled"
    assert fake_sendgrid.recipients() == []


def test_starting_the_same_run_twice_adds_nobody_twice(campaign, manager, audience, fake_sendgrid):
    campaign.status = EmailCampaign.Status.SENDING
    campaign.save()
    first = sending.run_start(campaign_id=campaign.pk, run_key="2026-11-24T09:00")
    again = sending.run_start(campaign_id=campaign.pk, run_key="2026-11-24T09:00")
    assert first.pk == again.pk and EmailMessage.objects.count() == 5


def test_a_rep_cannot_send_campaigns(campaign, rep):
    from crm.errors import PermissionDenied

    with pytest.raises(PermissionDenied):
        campaign_send_now(actor=rep, campaign=campaign)


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


@pytest.mark.parametrize(
    "expression,expected",
    [
        ("* * * * *", "2026-11-24T10:07"),
        ("0 9 * * 1", "2026-11-23T09:00"),  # the Monday before
        ("30 */2 * * *", "2026-11-24T08:30"),
        ("0 0 1 1 *", "2026-01-01T00:00"),
        ("15 10 29 2 *", "2024-02-29T10:15"),
    ],
)
def test_a_cron_run_is_keyed_by_its_latest_firing_not_by_when_the_task_runs(
    expression, expected, settings
):
    from datetime import datetime

    moment = datetime(2026, 11, 24, 10, 7, 42, tzinfo=timezone.get_current_timezone())
    assert sending.cron_run_key(expression, moment) == expected
    late = moment + timedelta(seconds=50)  # a redelivery in the next minute
    if expression != "* * * * *":
        assert sending.cron_run_key(expression, late) == expected


def test_the_lease_outlasts_a_slow_provider_request(settings):
    settings.CAMPAIGN_SEND_LEASE_SECONDS = 5
    settings.SENDGRID_TIMEOUT_SECONDS = 10
    assert sending.lease_seconds() == 30


def test_a_recent_unconfirmed_batch_waits_and_its_recipients_are_not_claimed_again(
    campaign, manager, audience, fake_sendgrid, settings
):
    settings.CAMPAIGN_BATCH_SIZE = 2
    run, batch = _claimed_batch(campaign, manager)  # the activity feed does not show it yet
    assert sending.run_send(run_id=run.pk) == "waiting for the provider"
    in_flight = {"ann@a.example", "bob@b.example"}
    assert in_flight.isdisjoint(fake_sendgrid.recipients()) and len(fake_sendgrid.recipients()) == 3
    assert CampaignRun.objects.get().status == "sending"
    settings.CAMPAIGN_INFLIGHT_SETTLE_SECONDS = 0  # later: the feed still does not show it
    CampaignRun.objects.filter(pk=run.pk).update(lease_until=None)
    assert sending.run_send(run_id=run.pk) == "sent"
    assert sorted(fake_sendgrid.recipients()) == sorted(c.email for c in audience["mine"])


def test_when_the_provider_cannot_tell_the_batch_counts_as_sent(
    campaign, manager, audience, fake_sendgrid, settings, monkeypatch
):
    def cannot_tell(self, key):
        raise ProviderCannotTell("no activity feed")

    monkeypatch.setattr(SendGrid, "was_accepted", cannot_tell)
    settings.CAMPAIGN_BATCH_SIZE = 2
    settings.CAMPAIGN_INFLIGHT_SETTLE_SECONDS = 0
    run, batch = _claimed_batch(campaign, manager)
    assert sending.run_send(run_id=run.pk) == "sent"
    assert len(fake_sendgrid.recipients()) == 3  # nobody twice, at the risk of two unsent
    assert "could not say" in SendBatch.objects.get(pk=batch.pk).error


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


def test_retries_run_out_the_campaign_pauses_with_the_reason_and_resume_sends(
    campaign, manager, audience, fake_sendgrid, settings, django_capture_on_commit_callbacks
):
    from campaigns.tasks import send_run

    settings.CAMPAIGN_MAX_RETRIES = 2
    campaign.status = EmailCampaign.Status.SENDING
    campaign.save()
    run = sending.run_start(campaign_id=campaign.pk, run_key="once")
    fake_sendgrid.fail_next(503)
    send_run.apply(args=[run.pk], retries=2)  # the last allowed attempt
    campaign.refresh_from_db()
    run.refresh_from_db()
    assert campaign.status == "paused" and run.status == "paused"
    assert "503" in run.last_error and "Resume" in run.last_error
    with django_capture_on_commit_callbacks(execute=True):
        campaign_resume(actor=manager, campaign=campaign)
    campaign.refresh_from_db()
    assert campaign.status == "sent" and len(fake_sendgrid.recipients()) == 5


def test_a_pause_after_the_last_batch_leaves_a_sent_campaign(
    campaign, manager, audience, fake_sendgrid
):
    campaign.status = EmailCampaign.Status.SENDING
    campaign.save()
    run = sending.run_start(campaign_id=campaign.pk, run_key="once")
    original = batches.batch_send

    def send_then_pause(provider, run_, batch, plan):
        original(provider, run_, batch, plan)
        EmailCampaign.objects.filter(pk=campaign.pk).update(status="paused")

    batches.batch_send = send_then_pause
    try:
        outcome = sending.run_send(run_id=run.pk)
    finally:
        batches.batch_send = original
    campaign.refresh_from_db()
    assert outcome == "paused" or campaign.status == "sent"
    if outcome == "paused":  # paused before noticing it was done: resume finishes it
        campaign_resume(actor=manager, campaign=campaign)
        sending.run_send(run_id=run.pk)
        campaign.refresh_from_db()
    assert campaign.status == "sent"


def test_a_sent_campaign_never_starts_another_run(campaign, manager, audience, fake_sendgrid):
    campaign.status = EmailCampaign.Status.SENT
    campaign.save()
    assert sending.run_start(campaign_id=campaign.pk, run_key="again") is None
