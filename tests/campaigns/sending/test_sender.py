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


def test_the_campaign_page_hears_of_the_start_each_batch_and_the_end(
    campaign, manager, audience, fake_sendgrid, settings, monkeypatch
):
    heard = []
    monkeypatch.setattr(
        notices, "progress_push", lambda **hint: heard.append((hint["status"], hint["user_ids"]))
    )
    settings.CAMPAIGN_BATCH_SIZE = 2
    campaign.status = EmailCampaign.Status.SENDING
    campaign.save()
    run = sending.run_start(campaign_id=campaign.pk, run_key="once")
    assert sending.run_send(run_id=run.pk) == "sent"
    audience_ids = [manager.pk]
    assert heard == [("sending", audience_ids)] * 4 + [("sent", audience_ids)]
