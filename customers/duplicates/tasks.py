"""Thin tasks over customers.duplicates.services (imported by customers.tasks, which Celery
finds)."""

from celery import shared_task
from django.db import OperationalError

from customers.duplicates import services


@shared_task(
    name="customers.duplicates_scan",
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=3,
    ignore_result=True,
)
def duplicates_scan(job_id: int) -> None:
    """Run a queued scan; a second delivery of a finished one does nothing."""
    services.duplicate_scan_run(job_id=job_id)


@shared_task(name="customers.duplicates_scan_nightly", ignore_result=True)
def duplicates_scan_nightly() -> None:
    """Beat's nightly scan: queues one unless one is already queued or running."""
    services.duplicate_scan_start()


@shared_task(
    name="customers.duplicates_bulk_merge",
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=3,
    ignore_result=True,
)
def bulk_merge(job_id: int) -> None:
    services.bulk_merge_run(job_id=job_id)
