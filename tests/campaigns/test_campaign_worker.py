"""Campaign sends through real Celery processes against Redis and the test database (not
eager mode): a worker killed mid-request, SendGrid errors retried with backoff, and a cron
firing from beat.

The processes run the production settings (crm.settings, configured by environment like a
deployment) plus one line: a default queue of the test's own. Not crm.test_settings, which
forces eager mode: there, every task a task queues (start_run → send_run, a retry, a resume)
would run inline in the same process, retries without their countdown. The queue of its own
keeps tasks queued by the processes themselves (and by beat) away from any other test's
worker sharing the Redis database, e.g. under `pytest -n 2`.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from contextlib import contextmanager, suppress
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.db import connection
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from campaigns import sending
from campaigns.models import CampaignRun, EmailCampaign, EmailMessage, SendBatch
from campaigns.services import campaign_schedule, campaign_send_now
from campaigns.tasks import resume_stalled_runs, start_cron_run
from crm.celery import app
from tests.factories import (
    CustomerFactory,
    CustomerSegmentFactory,
    EmailCampaignFactory,
    EmailTemplateFactory,
)
from tests.fakes.sendgrid_server import FakeSendGrid

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

CELERY = str(Path(sys.executable).with_name("celery"))
API_KEY = "SG.campaign-worker-test"
RUN_KEY_SHAPE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")


class CeleryProcesses:
    """Workers and beat on a queue of their own; every one is killed at teardown."""

    def __init__(self, tmp_path: Path, fake: FakeSendGrid):
        self.queue = f"test-campaigns-{uuid.uuid4().hex[:8]}"
        self.tmp_path = tmp_path
        self.processes: list[tuple[str, subprocess.Popen, Path]] = []
        self.redis = redis.Redis.from_url(settings.REDIS_URL)
        (tmp_path / "campaign_worker_settings.py").write_text(
            "from crm.settings import *  # noqa: F403\n"
            f"CELERY_TASK_DEFAULT_QUEUE = {self.queue!r}\n"
        )
        db = connection.settings_dict
        password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
        pythonpath = [str(tmp_path), str(settings.BASE_DIR), os.environ.get("PYTHONPATH", "")]
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "campaign_worker_settings",
            "PYTHONPATH": os.pathsep.join(p for p in pythonpath if p),
            "DATABASE_URL": (
                f"postgres://{db['USER']}{password}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
            ),
            "REDIS_URL": settings.REDIS_URL,
            "DEBUG": "false",
            "SECRET_KEY": f"campaign-worker-test-{uuid.uuid4().hex}",
            "LOG_LEVEL": "WARNING",
            "SENDGRID_API_KEY": API_KEY,
            "SENDGRID_API_HOST": fake.url,
            "SENDGRID_TIMEOUT_SECONDS": "0.6",  # the lease is at least 3 timeouts
            "CAMPAIGN_BATCH_SIZE": "10",
            "CAMPAIGN_SEND_LEASE_SECONDS": "2",
            "CAMPAIGN_RETRY_BASE_SECONDS": "0.2",
        }

    # Processes

    def _start(self, label: str, args: list[str]) -> subprocess.Popen:
        log = self.tmp_path / f"{label}.log"
        with log.open("wb") as output:
            process = subprocess.Popen(
                [CELERY, "-A", "crm", *args],
                cwd=settings.BASE_DIR,
                env=self.env,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: pool children die with it
            )
        self.processes.append((label, process, log))
        return process

    def worker(self, *, concurrency: int = 2) -> tuple[str, subprocess.Popen]:
        """Start a prefork worker on the queue and wait until it answers; (name, process)."""
        label = f"worker{len(self.processes) + 1}"
        name = f"{self.queue}-{label}@localhost"
        process = self._start(
            label,
            ["worker", "-Q", self.queue, "-n", name, f"--concurrency={concurrency}",
             "--without-gossip", "--without-mingle", "--loglevel=WARNING"],
        )  # fmt: skip
        deadline = time.monotonic() + 40
        while not app.control.ping(destination=[name], timeout=0.5):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"Celery worker did not start.\n{self.logs()}")
        return name, process

    def beat(self) -> subprocess.Popen:
        return self._start(
            "beat",
            ["beat", "--scheduler", "django_celery_beat.schedulers:DatabaseScheduler",
             "--max-interval", "1", "--schedule", str(self.tmp_path / "beat-schedule"),
             "--loglevel=WARNING"],
        )  # fmt: skip

    @staticmethod
    def kill(process: subprocess.Popen) -> None:
        """SIGKILL the process and its pool children: no warm shutdown, no message restored."""
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    @staticmethod
    def stop(process: subprocess.Popen) -> None:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with suppress(subprocess.TimeoutExpired):
            process.wait(timeout=8)
        CeleryProcesses.kill(process)  # the group: children outliving their parent too

    def stop_all(self) -> None:
        for _, process, _ in self.processes:
            self.stop(process)
        self._forget_queue()

    def check_alive(self, *processes: subprocess.Popen) -> None:
        for process in processes:
            if process.poll() is not None:
                pytest.fail(f"A Celery process exited ({process.returncode}).\n{self.logs()}")

    def logs(self) -> str:
        return "\n".join(
            f"--- {label} ---\n{log.read_text(errors='replace')[-4000:]}"
            for label, _, log in self.processes
        )

    # The queue in Redis

    @contextmanager
    def routed(self):
        """Tasks queued by this process go to the queue instead of running eagerly."""
        eager, queue = app.conf.task_always_eager, app.conf.task_default_queue
        app.conf.task_always_eager = False
        app.conf.task_default_queue = self.queue
        try:
            yield
        finally:
            app.conf.task_always_eager, app.conf.task_default_queue = eager, queue

    def _unacked(self) -> dict[bytes, list]:
        """Messages taken from the queue and not acknowledged yet (tasks are acks_late: the
        ones running, reserved or waiting for their countdown, or whose worker died)."""
        unacked = {}
        for tag, raw in self.redis.hgetall("unacked").items():
            message, exchange, routing_key = json.loads(raw)
            if self.queue in (exchange, routing_key):
                unacked[tag] = message
        return unacked

    def idle(self) -> bool:
        return not self.redis.llen(self.queue) and not self._unacked()

    def redeliver_unacked(self) -> list[str]:
        """What Redis does once the visibility timeout (1 h) has passed: put the unacked
        messages of a dead worker back on the queue. The task names redelivered."""
        names = []
        for tag, message in self._unacked().items():
            message["headers"]["redelivered"] = True
            message["properties"]["delivery_info"]["redelivered"] = True
            self.redis.pipeline().hdel("unacked", tag).zrem("unacked_index", tag).lpush(
                self.queue, json.dumps(message)
            ).execute()
            names.append(message["headers"]["task"])
        return names

    def _forget_queue(self) -> None:
        for tag in self._unacked():
            self.redis.pipeline().hdel("unacked", tag).zrem("unacked_index", tag).execute()
        self.redis.delete(
            self.queue, f"_kombu.binding.{self.queue}", f"_kombu.binding_permanent.{self.queue}"
        )
        self.redis.close()


@pytest.fixture
def fake():
    with FakeSendGrid(api_key=API_KEY) as server:
        yield server


@pytest.fixture
def celery_processes(transactional_db, tmp_path, fake):
    processes = CeleryProcesses(tmp_path, fake)
    try:
        yield processes
    finally:
        processes.stop_all()


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


def run_status(run_id: int) -> str:
    return CampaignRun.objects.values_list("status", flat=True).get(pk=run_id)


def test_a_worker_killed_mid_request_is_resumed_and_everyone_gets_exactly_one_email(
    celery_processes, fake, manager, rep, teammate, other_rep, teams
):
    processes = celery_processes
    expected = customers_of([rep, teammate], 150, "killed.example")
    CustomerFactory(owner=other_rep, email="outsider@killed.example")  # not the manager's
    campaign = draft_campaign(manager)
    fake.delay = 0.3  # each batch of 10 takes 0.3 s, after SendGrid has accepted it
    _, first = processes.worker(concurrency=1)
    with processes.routed():
        campaign_send_now(actor=manager, campaign=campaign)

    # SIGKILL the worker just after its 4th request reached SendGrid: accepted there, but the
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
    messages = EmailMessage.objects.filter(run=run)
    assert messages.count() == len(expected)
    assert set(messages.values_list("status", flat=True)) == {"sent"}
    in_flight.refresh_from_db()
    assert (in_flight.status, in_flight.error) == ("sent", "Accepted before its worker stopped.")
    assert not SendBatch.objects.filter(run=run).exclude(status="sent").exists()
    campaign.refresh_from_db()
    assert campaign.status == EmailCampaign.Status.SENT
    assert (campaign.total_recipients, campaign.sent_count) == (150, 150)


def test_rate_limits_and_server_errors_are_retried_by_the_worker_with_backoff(
    celery_processes, fake, manager, rep, teammate, teams
):
    processes = celery_processes
    expected = customers_of([rep, teammate], 25, "retry.example")
    campaign = draft_campaign(manager)
    fake.fail_next(429)
    fake.fail_next(500)
    _, worker = processes.worker()
    with processes.routed():
        campaign_send_now(actor=manager, campaign=campaign)

    arrivals, deadline = [], time.monotonic() + 30
    while len(arrivals) < 5:  # 429, 500, then the three batches of 10, 10 and 5
        while len(arrivals) < fake.requests_seen:
            arrivals.append(time.monotonic())
        processes.check_alive(worker)
        assert time.monotonic() < deadline, f"{len(arrivals)} requests\n{processes.logs()}"
        time.sleep(0.005)
    run = CampaignRun.objects.get(campaign=campaign)
    wait_for(lambda: run_status(run.pk) == CampaignRun.Status.SENT, timeout=20,
             what="the run to finish", processes=processes, alive=[worker])  # fmt: skip
    wait_until_idle(processes, worker)

    # Exponential backoff from CAMPAIGN_RETRY_BASE_SECONDS=0.2: 0.2 s, then 0.4 s (the
    # default base of 2 s would wait 2 s, then 4 s).
    after_429, after_500 = arrivals[1] - arrivals[0], arrivals[2] - arrivals[1]
    assert 0.19 <= after_429 < 1.5, arrivals
    assert 0.39 <= after_500 < 1.9, arrivals
    recipients = fake.recipients()
    assert sorted(recipients) == sorted(expected)
    assert len(set(recipients)) == len(recipients)
    assert fake.requests_seen == 5
    batches = list(SendBatch.objects.filter(run=run).values_list("status", "error"))
    assert [status for status, _ in batches] == ["requeued", "requeued", "sent", "sent", "sent"]
    assert "429" in batches[0][1] and "500" in batches[1][1]
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
    celery_processes, fake, manager, rep, teammate, teams
):
    processes = celery_processes
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
