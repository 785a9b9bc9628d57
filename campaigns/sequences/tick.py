"""The scheduler tick (campaigns.sequence_tick, every few minutes from beat): for each active
sequence whose send window is open, each step's due enrolments are judged against the stop
conditions, then queued in one statement as a run of the step's campaign and moved on to the
next step, in one transaction; the campaigns sender sends the run. So a step goes to each
enrolled lead exactly once, however often the tick runs or a worker dies: an enrolment moves
on in the transaction that queues its message, and the sender sends each message once."""

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from campaigns.models import CampaignRun, Sequence, SequenceEnrollment, SequenceStep
from campaigns.sending.recipients import messages_queue
from campaigns.sending.runs import send_run_later
from campaigns.sequences.stops import due_enrollments_stop
from campaigns.sequences.window import next_in_window, window_open
from customers.models import Customer

Enrollment = SequenceEnrollment.Status


def sequences_tick(*, now: datetime | None = None) -> int:
    """Queue every due step of every sequence open now; returns how many emails were queued."""
    now = now or timezone.now()
    queued = 0
    for sequence in Sequence.objects.filter(is_active=True).prefetch_related("steps"):
        if not window_open(start=sequence.window_start, end=sequence.window_end, now=now):
            continue
        steps = sorted(sequence.steps.all(), key=lambda step: step.position)
        _complete_past_last_step(sequence, len(steps), now)
        for index, step in enumerate(steps):
            following = steps[index + 1] if index + 1 < len(steps) else None
            queued += step_queue_due(sequence=sequence, step=step, following=following, now=now)
    return queued


def _complete_past_last_step(sequence: Sequence, step_count: int, now: datetime) -> None:
    """Enrolments waiting for a step that was removed have nothing left to get."""
    SequenceEnrollment.objects.filter(
        sequence=sequence, status=Enrollment.ACTIVE, next_position__gte=step_count
    ).update(status=Enrollment.COMPLETED, next_send_at=None, finished_at=now)


def step_queue_due(
    *, sequence: Sequence, step: SequenceStep, following: SequenceStep | None, now: datetime
) -> int:
    with transaction.atomic():
        due = SequenceEnrollment.objects.filter(
            sequence=sequence,
            status=Enrollment.ACTIVE,
            next_position=step.position,
            next_send_at__lte=now,
        )
        # Another tick running at once skips what this one holds (and vice versa).
        ids = list(due.select_for_update(skip_locked=True).values_list("pk", flat=True))
        if not ids:
            return 0
        held = SequenceEnrollment.objects.filter(pk__in=ids, status=Enrollment.ACTIVE)
        due_enrollments_stop(sequence=sequence, due=held, now=now)
        if not held.exists():
            return 0
        run = CampaignRun.objects.create(
            campaign_id=step.campaign_id,
            run_key=f"tick {now.isoformat()}",
            status=CampaignRun.Status.SENDING,
            started_at=now,
        )
        queued = messages_queue(
            customers=Customer.objects.filter(pk__in=held.values("customer_id")), run=run
        )
        if following is None:
            held.update(status=Enrollment.COMPLETED, next_position=F("next_position") + 1,
                        next_send_at=None, finished_at=now)  # fmt: skip
        else:
            send_at = next_in_window(
                start=sequence.window_start,
                end=sequence.window_end,
                moment=now + timedelta(days=following.delay_days),
            )
            held.update(next_position=F("next_position") + 1, next_send_at=send_at)
        CampaignRun.objects.filter(pk=run.pk).update(total=queued)
        send_run_later(run.pk)
    return queued
