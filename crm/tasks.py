from celery import shared_task

from crm.services import scheduler_heartbeat_record


@shared_task(name="crm.scheduler_heartbeat", ignore_result=True)
def scheduler_heartbeat() -> None:
    """Scheduled every minute by beat; /healthz reads how long ago it last ran."""
    scheduler_heartbeat_record(name="beat")
