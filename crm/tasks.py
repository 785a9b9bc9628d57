from celery import shared_task

from crm.notifications import digests_send
from crm.realtime import events_prune
from crm.services import scheduler_heartbeat_record


@shared_task(name="crm.scheduler_heartbeat", ignore_result=True)
def scheduler_heartbeat() -> None:
    """Scheduled every minute by beat; /healthz reads how long ago it last ran."""
    scheduler_heartbeat_record(name="beat")


@shared_task(name="crm.realtime_events_prune", ignore_result=True)
def realtime_events_prune() -> None:
    """Nightly: events older than REALTIME_EVENT_DAYS (a client away longer reloads)."""
    events_prune()


@shared_task(name="crm.notification_digests_send", ignore_result=True)
def notification_digests_send() -> None:
    """Daily: the digest of unread notifications to those who chose it."""
    digests_send()
