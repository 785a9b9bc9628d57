"""The sending pipeline: resolve a run's recipients, then send them in batches.

Exactly once per recipient, even when a worker is killed mid-send:
- recipients are EmailMessage rows, unique per (run, customer), inserted in one statement;
- one sender at a time holds a run (a lease in the row, renewed every batch); another takes
  over only when the lease has lapsed, i.e. its holder died;
- a batch is claimed (a SendBatch row naming an id range of queued messages) and committed
  before the request, and its messages are marked sent after it. A batch still `sending`
  when a new sender takes over was in flight when its worker died: the provider is asked
  whether it accepted it (the batch key is a custom arg), and its messages are marked sent
  or left queued for the next claim.
"""

import uuid
from datetime import timedelta
from email.utils import parseaddr

from django.conf import settings
from django.db import connection, transaction
from django.db.models import (
    BooleanField,
    Case,
    CharField,
    Count,
    DateTimeField,
    Exists,
    ExpressionWrapper,
    F,
    IntegerField,
    OuterRef,
    Q,
    Value,
    When,
)
from django.db.models import Value as V
from django.db.models.functions import Lower
from django.utils import timezone
from django_celery_beat.models import ClockedSchedule, PeriodicTask

from campaigns.models import (
    CampaignRun,
    EmailCampaign,
    EmailMessage,
    SendBatch,
    Suppression,
)
from campaigns.segments import criteria_clean, segment_customers
from campaigns.templating import SubstitutionPlan
from campaigns.tokens import unsubscribe_url, unsubscribe_url_maker
from campaigns.transport import (
    PermanentSendError,
    ProviderCannotTell,
    TransientSendError,
    batch_was_accepted,
    mail_send,
)
from customers.models import Region

EMAIL_SHAPE = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
Message = EmailMessage.Status
# Statuses only webhook events set; a message can reach them before its batch is marked sent.
LATER_STATUSES = [
    Message.DELIVERED,
    Message.OPENED,
    Message.CLICKED,
    Message.BOUNCED,
    Message.DROPPED,
    Message.UNSUBSCRIBED,
]
REGION_LABELS = dict(Region.choices)


# Resolving recipients -------------------------------------------------------------------


def run_start(*, campaign_id: int, run_key: str) -> CampaignRun | None:
    """Create the run and its EmailMessage rows (once: a repeated call finds the run), then
    queue the sender after commit. None when the campaign is not due to send."""
    with transaction.atomic():
        campaign = (
            EmailCampaign.objects.select_for_update()
            .select_related("segment", "created_by")
            .filter(pk=campaign_id)
            .first()
        )
        if campaign is None or campaign.status not in (
            EmailCampaign.Status.SCHEDULED,
            EmailCampaign.Status.SENDING,
        ):
            return None
        run, created = CampaignRun.objects.get_or_create(campaign=campaign, run_key=run_key)
        if created and not campaign.is_recurring:
            _one_off_schedule_remove(campaign)
        if created or run.status == CampaignRun.Status.RESOLVING:
            run.total = _insert_recipients(campaign, run)
            run.status = CampaignRun.Status.SENDING
            run.save(update_fields=["total", "status"])
            campaign.status = EmailCampaign.Status.SENDING
            campaign.updated_at = timezone.now()
            campaign.save(update_fields=["status", "updated_at"])
            campaign_counters_refresh(campaign_ids=[campaign.pk])
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


def recipients_for(campaign: EmailCampaign):
    """Who the campaign goes to now: the segment, within what its author may see, minus the
    unsubscribed, the suppressed and addresses that cannot be emailed. The criteria are
    checked again: a segment edited in Django admin must not widen an audience by a typo."""
    suppressed = Suppression.objects.filter(email=Lower(OuterRef("email")))
    criteria = criteria_clean(campaign.segment.criteria)
    return (
        segment_customers(user=campaign.created_by, criteria=criteria)
        .filter(unsubscribed_at__isnull=True, email__regex=EMAIL_SHAPE)
        .exclude(Exists(suppressed))
    )


