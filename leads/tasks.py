from celery import shared_task
from django.db import OperationalError

from leads.services.rescore import leads_rescore, rescore_run_execute
from leads.services.workflows import workflow_run_execute


@shared_task(
    name="leads.rescore_leads",
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=5,
    ignore_result=True,
)
def rescore_leads(customer_ids: list[int], start_workflows: bool = True) -> None:
    leads_rescore(customer_ids=customer_ids, start_workflows=start_workflows)


@shared_task(
    name="leads.rescore_all",
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=3,
    ignore_result=True,
    time_limit=60 * 60,
)
def rescore_all() -> None:
    """Nightly: engagement decays with time, so every lead is rescored."""
    leads_rescore()


@shared_task(
    name="leads.run_workflow",
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=5,
    ignore_result=True,
)
def run_workflow(run_id: int) -> None:
    """The hot/warm workflow of one grade transition; a repeated delivery does nothing."""
    workflow_run_execute(run_id=run_id)


@shared_task(name="leads.rescore_all_tracked", ignore_result=True, time_limit=60 * 60)
def rescore_all_tracked(run_id: int) -> None:
    """Rescore every lead after the rules changed; the rules page shows the progress."""
    rescore_run_execute(run_id=run_id)
