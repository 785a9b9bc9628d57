"""Real Celery workers killed in the middle of a first import, once while it pulls and once
after HubSpot accepted a batch of created contacts but before the ledger kept their ids: the
run's lease lapses, it is resumed from its saved position, and every record arrives exactly
once on each side."""

import time
from datetime import UTC, datetime

import pytest
from cryptography.fernet import Fernet

from customers.models import Customer
from customers.services import customers_sync_write
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
        "SYNC_TIMEOUT_SECONDS": "30",  # the held answer below must not time out first
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
    # The CRM's own customers, sent to HubSpot by the first import (push_existing).
    customers_sync_write(
        actor=admin_user,
        creates=[{"name": f"Local {i}", "email": f"l{i}@crm.example", "owner_id": admin_user.pk}
                 for i in range(250)],
        updates=[], via="test",
    )  # fmt: skip
    local = Customer.objects.filter(email__endswith="@crm.example")
    local_ids = set(local.values_list("pk", flat=True))
    fake.delay = 0.15  # each page waits: room to kill the worker between pages
    connection = connection_create(
        actor=admin_user,
        data={"name": "Hub", "provider": Connection.Provider.HUBSPOT,
              "auth_flow": Connection.AuthFlow.TOKEN, "push_existing": True},
    secrets={"access_token": HUBSPOT_TOKEN},
    )  # fmt: skip
    _, first = processes.worker(concurrency=1)
    with processes.routed():
        run = sync_start(connection=connection, actor=admin_user)

    imported_count = Customer.objects.filter(email__endswith="@killed.example").count
    wait_for(lambda: imported_count() >= 500, timeout=60, what="some pages imported",
             processes=processes, alive=[first])  # fmt: skip
    processes.kill(first)
    assert 0 < imported_count() < len(emails)
    run.refresh_from_db()
    assert run.status == SyncRun.Status.RUNNING
    assert run.position["phase"] == "first:contacts"

    # The lease lapses (2 s); beat's resume task queues it again, and Redis hands the killed
    # task out again too: both race for the run, one claims it.
    time.sleep(2.5)
    assert processes.redeliver_unacked() == ["integrations.sync_run"]
    # The resumed run pulls the rest, then sends the CRM's customers: HubSpot takes the
    # first batch and holds its answer back, and that worker dies before the ledger has the
    # new records' ids.
    fake.hold_answer_next("/crm/v3/objects/contacts/batch/upsert")
    with processes.routed():
        resume_stalled_task.apply_async()
    _, second = processes.worker(concurrency=2)
    wait_for(fake.held.is_set, timeout=90, what="HubSpot taking the first batch of creates",
             processes=processes, alive=[second])  # fmt: skip
    processes.kill(second)
    assert len(fake.live("contacts")) == len(emails) + 100
    assert not SyncLink.objects.filter(local_model="customer", local_id__in=local_ids).exists()
    run.refresh_from_db()
    assert (run.status, run.position["phase"]) == (SyncRun.Status.RUNNING, "push:contacts")

    time.sleep(2.5)
    # The killed worker was working the run in the redelivered task or in the resume task
    # (whose queued run a worker's test settings run eagerly, inside it): whichever it was
    # goes back on the queue.
    redelivered = set(processes.redeliver_unacked())
    assert redelivered and redelivered <= {
        "integrations.sync_run", "integrations.resume_stalled_runs",
    }  # fmt: skip
    with processes.routed():
        resume_stalled_task.apply_async()
    _, third = processes.worker(concurrency=1)
    wait_for(
        lambda: SyncRun.objects.get(pk=run.pk).status == SyncRun.Status.SUCCEEDED,
        timeout=90, what="the resumed run", processes=processes, alive=[third],
    )  # fmt: skip
    imported = Customer.objects.exclude(pk__in=local_ids)
    assert sorted(imported.values_list("email", flat=True)) == sorted(emails)
    links = SyncLink.objects.filter(object_type="contacts")
    assert links.count() == len(emails) + len(local_ids)
    assert len(set(links.values_list("local_id", flat=True))) == len(emails) + len(local_ids)
    # HubSpot has each CRM customer once: the batch sent again found the records it made.
    assert len(fake.live("contacts")) == len(emails) + len(local_ids)
    keys = fake.unique_values("contacts", "crm_record_id")
    connection.refresh_from_db()
    assert sorted(keys) == sorted(connection.remote_key(pk) for pk in local_ids)
    for link in links.filter(local_id__in=local_ids):
        record = fake.get("contacts", int(link.remote_id))
        assert record.properties["crm_record_id"] == connection.remote_key(link.local_id)
