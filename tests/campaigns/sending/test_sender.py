"""campaigns.sending.sender: one worker sends a run, batch after batch, exactly once."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from campaigns import sending
from campaigns.models import (
    EmailCampaign,
    EmailMessage,
    SendBatch,
)
from campaigns.sending import notices
from campaigns.sending.provider import TransientSendError

pytestmark = pytest.mark.django_db


def test_send_now_through_sendgrid_reaches_each_visible_recipient_once(
    send_now, campaign, audience, fake_sendgrid
):
    campaign = send_now(campaign)
    assert sorted(fake_sendgrid.recipients()) == sorted(c.email for c in audience["mine"])
    assert campaign.status == EmailCampaign.Status.SENT
    assert (campaign.total_recipients, campaign.sent_count) == (5, 5)
    messages = EmailMessage.objects.filter(campaign=campaign)
    assert set(messages.values_list("status", flat=True)) == {"sent"}
    (request,) = fake_sendgrid.accepted
    assert all(m.provider_message_id == request.message_id for m in messages)


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


def _statements_to_send(campaign, settings, *, batch_size: int) -> int:
    settings.CAMPAIGN_BATCH_SIZE = batch_size
    campaign.status = EmailCampaign.Status.SENDING
    campaign.save()
    run = sending.run_start(campaign_id=campaign.pk, run_key=f"size {batch_size}")
    with CaptureQueriesContext(connection) as queries:
        assert sending.run_send(run_id=run.pk) == "sent"
    return len(queries)


def test_each_batch_costs_seven_statements(campaign, manager, audience, fake_sendgrid, settings):
    """The campaign's status, the lease, the claim, the batch row, its recipients, and the
    two writes marking it sent (plus, inside the test's transaction, the savepoints of the
    claim's and the marking's transactions); the live progress costs none, and no claim
    reads the messages of the batches before it."""
    one_batch = _statements_to_send(campaign, settings, batch_size=5)
    five_batches = _statements_to_send(campaign, settings, batch_size=1)
    assert (five_batches - one_batch) / 4 == 7 + 2 * 2


@pytest.fixture
def hints(monkeypatch):
    """The progress hints the campaign's pages are sent: (status, user ids)."""
    heard = []
    monkeypatch.setattr(
        notices, "progress_push", lambda **hint: heard.append((hint["status"], hint["user_ids"]))
    )
    return heard


def test_the_campaign_page_hears_of_the_start_the_batches_once_a_second_and_the_end(
    campaign, manager, audience, fake_sendgrid, settings, hints, monkeypatch
):
    settings.CAMPAIGN_BATCH_SIZE = 2
    monkeypatch.setattr(notices, "monotonic", lambda: 0)  # a fast send: one second
    campaign.status = EmailCampaign.Status.SENDING
    campaign.save()
    run = sending.run_start(campaign_id=campaign.pk, run_key="once")
    assert sending.run_send(run_id=run.pk) == "sent"
    # The start; the first batch (the two others follow within the second); the end.
    assert hints == [("sending", [manager.pk])] * 2 + [("sent", [manager.pk])]


def test_a_slow_send_hints_after_each_batch_and_a_pause_at_once(
    campaign, manager, audience, fake_sendgrid, settings, hints, monkeypatch, pause_after_a_batch
):
    settings.CAMPAIGN_BATCH_SIZE = 2
    seconds = iter(range(0, 1000, 2))  # each batch takes two seconds
    monkeypatch.setattr(notices, "monotonic", lambda: next(seconds))
    campaign.status = EmailCampaign.Status.SENDING
    campaign.save()
    run = sending.run_start(campaign_id=campaign.pk, run_key="once")
    assert sending.run_send(run_id=run.pk) == "sent"
    assert hints == [("sending", [manager.pk])] * 4 + [("sent", [manager.pk])]
    hints.clear()
    monkeypatch.setattr(notices, "monotonic", lambda: 0)  # all within a second
    pause_after_a_batch(campaign)
    campaign.status = EmailCampaign.Status.SENDING
    campaign.save()
    run = sending.run_start(campaign_id=campaign.pk, run_key="again")
    assert sending.run_send(run_id=run.pk) == "paused"
    assert hints == [("sending", [manager.pk]), ("paused", [manager.pk])]
