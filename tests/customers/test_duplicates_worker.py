"""A real Celery worker process (Redis, the test database, not eager mode) runs the
duplicates scan that "scan now" queues, reporting progress until it is done."""

import time

import pytest

from customers.duplicates import services
from customers.duplicates.models import DuplicateJob, DuplicatePair
from tests.factories import CustomerFactory

pytestmark = pytest.mark.worker


def test_a_real_worker_runs_the_scan_that_scan_now_queued(real_worker, manager, rep, teams):
    a = CustomerFactory(owner=rep, name="Ingrid Bergman", phone="+46 8 123 456 78")
    b = CustomerFactory(owner=rep, name="Ingrid Bergmann", phone="08-12345678")
    real_worker.worker(pool="solo")
    with real_worker.routed():
        job = services.duplicate_scan_start(actor=manager)  # queued after commit
    deadline = time.monotonic() + 120
    while DuplicateJob.objects.get(pk=job.pk).is_active:
        assert time.monotonic() < deadline, "the worker never finished the scan"
        time.sleep(0.3)
    job.refresh_from_db()
    assert job.status == DuplicateJob.Status.DONE, job.error
    assert job.percent == 100 and job.pair_count == 1
    pair = DuplicatePair.objects.get()
    assert (pair.customer_a_id, pair.customer_b_id) == (a.pk, b.pk)
    assert pair.found_by == job and "same phone" in pair.reasons