def _insert_recipients(campaign: EmailCampaign, run: CampaignRun) -> int:
    """INSERT ... SELECT: 100,000 recipients in one statement instead of 100,000 objects."""
    now = timezone.now()
    select = (
        recipients_for(campaign)
        .order_by()
        .annotate(
            m_campaign=V(campaign.pk, output_field=IntegerField()),
            m_run=V(run.pk, output_field=IntegerField()),
            m_status=V(Message.QUEUED, output_field=CharField()),
            m_blank=V("", output_field=CharField()),
            m_now=V(now, output_field=DateTimeField()),
        )
        .values_list(
            "m_campaign", "m_run", "pk", "email", "m_status", "m_blank", "m_blank", "m_now"
        )
    )
    sql, params = select.query.sql_with_params()
    table = EmailMessage._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (campaign_id, run_id, customer_id, email, status, "
            f"provider_message_id, error, queued_at) SELECT * FROM ({sql}) AS recipients "
            f"WHERE 1=1 ON CONFLICT DO NOTHING",
            params,
        )
    return EmailMessage.objects.filter(run=run).count()


# Sending --------------------------------------------------------------------------------


def send_run_later(run_id: int) -> None:
    from campaigns.tasks import send_run

    transaction.on_commit(lambda: send_run.delay(run_id))


def lease_seconds() -> float:
    """How long a silent sender keeps its run. Never shorter than a few provider timeouts:
    a sender waiting on a slow request must not be presumed dead, or its batch would be
    judged unsent and sent again by the next one."""
    return max(settings.CAMPAIGN_SEND_LEASE_SECONDS, 3 * settings.SENDGRID_TIMEOUT_SECONDS)


def _lease(run_id: int, sender: str, *, take: bool) -> bool:
    now = timezone.now()
    runs = CampaignRun.objects.filter(pk=run_id, status=CampaignRun.Status.SENDING)
    if take:
        runs = runs.filter(
            Q(lease_owner=sender) | Q(lease_until__isnull=True) | Q(lease_until__lt=now)
        )
    else:
        runs = runs.filter(lease_owner=sender)
    lease_until = now + timedelta(seconds=lease_seconds())
    return runs.update(lease_owner=sender, lease_until=lease_until) == 1


def run_send(*, run_id: int, sender: str | None = None, hold_seconds: float = 0) -> str:
    """Send what is queued in the run, batch after batch, until done, paused or cancelled.

    On a 429/5xx it raises TransientSendError and keeps the run leased for `hold_seconds`
    (the task's backoff) more, so that no other sender starts during the wait: the retry
    comes back with the same `sender` (the task id) and carries on."""
    sender = sender or uuid.uuid4().hex
    if not _lease(run_id, sender, take=True):
        return "busy or finished"
    release = True
    try:
        run = CampaignRun.objects.select_related("campaign__template").get(pk=run_id)
        unresolved = _reconcile_in_flight(run)
        plan = SubstitutionPlan(
            subject=run.campaign.effective_subject,
            html=run.campaign.template.html_body,
            text=run.campaign.template.text_body,
        )
        while True:
            stopped = _stop_if_asked(run, skip=unresolved)
            if stopped:
                return stopped
            batch = _batch_claim(run, sender, skip=unresolved)
            if batch is None:
                if not _lease(run_id, sender, take=False):
                    return "lease lost"
                if unresolved:
                    return "waiting for the provider"  # judged on a later resume
                _run_finish(run)
                return "sent"
            try:
                _batch_send(run, batch, plan)
            except TransientSendError:
                CampaignRun.objects.filter(pk=run_id, lease_owner=sender).update(
                    lease_until=timezone.now() + timedelta(seconds=hold_seconds + lease_seconds())
                )
                release = False
                raise
    finally:
        if release:
            CampaignRun.objects.filter(pk=run_id, lease_owner=sender).update(
                lease_owner="", lease_until=None
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
            pk=run.campaign_id, status=EmailCampaign.Status.SENDING
        ).update(status=EmailCampaign.Status.PAUSED)


