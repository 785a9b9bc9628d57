"""Runs: one send of a campaign (the send of a one-off campaign, or one firing of a recurring
one). Starting a run resolves its recipients once; a run ends sent, paused or cancelled."""

from datetime import timedelta

from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django_celery_beat.models import ClockedSchedule, PeriodicTask

from campaigns.models import CampaignRun, EmailCampaign, EmailMessage, SendBatch
from campaigns.sending.batches import outside_batches
from campaigns.sending.counters import campaign_counters_refresh
from campaigns.sending.notices import campaign_author_notify, campaign_progress_push
from campaigns.sending.recipients import recipients_insert, recipients_skipped
from campaigns.states import (
    STOPS_SENDING,
    Move,
    Status,
    can_move,
    move_to,
    sources,
    status_after_run,
)


def run_start(*, campaign_id: int, run_key: str) -> CampaignRun | None:
    """Create the run and its EmailMessage rows (once: a repeated call finds the run), then
    queue the sender after commit. None when the campaign is not due to send."""
    with transaction.atomic():
        campaign = (
            EmailCampaign.objects.select_for_update(of=("self",))
            .select_related("segment", "created_by")
            .filter(pk=campaign_id)
            .first()
        )
        if campaign is None or not can_move(campaign.status, Move.RUN_START):
            return None
        run, created = CampaignRun.objects.get_or_create(campaign=campaign, run_key=run_key)
        if created and not campaign.is_recurring:
            _one_off_schedule_remove(campaign)
        if created or run.status == CampaignRun.Status.RESOLVING:
            run.total = recipients_insert(campaign, run)
            run.skipped = recipients_skipped(campaign)
            run.status = CampaignRun.Status.SENDING
            run.save(update_fields=["total", "skipped", "status"])
            move_to(campaign, Move.RUN_START, Status.SENDING)
            campaign.updated_at = timezone.now()
            campaign.save(update_fields=["status", "updated_at"])
            campaign_counters_refresh(campaign_ids=[campaign.pk])
            campaign_progress_push(campaign_id=campaign.pk)
        if run.status == CampaignRun.Status.SENDING:
            send_run_later(run.pk)
    return run


def _one_off_schedule_remove(campaign: EmailCampaign) -> None:
    """A fired one-off schedule has done its job; left linked, a resume would re-enable it."""
    if campaign.periodic_task_id:
        task = PeriodicTask.objects.filter(pk=campaign.periodic_task_id).first()
        campaign.periodic_task = None
        campaign.save(update_fields=["periodic_task"])
        if task:
            clocked_id = task.clocked_id
            task.delete()
            ClockedSchedule.objects.filter(pk=clocked_id).delete()


def send_run_later(run_id: int) -> None:
    from campaigns.tasks import send_run

    transaction.on_commit(lambda: send_run.delay(run_id))


def campaign_status(run: CampaignRun) -> str:
    """The run's campaign's status now (a manager may pause or cancel it mid-send)."""
    return EmailCampaign.objects.values_list("status", flat=True).get(pk=run.campaign_id)


def run_stop_if_asked(run: CampaignRun, *, status: str) -> str | None:
    """Between batches, `status` the campaign's as just read (campaign_status): "paused" or
    "cancelled" when it was, else None."""
    if status == Status.PAUSED:
        CampaignRun.objects.filter(pk=run.pk, status=CampaignRun.Status.SENDING).update(
            status=CampaignRun.Status.PAUSED
        )
        return "paused"
    if status == Status.CANCELLED:
        with transaction.atomic():
            runs_cancel(runs=CampaignRun.objects.filter(pk=run.pk).unfinished())
        return "cancelled"
    return None


def runs_cancel(*, runs: QuerySet[CampaignRun]) -> None:
    """Cancel the runs and their queued messages, but not the recipients of a batch in
    flight: its sender marks them sent when it returns."""
    in_flight = SendBatch.objects.filter(run__in=runs, status=SendBatch.Status.SENDING)
    queued = EmailMessage.objects.filter(run__in=runs, status=EmailMessage.Status.QUEUED)
    outside_batches(queued, in_flight).update(status=EmailMessage.Status.CANCELLED)
    runs.update(status=CampaignRun.Status.CANCELLED, finished_at=timezone.now())


def run_finish(run: CampaignRun) -> None:
    """The run's last batch went out: it is sent, and so is its campaign when nothing else
    is unfinished (a recurring one waits for its next firing)."""
    with transaction.atomic():
        campaign = EmailCampaign.objects.select_for_update().get(pk=run.campaign_id)
        CampaignRun.objects.filter(pk=run.pk).update(
            status=CampaignRun.Status.SENT, finished_at=timezone.now()
        )
        status = status_after_run(
            campaign, other_runs_unfinished=campaign.runs.exclude(pk=run.pk).unfinished().exists()
        )
        if status:
            move_to(campaign, Move.RUN_FINISH, status)
            campaign.save(update_fields=["status"])
        campaign_counters_refresh(campaign_ids=[campaign.pk])
        total = CampaignRun.objects.values_list("total", flat=True).get(pk=run.pk)
        campaign_author_notify(
            campaign_id=campaign.pk, what=f"finished sending to {total:,} recipients."
        )


def run_give_up(*, run_id: int, reason: str) -> None:
    """Retries ran out: pause the run and its campaign with the reason; Resume retries."""
    with transaction.atomic():
        run = CampaignRun.objects.select_for_update().filter(pk=run_id).first()
        if run is None or run.status != CampaignRun.Status.SENDING:
            return
        run.status = CampaignRun.Status.PAUSED
        run.last_error = reason
        run.lease_owner, run.lease_until = "", None
        run.save(update_fields=["status", "last_error", "lease_owner", "lease_until"])
        EmailCampaign.objects.filter(
            pk=run.campaign_id, status__in=sources(Move.RUN_GIVE_UP)
        ).update(status=Status.PAUSED)
        campaign_counters_refresh(campaign_ids=[run.campaign_id])
        campaign_author_notify(
            campaign_id=run.campaign_id, what=f"paused: the provider kept refusing ({reason})."
        )
        campaign_progress_push(campaign_id=run.campaign_id)


def stalled_runs() -> list[int]:
    """Runs still sending whose sender's lease lapsed: their worker died."""
    return list(
        CampaignRun.objects.filter(status=CampaignRun.Status.SENDING)
        .exclude(campaign__status__in=STOPS_SENDING)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=timezone.now()))
        .values_list("pk", flat=True)
    )


def cron_run_key(expression: str, now) -> str:
    """The minute of the latest firing of `expression` at or before `now` (local time): the
    same for every delivery of one firing, however late a redelivered task runs."""
    from celery.schedules import crontab

    minute, hour, day_of_month, month, day_of_week = expression.split()
    schedule = crontab(minute, hour, day_of_week, day_of_month, month)
    moment = timezone.localtime(now).replace(second=0, microsecond=0)
    for _ in range(3 * 366 + 24 * 60):  # whole days, then hours, then minutes are skipped
        if not (
            moment.day in schedule.day_of_month
            and moment.month in schedule.month_of_year
            and moment.isoweekday() % 7 in schedule.day_of_week
        ):
            moment = moment.replace(hour=23, minute=59) - timedelta(days=1)
        elif moment.hour not in schedule.hour:
            moment = moment.replace(minute=59) - timedelta(hours=1)
        elif moment.minute not in schedule.minute:
            moment -= timedelta(minutes=1)
        else:
            return moment.strftime("%Y-%m-%dT%H:%M")
    return timezone.localtime(now).strftime("%Y-%m-%dT%H:%M")
