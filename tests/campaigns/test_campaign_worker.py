"""Campaign sends through real Celery processes against Redis and the test database (not
eager mode): a worker killed mid-request, the provider's errors retried with backoff (each
through SendGrid and through Mailgun, the official SDKs talking to the fakes; Mailgun judges
the in-flight batch through its Events API by its batch key), and a cron firing from beat.

The processes (the `real_worker` fixture) run the production settings (crm.settings,
configured by environment like a deployment) plus one line: a default queue of the test's
own. Not crm.test_settings, which forces eager mode: there, every task a task queues
(start_run → send_run, a retry, a resume) would run inline in the same process, retries
without their countdown. The queue of its own
keeps tasks queued by the processes themselves (and by beat) away from any other test's
worker sharing the Redis database, e.g. under `pytest -n 2`.
"""

import re
import subprocess
import time
import uuid
from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from campaigns import sending
from campaigns.models import CampaignRun, EmailCampaign, EmailMessage, SendBatch
from campaigns.services import campaign_schedule, campaign_send_now
from campaigns.tasks import resume_stalled_runs, start_cron_run
from tests.celery_processes import CeleryProcesses
from tests.factories import (
    CustomerFactory,
    CustomerSegmentFactory,
    EmailCampaignFactory,
    EmailTemplateFactory,
)
from tests.fakes.mailgun_server import FakeMailgun
from tests.fakes.sendgrid_server import FakeSendGrid

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

API_KEY = "SG.campaign-worker-test"
MAILGUN_API_KEY, MAILGUN_DOMAIN = "key-mailgun-worker-test", "mg.worker.example"
RUN_KEY_SHAPE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")
# The tests that run once per provider; the others send through SendGrid.
through_each_provider = pytest.mark.parametrize("provider", ["sendgrid", "mailgun"], indirect=True)


@pytest.fixture(params=["sendgrid"])
def provider(request) -> str:
    return request.param


@pytest.fixture
def fake(provider):
    server = (
        FakeMailgun(api_key=MAILGUN_API_KEY, domain=MAILGUN_DOMAIN)
        if provider == "mailgun"
        else FakeSendGrid(api_key=API_KEY)
    )
    with server:
        yield server


@pytest.fixture
def real_worker_env(fake, provider):
    return production_worker_env(fake, provider)


@pytest.fixture(autouse=True)
def provider_here(settings, fake, provider):
    """This process (run_start, stalled_runs) configured like the workers."""
    if provider == "mailgun":
        settings.SENDGRID_API_KEY = ""
        settings.MAILGUN_API_KEY, settings.MAILGUN_DOMAIN = MAILGUN_API_KEY, MAILGUN_DOMAIN
        settings.MAILGUN_API_URL = fake.url
        settings.MAILGUN_TIMEOUT_SECONDS = 0.6
        settings.CAMPAIGN_SEND_LEASE_SECONDS = 2


def production_worker_env(fake, provider: str = "sendgrid") -> dict[str, str]:
    """The production settings, configured by environment like a deployment (see above)."""
    if provider == "mailgun":
        sender = {
            "SENDGRID_API_KEY": "",
            "MAILGUN_API_KEY": MAILGUN_API_KEY,
            "MAILGUN_DOMAIN": MAILGUN_DOMAIN,
            "MAILGUN_API_URL": fake.url,
            "MAILGUN_TIMEOUT_SECONDS": "0.6",  # the lease is at least 3 timeouts
        }
    else:
        sender = {
            "SENDGRID_API_KEY": API_KEY,
            "SENDGRID_API_HOST": fake.url,
            "SENDGRID_TIMEOUT_SECONDS": "0.6",  # the lease is at least 3 timeouts
        }
    return {
        "DJANGO_SETTINGS_MODULE": "crm.settings",
        "DEBUG": "false",
        "SECRET_KEY": f"campaign-worker-test-{uuid.uuid4().hex}",
        "LOG_LEVEL": "WARNING",
        **sender,
        "CAMPAIGN_BATCH_SIZE": "10",
        "CAMPAIGN_SEND_LEASE_SECONDS": "2",
        "CAMPAIGN_RETRY_BASE_SECONDS": "0.2",
    }


def wait_for(condition, *, timeout: float, what: str, processes: CeleryProcesses, alive=()):
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        processes.check_alive(*alive)
        if time.monotonic() > deadline:
            pytest.fail(f"Timed out after {timeout} s waiting for {what}.\n{processes.logs()}")
        time.sleep(0.1)
    return result