def _reconcile_in_flight(run: CampaignRun) -> list[SendBatch]:
    """Judge the batches whose sender died mid-request; returns those that cannot be judged
    yet (the provider's activity feed lags, so a recent batch may not show there yet)."""
    unresolved = []
    settled_before = timezone.now() - timedelta(seconds=settings.CAMPAIGN_INFLIGHT_SETTLE_SECONDS)
    for batch in SendBatch.objects.filter(run=run, status=SendBatch.Status.SENDING):
        try:
            accepted = batch_was_accepted(batch.key)
        except ProviderCannotTell:
            accepted = None
        if accepted:
            _batch_mark_sent(batch, message_id="", note="Accepted before its worker stopped.")
        elif batch.started_at > settled_before:
            unresolved.append(batch)
        elif accepted is None:
            # Nobody can tell; a second email is worse than a missing one.
            _batch_mark_sent(
                batch,
                message_id="",
                note="Its worker stopped mid-request and the provider could not say whether "
                "it was accepted; counted as sent so that nobody gets it twice.",
            )
        else:
            _batch_requeue(batch, "Its worker stopped before the provider accepted it.")
    return unresolved


def _outside(messages, batches: list[SendBatch]):
    for batch in batches:
        messages = messages.exclude(id__gte=batch.first_message_id, id__lte=batch.last_message_id)
    return messages


def _stop_if_asked(run: CampaignRun, *, skip: list[SendBatch] = ()) -> str | None:
    status = EmailCampaign.objects.values_list("status", flat=True).get(pk=run.campaign_id)
    if status == EmailCampaign.Status.PAUSED:
        CampaignRun.objects.filter(pk=run.pk, status=CampaignRun.Status.SENDING).update(
            status=CampaignRun.Status.PAUSED
        )
        return "paused"
    if status == EmailCampaign.Status.CANCELLED:
        with transaction.atomic():
            queued = EmailMessage.objects.filter(run=run, status=Message.QUEUED)
            _outside(queued, list(skip)).update(status=Message.CANCELLED)
            CampaignRun.objects.filter(pk=run.pk).update(
                status=CampaignRun.Status.CANCELLED, finished_at=timezone.now()
            )
        return "cancelled"
    return None


def _batch_claim(run: CampaignRun, sender: str, *, skip: list[SendBatch] = ()) -> SendBatch | None:
    """The next batch of queued messages, in id order. Who unsubscribed or got suppressed
    since the run started is dropped here, not sent."""
    suppressed = Suppression.objects.filter(email=Lower(OuterRef("email")))
    with transaction.atomic():
        if not _lease(run.pk, sender, take=False):
            return None  # another sender took over: this one was presumed dead
        while True:
            queued = EmailMessage.objects.filter(run=run, status=Message.QUEUED)
            rows = list(
                _outside(queued, list(skip))
                .annotate(
                    blocked=ExpressionWrapper(
                        Q(customer__unsubscribed_at__isnull=False) | Q(Exists(suppressed)),
                        output_field=BooleanField(),
                    )
                )
                .order_by("id")
                .values_list("id", "blocked")[: settings.CAMPAIGN_BATCH_SIZE]
            )
            if not rows:
                return None
            blocked = [pk for pk, is_blocked in rows if is_blocked]
            if blocked:
                EmailMessage.objects.filter(pk__in=blocked).update(
                    status=Message.CANCELLED,
                    error="Unsubscribed or suppressed after the campaign started.",
                )
            ids = [pk for pk, is_blocked in rows if not is_blocked]
            if ids:
                return SendBatch.objects.create(
                    run=run, size=len(ids), first_message_id=ids[0], last_message_id=ids[-1]
                )


def _batch_messages(batch: SendBatch, *statuses: str):
    return EmailMessage.objects.filter(
        run_id=batch.run_id,
        id__gte=batch.first_message_id,
        id__lte=batch.last_message_id,
        status__in=statuses or [Message.QUEUED],
    )


