"""Campaign sends through Mailgun with real Celery processes against Redis and the test
database (not eager mode), the official SDK talking to the fake Mailgun: a worker killed
mid-request is resumed and everyone gets exactly one email (the in-flight batch judged
through Mailgun's Events API by its batch key), and 429/5xx are retried with backoff.
See tests/campaigns/test_campaign_worker.py for the SendGrid twins and the set-up."""

import time
import uuid
from collections import Counter

import pytest

from campaigns import sending
from campaigns.models import CampaignRun, EmailCampaign, EmailMessage, SendBatch
from campaigns.services import campaign_send_now
from campaigns.tasks import resume_stalled_runs
from tests.campaigns.test_campaign_worker import (
    customers_of,
    draft_campaign,
    request_arrivals,
    run_status,
    wait_for,
    wait_until_idle,
)
from tests.factories import CustomerFactory
from tests.fakes.mailgun_server import FakeMailgun

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

API_KEY, DOMAIN = "key-mailgun-worker-test", "mg.worker.example"


@pytest.fixture
def fake():
    with FakeMailgun(api_key=API_KEY, domain=DOMAIN) as server:
        yield server


@pytest.fixture
def real_worker_env(fake):
    return {
        "DJANGO_SETTINGS_MODULE": "crm.settings",
        "DEBUG": "false",
        "SECRET_KEY": f"mailgun-worker-test-{uuid.uuid4().hex}",
        "LOG_LEVEL": "WARNING",
        "SENDGRID_API_KEY": "",
        "MAILGUN_API_KEY": API_KEY,
        "MAILGUN_DOMAIN": DOMAIN,
        "MAILGUN_API_URL": fake.url,
        "MAILGUN_TIMEOUT_SECONDS": "0.6",  # the lease is at least 3 timeouts
        "CAMPAIGN_BATCH_SIZE": "10",
        "CAMPAIGN_SEND_LEASE_SECONDS": "2",
        "CAMPAIGN_RETRY_BASE_SECONDS": "0.2",
    }


@pytest.fixture(autouse=True)
def mailgun_here(settings, fake):
    """This process (run_start, stalled_runs) configured like the workers."""
    settings.SENDGRID_API_KEY = ""
    settings.MAILGUN_API_KEY, settings.MAILGUN_DOMAIN = API_KEY, DOMAIN
    settings.MAILGUN_API_URL = fake.url
    settings.MAILGUN_TIMEOUT_SECONDS = 0.6
    settings.CAMPAIGN_SEND_LEASE_SECONDS = 2


def test_a_worker_killed_mid_request_is_resumed_and_everyone_gets_exactly_one_email(
    real_worker, fake, manager, rep, teammate, other_rep, teams
):
    processes = real_worker
    expected = customers_of([rep, teammate], 150, "killed.example")
    CustomerFactory(owner=other_rep, email="outsider@killed.example")  # not the manager's
    campaign = draft_campaign(manager)
    fake.delay = 0.3  # each batch of 10 takes 0.3 s, after Mailgun has accepted it
    _, first = processes.worker(concurrency=1)
    with processes.routed():
        campaign_send_now(actor=manager, campaign=campaign)

    # SIGKILL the worker just after its 4th request reached Mailgun: accepted there, but the
    # worker dies waiting for the answer, its batch still `sending` in the database.
    seen, deadline = fake.requests_seen, time.monotonic() + 30
    while True:
        arrived = fake.requests_seen
        if arrived > seen and arrived >= 4:
            processes.kill(first)
            break
        seen = arrived
        processes.check_alive(first)
        assert time.monotonic() < deadline, f"no 4th request\n{processes.logs()}"
        time.sleep(0.005)
    run = CampaignRun.objects.get(campaign=campaign)
    assert run.provider == "mailgun"
    in_flight = SendBatch.objects.get(run=run, status=SendBatch.Status.SENDING)
    accepted_before = len(fake.recipients())
    assert 0 < accepted_before < len(expected)

    wait_for(lambda: sending.stalled_runs() == [run.pk], timeout=10, what="a stalled run",
             processes=processes)  # fmt: skip
    with processes.routed():
        resume_stalled_runs.apply_async()
    # The killed task comes back too (acks_late): the resumed and the redelivered sender
    # race for the run on the next worker's two processes.
    assert processes.redeliver_unacked() == ["campaigns.send_run"]
    _, second = processes.worker(concurrency=2)
    wait_for(lambda: run_status(run.pk) == CampaignRun.Status.SENT, timeout=30,
             what="the resumed run to finish", processes=processes, alive=[second])  # fmt: skip
    wait_until_idle(processes, second)

    recipients = fake.recipients()
    assert sorted(recipients) == sorted(expected), "someone missed or got another email"
    assert Counter(recipients).most_common(1)[0][1] == 1
    assert all(len(delivery.to) == 1 for delivery in fake.deliveries())
    messages = EmailMessage.objects.filter(run=run)
    assert messages.count() == len(expected)
    assert set(messages.values_list("status", flat=True)) == {"sent"}
    in_flight.refresh_from_db()
    assert (in_flight.status, in_flight.error) == ("sent", "Accepted before its worker stopped.")
    campaign.refresh_from_db()
    assert campaign.status == EmailCampaign.Status.SENT
    assert (campaign.total_recipients, campaign.sent_count) == (150, 150)


def test_rate_limits_and_server_errors_are_retried_by_the_worker_with_backoff(
    real_worker, fake, manager, rep, teammate, teams
):
    processes = real_worker
    expected = customers_of([rep, teammate], 25, "retry.example")
    campaign = draft_campaign(manager)
    fake.fail_next(429)
    fake.fail_next(502)
    _, worker = processes.worker()
    with processes.routed():
        campaign_send_now(actor=manager, campaign=campaign)

    arrivals = request_arrivals(processes, worker, fake, 5)  # 429, 502, batches of 10, 10, 5
    run = CampaignRun.objects.get(campaign=campaign)
    wait_for(lambda: run_status(run.pk) == CampaignRun.Status.SENT, timeout=20,
             what="the run to finish", processes=processes, alive=[worker])  # fmt: skip
    wait_until_idle(processes, worker)

    # The SDK's own retries are off: each retry is the task's, 0.2 s then 0.4 s later.
    after_429, after_502 = arrivals[1] - arrivals[0], arrivals[2] - arrivals[1]
    assert 0.19 <= after_429 < 1.5, arrivals
    assert 0.39 <= after_502 < 1.9, arrivals
    recipients = fake.recipients()
    assert sorted(recipients) == sorted(expected)
    assert len(set(recipients)) == len(recipients)
    assert fake.requests_seen == 5
    batches = list(SendBatch.objects.filter(run=run).values_list("status", "error"))
    assert [status for status, _ in batches] == ["requeued", "requeued", "sent", "sent", "sent"]
    assert "429" in batches[0][1] and "502" in batches[1][1]
    campaign.refresh_from_db()
    assert (campaign.status, campaign.sent_count) == (EmailCampaign.Status.SENT, 25)
