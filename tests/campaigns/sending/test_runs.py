"""campaigns.sending.runs: starting, pausing, cancelling and finishing runs."""

from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns import sending
from campaigns.models import (
    CampaignRun,
    EmailCampaign,
    EmailMessage,
)
from campaigns.services import campaign_cancel, campaign_pause, campaign_resume

pytestmark = pytest.mark.django_db


def test_pause_stops_between_batches_and_resume_sends_the_rest(
    campaign,
    manager,
    audience,
    fake_sendgrid,
    settings,
    django_capture_on_commit_callbacks,
    pause_after_a_batch,
    monkeypatch,
):
    settings.CAMPAIGN_BATCH_SIZE = 2
    campaign.status = EmailCampaign.Status.SENDING
    campaign.save()
    run = sending.run_start(campaign_id=campaign.pk, run_key="once")
    pause_after_a_batch(campaign)
    assert sending.run_send(run_id=run.pk) == "paused"
    monkeypatch.undo()
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


def test_a_pause_after_the_last_batch_leaves_a_sent_campaign(
    campaign, manager, audience, fake_sendgrid, pause_after_a_batch, monkeypatch
):
    campaign.status = EmailCampaign.Status.SENDING
    campaign.save()
    run = sending.run_start(campaign_id=campaign.pk, run_key="once")
    pause_after_a_batch(campaign)
    outcome = sending.run_send(run_id=run.pk)
    monkeypatch.undo()
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