def recipient_values(customer, *, message_id: int | None = None) -> dict[str, str]:
    """The template variables for one customer (preview and test sends)."""
    if customer is None:
        return {}
    owner = customer.owner
    return _values(
        name=customer.name,
        email=customer.email,
        company=customer.company,
        job_title=customer.job_title,
        region=customer.region,
        owner_name=(owner.get_full_name() or owner.username) if owner else "",
        owner_email=owner.email if owner else "",
        unsubscribe_url=unsubscribe_url(customer.pk, message_id),
    )


def _values(*, name, email, company, job_title, region, owner_name, owner_email, unsubscribe_url):
    first, _, last = (name or "").partition(" ")
    return {
        "first_name": first,
        "last_name": last,
        "full_name": name or "",
        "email": email or "",
        "company": company or "",
        "job_title": job_title or "",
        "region": REGION_LABELS.get(region, ""),
        "owner_name": owner_name,
        "owner_email": owner_email or "",
        "unsubscribe_url": unsubscribe_url,
    }


RECIPIENT_COLUMNS = [
    "id",
    "email",
    "customer_id",
    "customer__name",
    "customer__company",
    "customer__job_title",
    "customer__region",
    "customer__owner__first_name",
    "customer__owner__last_name",
    "customer__owner__username",
    "customer__owner__email",
]


def build_payload(run: CampaignRun, batch: SendBatch, plan: SubstitutionPlan) -> dict:
    """One mail/send request: a personalization per recipient. Plain columns, not model
    objects: this runs 100,000 times for a large campaign."""
    rows = _batch_messages(batch).order_by("id").values_list(*RECIPIENT_COLUMNS)
    make_unsubscribe_url = unsubscribe_url_maker()
    personalizations = []
    for (
        message_id,
        email,
        customer_id,
        name,
        company,
        job_title,
        region,
        owner_first,
        owner_last,
        owner_username,
        owner_email,
    ) in rows:
        link = make_unsubscribe_url(customer_id, message_id) if customer_id else ""
        values = _values(
            name=name,
            email=email,
            company=company,
            job_title=job_title,
            region=region,
            owner_name=f"{owner_first} {owner_last}".strip() or owner_username or "",
            owner_email=owner_email,
            unsubscribe_url=link,
        )
        personalization = {
            "to": [{"email": email, "name": name} if name else {"email": email}],
            "substitutions": plan.substitutions(values),
            "custom_args": {"email_message_id": str(message_id)},
        }
        if link:
            personalization["headers"] = {
                "List-Unsubscribe": f"<{link}>",
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            }
        personalizations.append(personalization)
    content = [{"type": "text/plain", "value": plan.text or " "}]
    if plan.html:
        content.append({"type": "text/html", "value": plan.html})
    from_name, from_email = parseaddr(settings.DEFAULT_FROM_EMAIL)
    return {
        "personalizations": personalizations,
        "from": {"email": from_email, **({"name": from_name} if from_name else {})},
        "subject": plan.subject,
        "content": content,
        "custom_args": {"batch_key": batch.key, "campaign_id": str(run.campaign_id)},
        "categories": [f"campaign-{run.campaign_id}"],
    }


def _batch_send(run: CampaignRun, batch: SendBatch, plan: SubstitutionPlan) -> None:
    payload = build_payload(run, batch, plan)
    try:
        accepted = mail_send(payload)
    except TransientSendError as error:
        _batch_requeue(batch, str(error))
        raise
    except PermanentSendError as error:
        _batch_fail(batch, error.reason)
        return
    _batch_mark_sent(batch, message_id=accepted.message_id)