def wait_until_idle(processes: CeleryProcesses, worker: subprocess.Popen, timeout: float = 20):
    """Nothing queued, nothing running or waiting to retry: checked twice, as a message is in
    neither the queue nor `unacked` for an instant while a worker takes it."""

    def idle_twice():
        if not processes.idle():
            return False
        time.sleep(0.3)
        return processes.idle()

    wait_for(idle_twice, timeout=timeout, what="the queue to drain", processes=processes,
             alive=[worker])  # fmt: skip


def customers_of(owners, count: int, domain: str) -> list[str]:
    return [
        CustomerFactory(owner=owners[i % len(owners)], email=f"c{i}@{domain}").email
        for i in range(count)
    ]


def draft_campaign(manager) -> EmailCampaign:
    return EmailCampaignFactory(
        created_by=manager,
        template=EmailTemplateFactory(),
        segment=CustomerSegmentFactory(created_by=manager, criteria={}),
        status=EmailCampaign.Status.DRAFT,
    )


def request_arrivals(processes: CeleryProcesses, worker, fake, count: int, timeout=30.0):
    """When each of the fake provider's first `count` requests arrived (monotonic seconds),
    watched closely enough to time the worker's retry backoff."""
    arrivals, deadline = [], time.monotonic() + timeout
    while len(arrivals) < count:
        while len(arrivals) < fake.requests_seen:
            arrivals.append(time.monotonic())
        processes.check_alive(worker)
        assert time.monotonic() < deadline, f"{len(arrivals)} requests\n{processes.logs()}"
        time.sleep(0.005)
    return arrivals


def run_status(run_id: int) -> str:
    return CampaignRun.objects.values_list("status", flat=True).get(pk=run_id)


@through_each_provider
def test_a_worker_killed_mid_request_is_resumed_and_everyone_gets_exactly_one_email(
    real_worker, fake, provider, manager, rep, teammate, other_rep, teams
):
    processes = real_worker
    expected = customers_of([rep, teammate], 150, "killed.example")
    CustomerFactory(owner=other_rep, email="outsider@killed.example")  # not the manager's
    campaign = draft_campaign(manager)
    fake.delay = 0.3  # each batch of 10 takes 0.3 s, after the provider has accepted it
    _, first = processes.worker(concurrency=1)
    with processes.routed():
        campaign_send_now(actor=manager, campaign=campaign)

    # SIGKILL the worker just after its 4th request reached the provider: accepted there, but the
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
    assert run.provider == provider
    in_flight = SendBatch.objects.get(run=run, status=SendBatch.Status.SENDING)
    accepted_before = len(fake.recipients())
    assert 0 < accepted_before < len(expected)
    assert EmailMessage.objects.filter(run=run, status="sent").count() == (
        accepted_before - in_flight.size
    )

    # The dead sender's lease lapses after CAMPAIGN_SEND_LEASE_SECONDS=2: the run is stalled.
    wait_for(lambda: sending.stalled_runs() == [run.pk], timeout=10, what="a stalled run",
             processes=processes)  # fmt: skip
    with processes.routed():
        resume_stalled_runs.apply_async()
    # The killed task comes back too (acks_late): Redis hands it out again once its
    # visibility timeout has passed. Both wait for the next worker, whose two processes take
    # them at once: the resumed sender and the redelivered one race for the run.
    assert processes.redeliver_unacked() == ["campaigns.send_run"]
    _, second = processes.worker(concurrency=2)
    wait_for(lambda: run_status(run.pk) == CampaignRun.Status.SENT, timeout=30,
             what="the resumed run to finish", processes=processes, alive=[second])  # fmt: skip
    wait_until_idle(processes, second)

    recipients = fake.recipients()
    assert sorted(recipients) == sorted(expected), "someone missed or got another email"
    assert Counter(recipients).most_common(1)[0][1] == 1
    if provider == "mailgun":  # a batch is one message per recipient (recipient-variables)
        assert all(len(delivery.to) == 1 for delivery in fake.deliveries())
    messages = EmailMessage.objects.filter(run=run)
    assert messages.count() == len(expected)
    assert set(messages.values_list("status", flat=True)) == {"sent"}
    in_flight.refresh_from_db()
    assert (in_flight.status, in_flight.error) == ("sent", "Accepted before its worker stopped.")
    assert not SendBatch.objects.filter(run=run).exclude(status="sent").exists()
    campaign.refresh_from_db()
    assert campaign.status == EmailCampaign.Status.SENT
    assert (campaign.total_recipients, campaign.sent_count) == (150, 150)


