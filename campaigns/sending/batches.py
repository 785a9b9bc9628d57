"""Batches: up to CAMPAIGN_BATCH_SIZE queued messages of a run handed to the provider in one
request, exactly once.

A batch is claimed (a SendBatch row naming an id range of queued messages) and committed
before the request, and its messages are marked sent after it. A batch still `sending` when
a new sender takes over was in flight when its worker died: the provider is asked whether it
accepted it (the batch key goes along with the request), and its messages are marked sent or
left queued for the next claim.
"""

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Case, F, QuerySet, Value, When
from django.utils import timezone

from campaigns.models import CampaignRun, EmailMessage, SendBatch
from campaigns.sending.leases import lease_renew
from campaigns.sending.notices import campaign_author_notify
from campaigns.sending.provider import (
    InFlight,
    OutcomeUnknown,
    OutgoingBatch,
    PermanentSendError,
    Provider,
    ProviderCannotTell,
    TransientSendError,
)
from campaigns.sending.recipients import recipients_personalised
from campaigns.templating import SubstitutionPlan
from crm.bulk import filter_in
from customers.email_gate import EmailKind, Refusal, with_email_refusal

Message = EmailMessage.Status
# Statuses only provider events set; a message can reach them before its batch is marked sent.
LATER_STATUSES = [
    Message.DELIVERED,
    Message.OPENED,
    Message.CLICKED,
    Message.BOUNCED,
    Message.DROPPED,
    Message.UNSUBSCRIBED,
]


def outside_batches(messages: QuerySet, batches) -> QuerySet:
    """`messages` without those of `batches` (their id ranges within their runs)."""
    for batch in batches:
        messages = messages.exclude(
            run_id=batch.run_id, id__gte=batch.first_message_id, id__lte=batch.last_message_id
        )
    return messages


def batch_messages(batch: SendBatch, *statuses: str) -> QuerySet:
    return EmailMessage.objects.filter(
        run_id=batch.run_id,
        id__gte=batch.first_message_id,
        id__lte=batch.last_message_id,
        status__in=statuses or [Message.QUEUED],
    )


def batch_claim(
    run: CampaignRun, sender: str, *, skip: list[SendBatch] = (), after: int = 0
) -> SendBatch | None:
    """The next batch of queued messages, in id order, after the message `after` and outside
    the batches in `skip`. The email gate judges each message's customer again: who
    unsubscribed, withdrew consent or got suppressed since the run started is cancelled here
    with the reason, not sent.

    `after` is where the sender's previous claim ended (0: the run's first message): the
    claim reads from there on the run's (run, status, id) index instead of walking every
    message sent before it, which made each claim dearer than the last. A batch stops
    before the next batch of `skip`: its id range must not take in another batch's
    messages, still queued while they are in flight."""
    with transaction.atomic():
        if not lease_renew(run.pk, sender):
            return None  # another sender took over: this one was presumed dead
        while True:
            queued = EmailMessage.objects.filter(run=run, status=Message.QUEUED, id__gt=after)
            rows = list(
                with_email_refusal(
                    outside_batches(queued, skip), EmailKind.MARKETING, prefix="customer__"
                )
                .order_by("id")
                .values_list("id", "email_refusal")[: settings.CAMPAIGN_BATCH_SIZE]
            )
            if not rows:
                return None
            in_flight_ahead = [b.first_message_id for b in skip if b.first_message_id > rows[0][0]]
            if in_flight_ahead:
                rows = [row for row in rows if row[0] < min(in_flight_ahead)]
            refused: dict[str, list[int]] = {}
            for pk, refusal in rows:
                if refusal:
                    refused.setdefault(refusal, []).append(pk)
            if refused:
                _cancel_refused(run, refused)
            ids = [pk for pk, refusal in rows if not refusal]
            if ids:
                return SendBatch.objects.create(
                    run=run, size=len(ids), first_message_id=ids[0], last_message_id=ids[-1]
                )
            after = rows[-1][0]


def _cancel_refused(run: CampaignRun, refused: dict[str, list[int]]) -> None:
    """Cancel the refused messages, each with its reason, and count them on the run."""
    for refusal, ids in refused.items():
        EmailMessage.objects.filter(pk__in=ids).update(
            status=Message.CANCELLED,
            error=f"Not sent: {Refusal(refusal).label} (found just before its batch went).",
        )
    locked = CampaignRun.objects.select_for_update().only("skipped").get(pk=run.pk)
    skipped = dict(locked.skipped)
    for refusal, ids in refused.items():
        skipped[refusal] = skipped.get(refusal, 0) + len(ids)
    CampaignRun.objects.filter(pk=run.pk).update(skipped=skipped)


def batch_outgoing(run: CampaignRun, batch: SendBatch, plan: SubstitutionPlan) -> OutgoingBatch:
    """The batch as any provider takes it: the bodies once, each recipient's values."""
    return OutgoingBatch(
        key=batch.key,
        campaign_id=run.campaign_id,
        from_email=settings.DEFAULT_FROM_EMAIL,
        subject=plan.subject,
        html=plan.html,
        text=plan.text,
        recipients=recipients_personalised(batch_messages(batch), plan),
    )


