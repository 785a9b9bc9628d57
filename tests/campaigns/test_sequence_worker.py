"""A sequence step sent by real Celery processes against Redis and the test database (not
eager mode), through the fake SendGrid: a worker killed mid-step is resumed and every
enrolled lead gets that step exactly once, and the next step too.

The tick runs here, in the test process, at explicit moments inside the send window (a real
clock may stand on a weekend); the runs it queues go to the worker, as beat's tick would
queue them. The processes are configured as in test_campaign_worker.py."""

import time
import uuid
from collections import Counter
from datetime import date, datetime, timedelta
from datetime import time as time_of_day

import pytest
from django.utils import timezone

from campaigns import sending
from campaigns.models import CampaignRun, EmailMessage, SendBatch, SequenceEnrollment
from campaigns.sequences.enrolment import customers_enrol
from campaigns.sequences.tick import sequences_tick
from campaigns.tasks import resume_stalled_runs
from customers.models import Customer
from tests.campaigns.test_campaign_worker import run_status, wait_for, wait_until_idle
from tests.factories import CustomerFactory, sequence_build
from tests.fakes.sendgrid_server import FakeSendGrid

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

API_KEY = "SG.sequence-worker-test"
MONDAY = date(2030, 1, 7)
DOMAIN = "seq-killed.example"
LEADS = 120


def at(on: date, hour: int) -> datetime:
    return timezone.make_aware(datetime.combine(on, time_of_day(hour)))


@pytest.fixture
def fake():
    with FakeSendGrid(api_key=API_KEY) as server:
        yield server


@pytest.fixture
def real_worker_env(fake):
    """The production settings, configured by environment like a deployment."""
    return {
        "DJANGO_SETTINGS_MODULE": "crm.settings",
        "DEBUG": "false",
        "SECRET_KEY": f"sequence-worker-test-{uuid.uuid4().hex}",
        "LOG_LEVEL": "WARNING",
        "SENDGRID_API_KEY": API_KEY,
        "SENDGRID_API_HOST": fake.url,
        "SENDGRID_TIMEOUT_SECONDS": "0.6",  # the lease is at least 3 timeouts
        "CAMPAIGN_BATCH_SIZE": "10",
        "CAMPAIGN_SEND_LEASE_SECONDS": "2",
        "CAMPAIGN_RETRY_BASE_SECONDS": "0.2",
    }


def deliveries(fake) -> Counter:
    """(address, campaign id) of every personalization SendGrid accepted, counted."""
    return Counter(
        (personalization["to"][0]["email"], int(request.payload["custom_args"]["campaign_id"]))
        for request in fake.accepted
        for personalization in request.payload["personalizations"]
    )


def test_a_worker_killed_mid_step_resumes_and_every_lead_gets_each_step_exactly_once(
    real_worker, fake, manager, rep, teammate, other_rep, teams
):
    processes = real_worker
    owners = [rep, teammate]
    leads = [
        CustomerFactory(owner=owners[i % 2], email=f"lead{i}@{DOMAIN}", lifecycle_stage="lead")
        for i in range(LEADS)
    ]
    CustomerFactory(owner=other_rep, email=f"not-enrolled@{DOMAIN}")
    sequence = sequence_build(actor=manager, steps=[(None, 0), (None, 2)])
    first, second = sequence.steps.order_by("position")
    enrolled = customers_enrol(
        sequence=sequence, customers=Customer.objects.filter(pk__in=[c.pk for c in leads]),
        now=at(MONDAY, 10),
    )  # fmt: skip
    assert enrolled == LEADS
    expected = sorted(lead.email for lead in leads)

    fake.delay = 0.3  # each batch of 10 takes 0.3 s, after SendGrid has accepted it
    _, worker = processes.worker(concurrency=1)
    with processes.routed():
        assert sequences_tick(now=at(MONDAY, 10)) == LEADS

    # SIGKILL the worker just after its 4th request reached SendGrid: accepted there, but the
    # worker dies waiting for the answer, its batch still `sending` in the database.
    seen, deadline = fake.requests_seen, time.monotonic() + 30
    while True:
        arrived = fake.requests_seen
        if arrived > seen and arrived >= 4:
            processes.kill(worker)
            break
        seen = arrived
        processes.check_alive(worker)
        assert time.monotonic() < deadline, f"no 4th request\n{processes.logs()}"
        time.sleep(0.005)
    run = CampaignRun.objects.get(campaign_id=first.campaign_id)
    in_flight = SendBatch.objects.get(run=run, status=SendBatch.Status.SENDING)
    accepted_before = len(fake.recipients())
    assert 0 < accepted_before < LEADS
    assert EmailMessage.objects.filter(run=run, status="sent").count() == (
        accepted_before - in_flight.size
    )
    # The enrolments moved on with the run they were queued in: a tick meanwhile (or a
    # second delivery of beat's tick) queues none of them again.
    assert set(SequenceEnrollment.objects.values_list("next_position", flat=True)) == {1}
    with processes.routed():
        assert sequences_tick(now=at(MONDAY, 11)) == 0

    # The dead sender's lease lapses after CAMPAIGN_SEND_LEASE_SECONDS=2: the run is stalled.
    wait_for(lambda: sending.stalled_runs() == [run.pk], timeout=10, what="a stalled run",
             processes=processes)  # fmt: skip
    with processes.routed():
        resume_stalled_runs.apply_async()
    # The killed task comes back too (acks_late); the resumed and the redelivered sender
    # race for the run on the next worker's two processes.
    assert processes.redeliver_unacked() == ["campaigns.send_run"]
    _, worker = processes.worker(concurrency=2)
    wait_for(lambda: run_status(run.pk) == CampaignRun.Status.SENT, timeout=30,
             what="the resumed step to finish", processes=processes, alive=[worker])  # fmt: skip
    wait_until_idle(processes, worker)

    assert sorted(fake.recipients()) == expected, "someone missed or got another email"
    assert set(deliveries(fake).values()) == {1}
    messages = EmailMessage.objects.filter(run=run)
    assert messages.count() == LEADS
    assert set(messages.values_list("status", flat=True)) == {"sent"}
    in_flight.refresh_from_db()
    assert (in_flight.status, in_flight.error) == ("sent", "Accepted before its worker stopped.")

    # The next step, two days later, goes to every lead once as well.
    fake.delay = 0
    with processes.routed():
        assert sequences_tick(now=at(MONDAY + timedelta(days=2), 10)) == LEADS
    step_run = wait_for(
        lambda: CampaignRun.objects.filter(campaign_id=second.campaign_id, status="sent").first(),
        timeout=30, what="the second step to be sent", processes=processes, alive=[worker],
    )  # fmt: skip
    wait_until_idle(processes, worker)
    assert step_run.total == LEADS
    assert deliveries(fake) == Counter(
        {(email, step.campaign_id): 1 for email in expected for step in (first, second)}
    )
    assert set(SequenceEnrollment.objects.values_list("status", flat=True)) == {"completed"}
