"""Thin tasks over campaigns.sending / campaigns.webhooks; all safe to run twice."""

from celery import shared_task
from django.conf import settings
from django.db import OperationalError
from django.utils import timezone

from campaigns import providers, sending, webhooks
from campaigns.drafts import draft_send_automatically
from campaigns.models import CustomerSegment, EmailCampaign
from campaigns.sending.provider import TransientSendError
from campaigns.sequences.tick import sequences_tick
from campaigns.services import segment_count_refresh


@shared_task(
    name="campaigns.start_run",
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=5,
    ignore_result=True,
)
def start_run(campaign_id: int, run_key: str = "once") -> None:
    sending.run_start(campaign_id=campaign_id, run_key=run_key)


@shared_task(
    name="campaigns.start_cron_run",
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=5,
    ignore_result=True,
    time_limit=30 * 60,
)
def start_cron_run(campaign_id: int) -> None:
    """One firing of a recurring campaign. The run is keyed by the minute of the firing (of
    the beat schedule itself, which may have been edited in Django admin), so a duplicate or
    late redelivery of the same firing finds the run and sends nobody twice."""
    campaign = (
        EmailCampaign.objects.select_related("periodic_task__crontab")
        .filter(pk=campaign_id)
        .first()
    )
    if campaign is None or not campaign.cron_expression:
        return
    expression = campaign.cron_expression
    crontab = campaign.periodic_task.crontab if campaign.periodic_task else None
    if crontab is not None:
        expression = " ".join(
            [crontab.minute, crontab.hour, crontab.day_of_month, crontab.month_of_year,
             crontab.day_of_week]
        )  # fmt: skip
    run_key = sending.cron_run_key(expression, timezone.now())
    sending.run_start(campaign_id=campaign_id, run_key=run_key)


@shared_task(
    bind=True,
    name="campaigns.send_run",
    ignore_result=True,
    time_limit=60 * 60,
    soft_time_limit=55 * 60,
)
def send_run(self, run_id: int) -> None:
    retries = self.request.retries
    # Exponential backoff: 2, 4, 8 … seconds by default.
    countdown = settings.CAMPAIGN_RETRY_BASE_SECONDS * 2**retries
    try:
        sending.run_send(run_id=run_id, sender=self.request.id, hold_seconds=countdown)
    except TransientSendError as error:
        if retries >= settings.CAMPAIGN_MAX_RETRIES:
            sending.run_give_up(
                run_id=run_id,
                reason=f"Paused after {retries} retries: {error}. Resume to try again.",
            )
            return
        raise self.retry(exc=error, countdown=countdown, max_retries=None) from error


@shared_task(name="campaigns.resume_stalled_runs", ignore_result=True)
def resume_stalled_runs() -> None:
    """Every minute from beat: a run whose worker died (lease lapsed) gets a new sender."""
    for run_id in sending.stalled_runs():
        send_run.delay(run_id)


@shared_task(
    name="campaigns.process_events",
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=5,
    ignore_result=True,
)
def process_events() -> None:
    webhooks.events_process()


@shared_task(name="campaigns.refresh_segment_counts", ignore_result=True)
def refresh_segment_counts() -> None:
    for segment in CustomerSegment.objects.select_related("created_by"):
        segment_count_refresh(segment=segment)


@shared_task(
    name="campaigns.sequence_tick",
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=3,
    ignore_result=True,
)
def sequence_tick() -> None:
    """Queue every due sequence step (each becomes a run the sender sends)."""
    sequences_tick()


@shared_task(
    name="campaigns.send_draft",
    autoretry_for=(OperationalError, TransientSendError),
    retry_backoff=True,
    max_retries=5,
    ignore_result=True,
)
def send_draft(draft_id: int) -> None:
    """A lead workflow's draft, sent by itself (the managers chose automatic sending)."""
    draft_send_automatically(draft_id=draft_id)


@shared_task(
    name="campaigns.mailgun_connect",
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=3,
    ignore_result=True,
    time_limit=60 * 60,
)
def mailgun_connect() -> None:
    """From beat: a newly configured Mailgun domain gets its suppressions imported once."""
    providers.mailgun_connect()


@shared_task(
    name="campaigns.import_mailgun_suppressions",
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=3,
    ignore_result=True,
    time_limit=60 * 60,
)
def import_mailgun_suppressions(connection_id: int) -> None:
    """The admin's "import again": read Mailgun's suppression lists once more."""
    providers.mailgun_suppressions_import(connection_id=connection_id)