@through_each_provider
def test_rate_limits_and_server_errors_are_retried_by_the_worker_with_backoff(
    real_worker, fake, provider, manager, rep, teammate, teams
):
    processes = real_worker
    expected = customers_of([rep, teammate], 25, "retry.example")
    campaign = draft_campaign(manager)
    server_error = 502 if provider == "mailgun" else 500
    fake.fail_next(429)
    fake.fail_next(server_error)
    _, worker = processes.worker()
    with processes.routed():
        campaign_send_now(actor=manager, campaign=campaign)

    arrivals = request_arrivals(processes, worker, fake, 5)  # 429, 5xx, batches of 10, 10, 5
    run = CampaignRun.objects.get(campaign=campaign)
    wait_for(lambda: run_status(run.pk) == CampaignRun.Status.SENT, timeout=20,
             what="the run to finish", processes=processes, alive=[worker])  # fmt: skip
    wait_until_idle(processes, worker)

    # Exponential backoff from CAMPAIGN_RETRY_BASE_SECONDS=0.2: 0.2 s, then 0.4 s (the
    # default base of 2 s would wait 2 s, then 4 s). The SDKs' own retries are off: each
    # retry is the task's.
    after_429, after_5xx = arrivals[1] - arrivals[0], arrivals[2] - arrivals[1]
    assert 0.19 <= after_429 < 1.5, arrivals
    assert 0.39 <= after_5xx < 1.9, arrivals
    recipients = fake.recipients()
    assert sorted(recipients) == sorted(expected)
    assert len(set(recipients)) == len(recipients)
    assert fake.requests_seen == 5
    batches = list(SendBatch.objects.filter(run=run).values_list("status", "error"))
    assert [status for status, _ in batches] == ["requeued", "requeued", "sent", "sent", "sent"]
    assert "429" in batches[0][1] and str(server_error) in batches[1][1]
    assert set(EmailMessage.objects.filter(run=run).values_list("status", flat=True)) == {"sent"}
    campaign.refresh_from_db()
    assert (campaign.status, campaign.sent_count) == (EmailCampaign.Status.SENT, 25)


def wait_for_early_in_the_minute(latest_second: int = 45) -> None:
    """The duplicate firing below must reach the worker within the minute of the first."""
    now = timezone.now()
    second = now.second + now.microsecond / 1e6
    if second > latest_second:
        time.sleep(60.2 - second)


def test_a_cron_campaign_fires_from_beat_and_a_duplicate_firing_sends_nobody_twice(
    real_worker, fake, manager, rep, teammate, teams
):
    processes = real_worker
    expected = customers_of([rep, teammate], 12, "cron.example")
    campaign = draft_campaign(manager)
    _, worker = processes.worker()

    wait_for_early_in_the_minute()
    campaign = campaign_schedule(actor=manager, campaign=campaign, cron="* * * * *")
    periodic = PeriodicTask.objects.get(pk=campaign.periodic_task_id)
    assert (periodic.task, periodic.crontab.minute, periodic.enabled) == (
        "campaigns.start_cron_run",
        "*",
        True,
    )
    # Last fired two minutes ago: beat finds it due at once instead of at the next minute.
    PeriodicTask.objects.filter(pk=periodic.pk).update(
        last_run_at=timezone.now() - timedelta(minutes=2)
    )
    beat = processes.beat()

    run = wait_for(lambda: CampaignRun.objects.filter(campaign=campaign).first(), timeout=30,
                   what="beat to fire the campaign", processes=processes,
                   alive=[worker, beat])  # fmt: skip
    wait_for(lambda: run_status(run.pk) == CampaignRun.Status.SENT, timeout=20,
             what="the cron run to finish", processes=processes, alive=[worker])  # fmt: skip
    processes.stop(beat)  # its next firing, next minute, would be a run of its own
    wait_until_idle(processes, worker)
    assert RUN_KEY_SHAPE.fullmatch(run.run_key), run.run_key
    assert sorted(fake.recipients()) == sorted(expected)
    campaign.refresh_from_db()
    assert campaign.status == EmailCampaign.Status.SCHEDULED  # recurring: waits for the next

    # The same firing delivered again, within the same minute: the run is found, nobody is
    # added to it and nobody gets a second email.
    assert timezone.localtime().strftime("%Y-%m-%dT%H:%M") == run.run_key, "too slow"
    with processes.routed():
        start_cron_run.apply_async(kwargs={"campaign_id": campaign.pk})
    wait_until_idle(processes, worker)
    assert list(CampaignRun.objects.filter(campaign=campaign).values_list("pk", flat=True)) == [
        run.pk
    ]
    assert EmailMessage.objects.filter(campaign=campaign).count() == len(expected)
    assert sorted(fake.recipients()) == sorted(expected)
    assert len(fake.accepted) == 2  # batches of 10 and 2
