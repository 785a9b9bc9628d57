from celery import shared_task
from django.db import OperationalError

from integrations.services import runs


@shared_task(
    name="integrations.sync_run",
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=5,
    acks_late=True,
)
def sync_run_task(run_id: int) -> None:
    runs.sync_run_execute(run_id=run_id)


@shared_task(name="integrations.sync_all")
def sync_all_task() -> int:
    return runs.sync_all_start()


@shared_task(name="integrations.resume_stalled_runs")
def resume_stalled_task() -> int:
    return runs.sync_resume_stalled()
