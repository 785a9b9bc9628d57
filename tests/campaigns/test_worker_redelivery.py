"""A worker killed mid-task: Redis itself hands the task out again once the broker's
visibility timeout has passed (CELERY_VISIBILITY_TIMEOUT_SECONDS, 4 minutes in production,
3 s here), and the next worker finishes it, with nothing done twice. Nothing in the test
puts the task back by hand."""

import time
from collections import Counter

import pytest

from campaigns.models import CampaignRun, EmailCampaign, EmailMessage
from campaigns.services import campaign_send_now
from tests.campaigns.test_campaign_worker import (
    API_KEY,
    customers_of,
    draft_campaign,
    production_worker_env,
    wait_for,
)
from tests.fakes.sendgrid_server import FakeSendGrid

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def fake():
    with FakeSendGrid(api_key=API_KEY) as server:
        yield server


@pytest.fixture
def real_worker_env(fake):
    return {**production_worker_env(fake), "CELERY_VISIBILITY_TIMEOUT_SECONDS": "3"}


def test_a_killed_workers_send_is_redelivered_by_redis_and_finished(
    real_worker,
    fake,
    manager,
    rep,
    teammate,
    teams,
):
    processes = real_worker
    expected = customers_of([rep, teammate], 60, "redelivered.example")
    campaign = draft_campaign(manager)
    fake.delay = 0.3  # each batch of 10 takes 0.3 s: the send runs for about 2 s
    _, first = processes.worker(concurrency=1)
    with processes.routed():
        campaign_send_now(actor=manager, campaign=campaign)
    wait_for(lambda: fake.requests_seen >= 2, timeout=30, what="the send to be under way",
             processes=processes, alive=[first])  # fmt: skip
    processes.kill(first)
    killed_at = time.monotonic()
    assert "campaigns.send_run" in [
        message["headers"]["task"] for message in processes._unacked().values()
    ]
    _, second = processes.worker(concurrency=1)
    run = CampaignRun.objects.get(campaign=campaign)
    wait_for(lambda: CampaignRun.objects.get(pk=run.pk).status == CampaignRun.Status.SENT,
             timeout=60, what="Redis to redeliver the send and the worker to finish it",
             processes=processes, alive=[second])  # fmt: skip
    assert time.monotonic() - killed_at < 60
    recipients = fake.recipients()
    assert sorted(recipients) == sorted(expected)
    assert Counter(recipients).most_common(1)[0][1] == 1
    assert set(EmailMessage.objects.filter(run=run).values_list("status", flat=True)) == {"sent"}
    campaign.refresh_from_db()
    assert campaign.status == EmailCampaign.Status.SENT
