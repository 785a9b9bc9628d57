"""campaigns.tasks: the send task retries with backoff, then gives up."""

import pytest
from celery.exceptions import Retry

from campaigns import sending
from campaigns.models import (
    EmailCampaign,
)
from campaigns.services import campaign_resume

pytestmark = pytest.mark.django_db


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
