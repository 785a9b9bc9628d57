from celery import shared_task
from django.db import OperationalError

from customers.csv_import import customer_import_execute


@shared_task(
    name="customers.run_customer_import",
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=3,
    ignore_result=True,
)
def run_customer_import(import_id: int) -> None:
    """Import a CSV file in the background; safe to deliver twice (it runs once)."""
    customer_import_execute(import_id=import_id)


# Celery's autodiscovery reads <app>.tasks; the duplicates package's tasks live apart.
from customers.duplicates.tasks import (  # noqa: E402, F401
    bulk_merge,
    duplicates_scan,
    duplicates_scan_nightly,
)