def batch_send(
    provider: Provider, run: CampaignRun, batch: SendBatch, plan: SubstitutionPlan
) -> None:
    """One request. A 429/5xx re-queues the batch and raises TransientSendError (the task
    retries with backoff); no answer at all (OutcomeUnknown) leaves it in flight for the
    provider to judge; a 4xx fails it with the provider's reason."""
    outgoing = batch_outgoing(run, batch, plan)
    try:
        accepted = provider.send_batch(outgoing)
    except OutcomeUnknown as error:
        # Perhaps accepted: re-queued, it could go twice. It stays in flight, and the next
        # sender asks the provider (batches_reconcile), as after a crash.
        CampaignRun.objects.filter(pk=batch.run_id).update(last_error=str(error))
        raise
    except TransientSendError as error:
        batch_requeue(batch, str(error))
        raise
    except PermanentSendError as error:
        batch_fail(batch, error.reason)
        return
    batch_mark_sent(
        batch,
        message_id=accepted.message_id,
        message_ids=[recipient.message_id for recipient in outgoing.recipients],
    )


@transaction.atomic
def batch_mark_sent(
    batch: SendBatch, *, message_id: str, note: str = "", message_ids: list[int] | None = None
) -> None:
    """The batch's messages sent: `message_ids`, those its request carried (every queued
    message of the batch when it was built), else the batch's id range (a batch judged after
    its sender died). By their ids, the UPDATE finds them on the primary key whatever the
    statistics say; by the run and a range, PostgreSQL guessed from statistics taken before
    the run's messages existed that the run had one row and read all of the run's messages
    for every batch (40 ms a batch at 105,000)."""
    now = timezone.now()
    statuses = [Message.QUEUED, *LATER_STATUSES]
    if message_ids is None:
        messages = batch_messages(batch, *statuses)
    else:
        messages = filter_in(EmailMessage.objects.all(), "id", message_ids).filter(
            status__in=statuses
        )
    # An event may have moved a message on (delivered, opened) before this commit: that
    # status stays, sent_at is added.
    messages.filter(sent_at__isnull=True).update(
        status=Case(
            When(status=Message.QUEUED, then=Value(Message.SENT)),
            default=F("status"),
        ),
        sent_at=now,
        provider_message_id=message_id,
    )
    # Only a batch still in flight: one a takeover sender already judged is left as judged.
    SendBatch.objects.filter(pk=batch.pk, status=SendBatch.Status.SENDING).update(
        status=SendBatch.Status.SENT, provider_message_id=message_id, finished_at=now, error=note
    )


@transaction.atomic
def batch_requeue(batch: SendBatch, reason: str) -> None:
    """The provider did not take the batch: its messages stay queued for the next claim."""
    SendBatch.objects.filter(pk=batch.pk).update(
        status=SendBatch.Status.REQUEUED, error=reason, finished_at=timezone.now()
    )
    CampaignRun.objects.filter(pk=batch.run_id).update(last_error=reason)


@transaction.atomic
def batch_fail(batch: SendBatch, reason: str) -> None:
    batch_messages(batch).update(status=Message.FAILED, error=reason)
    SendBatch.objects.filter(pk=batch.pk).update(
        status=SendBatch.Status.FAILED, error=reason, finished_at=timezone.now()
    )
    CampaignRun.objects.filter(pk=batch.run_id).update(last_error=reason)
    campaign_id = CampaignRun.objects.values_list("campaign_id", flat=True).get(pk=batch.run_id)
    campaign_author_notify(campaign_id=campaign_id, what=f"had a batch fail: {reason}")


def batches_reconcile(provider: Provider, run: CampaignRun) -> tuple[list[SendBatch], int]:
    """Judge the batches whose sender died mid-request. Returns those that cannot be judged
    yet (the provider's activity feed lags, so a recent batch may not show there yet) and
    how many were judged."""
    unresolved = []
    in_flight = list(SendBatch.objects.filter(run=run, status=SendBatch.Status.SENDING))
    settled_before = timezone.now() - timedelta(seconds=settings.CAMPAIGN_INFLIGHT_SETTLE_SECONDS)
    for batch in in_flight:
        first = (
            EmailMessage.objects.filter(
                run_id=batch.run_id, id__gte=batch.first_message_id, id__lte=batch.last_message_id
            )
            .order_by("id")
            .values_list("email", flat=True)
            .first()
        )
        try:
            accepted = provider.was_accepted(
                InFlight(key=batch.key, recipient=first or "", started_at=batch.started_at)
            )
        except ProviderCannotTell:
            accepted = None
        if accepted:
            batch_mark_sent(batch, message_id="", note="Accepted before its worker stopped.")
        elif batch.started_at > settled_before:
            unresolved.append(batch)
        elif accepted is None:
            # Nobody can tell; a second email is worse than a missing one.
            batch_mark_sent(
                batch,
                message_id="",
                note="Its worker stopped mid-request and the provider could not say whether "
                "it was accepted; counted as sent so that nobody gets it twice.",
            )
        else:
            batch_requeue(batch, "Its worker stopped before the provider accepted it.")
    return unresolved, len(in_flight) - len(unresolved)
