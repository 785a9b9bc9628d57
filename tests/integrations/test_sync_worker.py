"""A real Celery worker killed in the middle of a first import: the run's lease lapses, it is
resumed from its saved page, and every record arrives exactly once."""

import time
from datetime import UTC, datetime

import pytest
from cryptography.fernet import Fernet

from customers.models import Customer
from integrations.models import Connection, SyncLink, SyncRun
from integrations.services.connections import connection_create
from integrations.services.runs import sync_start
from integrations.tasks import resume_stalled_task
from tests.fakes.hubspot_server import FakeHubSpot
from tests.integrations.conftest import HUBSPOT_TOKEN

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]

SECRETS_KEY = Fernet.generate_key().decode()


@pytest.fixture
def fake():
    with FakeHubSpot(access_token=HUBSPOT_TOKEN, rate_limit=10_000) as server:
        yield server


@pytest.fixture
def real_worker_env(fake):
    return {
        "HUBSPOT_API_URL": fake.url,
        "SYNC_SECRETS_KEY": SECRETS_KEY,
        "SYNC_SETTLE_SECONDS": "0",
        "SYNC_LEASE_SECONDS": "2",
        "SYNC_TIMEOUT_SECONDS": "5",
        "CELERY_TASK_ALWAYS_EAGER": "false",
    }


def wait_for(condition, *, timeout: float, what: str, processes, alive=()):
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        processes.check_alive(*alive)
        if time.monotonic() > deadline:
            pytest.fail(f"Timed out after {timeout} s waiting for {what}.\n{processes.logs()}")
        time.sleep(0.05)
    return result


def test_a_worker_killed_mid_import_resumes_without_duplicates(
    real_worker, fake, admin_user, settings
):
    settings.SYNC_SECRETS_KEY = SECRETS_KEY
    processes = real_worker
    emails = [f"k{i}@killed.example" for i in range(2_000)]
    fake.put_many(
        "contacts", [{"email": e, "firstname": "K"} for e in emails], at=datetime.now(UTC)
    )
    fake.delay = 0.15  # each page waits: room to kill the worker between pages
    connection = connection_create(
        actor=admin_user,
        data={"name": "Hub", "provider": Connection.Provider.HUBSPOT,
              "auth_flow": Connection.AuthFlow.TOKEN},
    secrets={"access_token": HUBSPOT_TOKEN},
    )  # fmt: skip
    _, first = processes.worker(concurrency=1)
    with processes.routed():
        run = sync_start(connection=connection, actor=admin_user)

    wait_for(lambda: Customer.objects.count() >= 500, timeout=60, what="some pages imported",
             processes=processes, alive=[first])  # fmt: skip
    processes.kill(first)
    imported = Customer.objects.count()
    assert 0 < imported < len(emails)
    run.refresh_from_db()
    assert run.status == SyncRun.Status.RUNNING
    assert run.position["phase"] == "first:contacts"

    # The lease lapses (2 s); beat's resume task queues it again, and Redis hands the killed
    # task out again too: both race for the run, one claims it.
    time.sleep(2.5)
    assert processes.redeliver_unacked() == ["integrations.sync_run"]
    with processes.routed():
        resume_stalled_task.apply_async()
    _, second = processes.worker(concurrency=2)
    wait_for(
        lambda: SyncRun.objects.get(pk=run.pk).status == SyncRun.Status.SUCCEEDED,
        timeout=90, what="the resumed run", processes=processes, alive=[second],
    )  # fmt: skip
    assert sorted(Customer.objects.values_list("email", flat=True)) == sorted(emails)
    assert SyncLink.objects.filter(object_type="contacts").count() == len(emails)
    assert len(
        set(SyncLink.objects.filter(object_type="contacts").values_list("local_id", flat=True))
    ) == len(emails)