@transaction.atomic
def _batch_mark_sent(batch: SendBatch, *, message_id: str, note: str = "") -> None:
    now = timezone.now()
    # A webhook event may have moved a message on (delivered, opened) before this commit:
    # that status stays, sent_at is added.
    sent = (
        _batch_messages(batch, Message.QUEUED, *LATER_STATUSES)
        .filter(sent_at__isnull=True)
        .update(
            status=Case(
                When(status=Message.QUEUED, then=Value(Message.SENT)),
                default=F("status"),
            ),
            sent_at=now,
            provider_message_id=message_id,
        )
    )
    # Only a batch still in flight: one a takeover sender already judged is left as judged.
    SendBatch.objects.filter(pk=batch.pk, status=SendBatch.Status.SENDING).update(
        status=SendBatch.Status.SENT, provider_message_id=message_id, finished_at=now, error=note
    )
    campaign_id = CampaignRun.objects.values_list("campaign_id", flat=True).get(pk=batch.run_id)
    EmailCampaign.objects.filter(pk=campaign_id).update(sent_count=F("sent_count") + sent)


@transaction.atomic
def _batch_requeue(batch: SendBatch, reason: str) -> None:
    """The provider did not take the batch: its messages stay queued for the next claim."""
    SendBatch.objects.filter(pk=batch.pk).update(
        status=SendBatch.Status.REQUEUED, error=reason, finished_at=timezone.now()
    )
    CampaignRun.objects.filter(pk=batch.run_id).update(last_error=reason)


@transaction.atomic
def _batch_fail(batch: SendBatch, reason: str) -> None:
    _batch_messages(batch).update(status=Message.FAILED, error=reason)
    SendBatch.objects.filter(pk=batch.pk).update(
        status=SendBatch.Status.FAILED, error=reason, finished_at=timezone.now()
    )
    CampaignRun.objects.filter(pk=batch.run_id).update(last_error=reason)


def _run_finish(run: CampaignRun) -> None:
    with transaction.atomic():
        campaign = EmailCampaign.objects.select_for_update().get(pk=run.campaign_id)
        CampaignRun.objects.filter(pk=run.pk).update(
            status=CampaignRun.Status.SENT, finished_at=timezone.now()
        )
        unfinished = campaign.runs.exclude(pk=run.pk).filter(
            status__in=[
                CampaignRun.Status.RESOLVING,
                CampaignRun.Status.SENDING,
                CampaignRun.Status.PAUSED,
            ]
        )
        # A pause that lands after the last batch has nothing left to pause: a one-off
        # campaign is sent. A recurring one waits for its next firing.
        if campaign.status == EmailCampaign.Status.SENDING and not unfinished.exists():
            campaign.status = (
                EmailCampaign.Status.SCHEDULED
                if campaign.is_recurring
                else EmailCampaign.Status.SENT
            )
            campaign.save(update_fields=["status"])
        elif (
            campaign.status == EmailCampaign.Status.PAUSED
            and not campaign.is_recurring
            and not unfinished.exists()
        ):
            campaign.status = EmailCampaign.Status.SENT
            campaign.save(update_fields=["status"])
        campaign_counters_refresh(campaign_ids=[campaign.pk])


def campaign_counters_refresh(*, campaign_ids: list[int]) -> None:
    """The counters from the messages themselves, one aggregate per campaign: exact however
    often events are replayed."""

    def counted(field):
        return Count("id", filter=Q(**{f"{field}__isnull": False}))

    for campaign_id in campaign_ids:
        totals = EmailMessage.objects.filter(campaign_id=campaign_id).aggregate(
            total_recipients=Count("id"),
            sent_count=counted("sent_at"),
            delivered_count=counted("delivered_at"),
            opened_count=counted("opened_at"),
            clicked_count=counted("clicked_at"),
            bounced_count=counted("bounced_at"),
            unsubscribed_count=counted("unsubscribed_at"),
            failed_count=Count("id", filter=Q(status=Message.FAILED)),
        )
        EmailCampaign.objects.filter(pk=campaign_id).update(**totals)


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


def stalled_runs() -> list[int]:
    """Runs still sending whose sender's lease lapsed: their worker died."""
    return list(
        CampaignRun.objects.filter(status=CampaignRun.Status.SENDING)
        .exclude(campaign__status__in=[EmailCampaign.Status.PAUSED, EmailCampaign.Status.CANCELLED])
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=timezone.now()))
        .values_list("pk", flat=True)
    )
