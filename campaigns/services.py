"""Writes for campaigns: templates, segments, campaigns and their schedules, unsubscribes."""

import json
import zoneinfo
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django_celery_beat.models import ClockedSchedule, CrontabSchedule, PeriodicTask

from campaigns.models import (
    CampaignRun,
    CustomerSegment,
    EmailCampaign,
    EmailMessage,
    EmailTemplate,
)
from campaigns.segments import criteria_clean, segment_customers
from campaigns.sending import (
    COUNTER_FIELDS,
    campaign_counters_refresh,
    recipient_values,
    runs_cancel,
    send_run_later,
)
from campaigns.sending.provider import ProviderNotConfigured, provider_for
from campaigns.states import (
    Action,
    Move,
    Status,
    action_check,
    move_to,
    status_after_resume,
)
from campaigns.templating import render, template_errors, variables_used
from campaigns.tokens import unsubscribe_token_read
from crm.errors import ValidationFailed
from crm.permissions.campaigns import require_campaign_manager
from crm.reactions import Event, react
from crm.services import audit_record, send_email
from customers.models import Customer, Suppression
from customers.services import customers_mark_unsubscribed, suppressions_add

# Templates --------------------------------------------------------------------------------


def template_save(
    *, actor, data: dict[str, Any], template: EmailTemplate | None = None
) -> EmailTemplate:
    """Create or update a template; every unknown variable or bad placeholder is reported."""
    require_campaign_manager(actor)
    errors = []
    for field in ("subject", "html_body", "text_body"):
        errors += [
            f"{field.replace('_', ' ').capitalize()}: {e}"
            for e in template_errors(data.get(field) or "")
        ]
    if errors:
        raise ValidationFailed(" ".join(errors))
    template = template or EmailTemplate(created_by=actor)
    for field in ("name", "category", "subject", "html_body", "text_body", "is_active"):
        if field in data:
            setattr(template, field, data[field])
    template.variables = variables_used(template.subject, template.html_body, template.text_body)
    template.updated_at = timezone.now()
    verb = "update" if template.pk else "create"
    try:
        with transaction.atomic():
            template.save()
            audit_record(actor=actor, verb=verb, instance=template, changes={"name": template.name})
            react(Event.RECORDS_CHANGED, model="template", ids=[template.pk])
    except IntegrityError:
        raise ValidationFailed("A template with this name exists.", field="name") from None
    return template


PREVIEW_UNSUBSCRIBE_URL = settings.SITE_URL + "/u/preview-only/"


def template_preview(*, template: EmailTemplate, customer: Customer) -> dict[str, str]:
    # A dead unsubscribe link: a manager clicking it in a test email must not unsubscribe
    # the customer the preview was rendered for.
    values = {**recipient_values(customer), "unsubscribe_url": PREVIEW_UNSUBSCRIBE_URL}
    return {
        "subject": render(template.subject, values, html=False),
        "html": render(template.html_body, values, html=True),
        "text": render(template.text_body, values, html=False),
    }


def template_send_test(*, actor, template: EmailTemplate, customer: Customer) -> str:
    """Send the template, rendered for `customer`, to the acting user's own address."""
    require_campaign_manager(actor)
    if not actor.email:
        raise ValidationFailed("Your account has no email address to send the test to.")
    preview = template_preview(template=template, customer=customer)
    send_email(
        to=actor.email,
        subject=f"[Test] {preview['subject']}",
        text=preview["text"],
        html=preview["html"],
    )
    return actor.email


# Segments ---------------------------------------------------------------------------------


def segment_save(
    *, actor, data: dict[str, Any], segment: CustomerSegment | None = None
) -> CustomerSegment:
    require_campaign_manager(actor)
    criteria = criteria_clean(data.get("criteria", {}))
    segment = segment or CustomerSegment(created_by=actor)
    segment.name = data["name"]
    segment.description = data.get("description", "")
    segment.criteria = criteria
    segment.updated_at = timezone.now()
    verb = "update" if segment.pk else "create"
    try:
        with transaction.atomic():
            segment.save()
            segment_count_refresh(segment=segment, user=actor)
            audit_record(actor=actor, verb=verb, instance=segment, changes={"criteria": criteria})
    except IntegrityError:
        raise ValidationFailed("A segment with this name exists.", field="name") from None
    return segment


def segment_count_refresh(*, segment: CustomerSegment, user=None) -> int:
    """Count the segment's customers as its author sees them (the campaign's audience)."""
    user = user or segment.created_by
    count = segment_customers(user=user, criteria=segment.criteria).count() if user else 0
    CustomerSegment.objects.filter(pk=segment.pk).update(
        customer_count=count, last_updated=timezone.now()
    )
    segment.customer_count = count
    return count


# Campaigns --------------------------------------------------------------------------------


def campaign_save(
    *, actor, data: dict[str, Any], campaign: EmailCampaign | None = None
) -> EmailCampaign:
    require_campaign_manager(actor)
    if campaign:
        action_check(campaign, Action.EDIT)
    if data.get("cron_expression"):
        _crontab_fields(data["cron_expression"])  # refuse a bad expression before saving
    if data.get("provider"):
        provider_check(data["provider"])
    campaign = campaign or EmailCampaign(created_by=actor)
    for field in ("name", "campaign_type", "template", "subject", "segment", "cron_expression",
                  "provider"):  # fmt: skip
        if field in data:
            setattr(campaign, field, data[field])
    campaign.updated_at = timezone.now()
    verb = "update" if campaign.pk else "create"
    with transaction.atomic():
        campaign.save()
        if campaign.status == Status.SCHEDULED and campaign.is_recurring:
            _schedule_cron(campaign)
        audit_record(actor=actor, verb=verb, instance=campaign, changes={"name": campaign.name})
        react(Event.RECORDS_CHANGED, model="campaign", ids=[campaign.pk])
    return campaign


def provider_check(name: str) -> None:
    """A campaign or sequence may name only a provider that is configured now."""
    try:
        provider_for(name)
    except ProviderNotConfigured as error:
        raise ValidationFailed(str(error), field="provider") from None


def _lock(campaign: EmailCampaign) -> EmailCampaign:
    return EmailCampaign.objects.select_for_update().get(pk=campaign.pk)


@transaction.atomic
def campaign_send_now(*, actor, campaign: EmailCampaign) -> EmailCampaign:
    require_campaign_manager(actor)
    campaign = _lock(campaign)
    action_check(campaign, Action.SEND_NOW)
    move_to(campaign, Move.SEND_NOW, Status.SENDING)
    campaign.cron_expression = ""
    campaign.save(update_fields=["status", "cron_expression"])
    audit_record(actor=actor, verb="update", instance=campaign, changes={"status": "sending"})
    _start_run_later(campaign.pk, "once")
    return campaign


def _start_run_later(campaign_id: int, run_key: str) -> None:
    from campaigns.tasks import start_run

    transaction.on_commit(lambda: start_run.delay(campaign_id, run_key))


@transaction.atomic
def campaign_schedule(
    *, actor, campaign: EmailCampaign, send_at: datetime | None = None, cron: str = ""
) -> EmailCampaign:
    """Schedule one send at `send_at` (aware) or a send on every firing of `cron`."""
    require_campaign_manager(actor)
    campaign = _lock(campaign)
    action_check(campaign, Action.SCHEDULE)
    if bool(send_at) == bool(cron):
        raise ValidationFailed("Give either a send time or a cron expression.")
    if send_at:
        if timezone.is_naive(send_at):
            raise ValidationFailed("The send time needs a time zone.", field="scheduled_send_time")
        if send_at <= timezone.now():
            raise ValidationFailed("The send time is in the past.", field="scheduled_send_time")
    else:
        _crontab_fields(cron)
    campaign.scheduled_send_time = send_at
    campaign.cron_expression = cron
    move_to(campaign, Move.SCHEDULE, Status.SCHEDULED)
    campaign.save(update_fields=["scheduled_send_time", "cron_expression", "status"])
    if cron:
        _schedule_cron(campaign)
    else:
        _schedule_once(campaign)
    audit_record(
        actor=actor,
        verb="update",
        instance=campaign,
        changes={"status": "scheduled", "send_at": send_at, "cron": cron},
    )
    return campaign


def _crontab_fields(expression: str) -> dict[str, str]:
    from celery.schedules import crontab

    parts = expression.split()
    if len(parts) != 5:
        raise ValidationFailed(
            "A cron expression has five fields: minute hour day-of-month month day-of-week "
            "(e.g. “0 9 * * 1” for Mondays at 09:00).",
            field="cron_expression",
        )
    fields = dict(
        zip(["minute", "hour", "day_of_month", "month_of_year", "day_of_week"], parts, strict=True)
    )
    try:
        crontab(**fields)
    except (ValueError, KeyError, TypeError) as error:
        raise ValidationFailed(f"Bad cron expression: {error}", field="cron_expression") from None
    return fields


def _task_name(campaign: EmailCampaign) -> str:
    return f"Campaign {campaign.pk}: {campaign.name}"[:200]


def _schedule_cron(campaign: EmailCampaign) -> None:
    schedule, _ = CrontabSchedule.objects.get_or_create(
        **_crontab_fields(campaign.cron_expression),
        timezone=zoneinfo.ZoneInfo(settings.TIME_ZONE),  # its default is CELERY_TIMEZONE
    )
    _periodic_task_set(
        campaign,
        crontab=schedule,
        clocked=None,
        one_off=False,
        task="campaigns.start_cron_run",
        kwargs={"campaign_id": campaign.pk},
    )


def _schedule_once(campaign: EmailCampaign) -> None:
    clocked = ClockedSchedule.objects.create(clocked_time=campaign.scheduled_send_time)
    _periodic_task_set(
        campaign,
        crontab=None,
        clocked=clocked,
        one_off=True,
        task="campaigns.start_run",
        kwargs={"campaign_id": campaign.pk, "run_key": "once"},
    )


def _periodic_task_set(campaign, *, crontab, clocked, one_off, task, kwargs) -> None:
    periodic, _ = PeriodicTask.objects.update_or_create(
        name=_task_name(campaign) if not campaign.periodic_task_id else campaign.periodic_task.name,
        defaults={
            "task": task,
            "crontab": crontab,
            "clocked": clocked,
            "interval": None,
            "solar": None,
            "one_off": one_off,
            "enabled": True,
            "kwargs": json.dumps(kwargs),
            "description": f"Sends email campaign {campaign.pk}; managed from the campaign page.",
        },
    )
    if campaign.periodic_task_id != periodic.pk:
        campaign.periodic_task = periodic
        campaign.save(update_fields=["periodic_task"])


def _periodic_task_enable(campaign: EmailCampaign, enabled: bool) -> None:
    if campaign.periodic_task_id:
        task = PeriodicTask.objects.get(pk=campaign.periodic_task_id)
        task.enabled = enabled
        task.save()  # save(), not update(): beat notices changes through PeriodicTasks


def _periodic_task_remove(campaign: EmailCampaign) -> None:
    if campaign.periodic_task_id:
        PeriodicTask.objects.filter(pk=campaign.periodic_task_id).delete()
        campaign.periodic_task = None
        campaign.save(update_fields=["periodic_task"])


@transaction.atomic
def campaign_pause(*, actor, campaign: EmailCampaign) -> EmailCampaign:
    require_campaign_manager(actor)
    campaign = _lock(campaign)
    action_check(campaign, Action.PAUSE)
    move_to(campaign, Move.PAUSE, Status.PAUSED)
    campaign.save(update_fields=["status"])
    # Exact counters on a paused campaign, even if its sender died before its last recount.
    campaign_counters_refresh(campaign_ids=[campaign.pk])
    campaign.refresh_from_db(fields=COUNTER_FIELDS)
    _periodic_task_enable(campaign, False)
    audit_record(actor=actor, verb="update", instance=campaign, changes={"status": "paused"})
    return campaign


@transaction.atomic
def campaign_resume(*, actor, campaign: EmailCampaign) -> EmailCampaign:
    require_campaign_manager(actor)
    campaign = _lock(campaign)
    action_check(campaign, Action.RESUME)
    unfinished = list(campaign.runs.unfinished())
    status = status_after_resume(
        campaign,
        send_under_way=bool(unfinished),
        has_schedule=bool(campaign.periodic_task_id),
        has_runs=bool(unfinished) or campaign.runs.exists(),
    )
    if unfinished:
        CampaignRun.objects.filter(pk__in=[run.pk for run in unfinished]).update(
            status=CampaignRun.Status.SENDING, last_error=""
        )
        for run in unfinished:
            send_run_later(run.pk)
    move_to(campaign, Move.RESUME, status)
    campaign.save(update_fields=["status"])
    _periodic_task_enable(campaign, True)
    audit_record(actor=actor, verb="update", instance=campaign, changes={"status": campaign.status})
    return campaign


@transaction.atomic
def campaign_cancel(*, actor, campaign: EmailCampaign) -> EmailCampaign:
    require_campaign_manager(actor)
    campaign = _lock(campaign)
    action_check(campaign, Action.CANCEL)
    move_to(campaign, Move.CANCEL, Status.CANCELLED)
    campaign.save(update_fields=["status"])
    _periodic_task_remove(campaign)
    # Close unfinished runs here: a paused or stalled one has no sender to notice; a live
    # sender finds its lease gone and stops before its next batch.
    runs_cancel(runs=campaign.runs.unfinished())
    campaign_counters_refresh(campaign_ids=[campaign.pk])
    audit_record(actor=actor, verb="update", instance=campaign, changes={"status": "cancelled"})
    return campaign


@transaction.atomic
def campaign_delete(*, actor, campaign: EmailCampaign) -> None:
    require_campaign_manager(actor)
    action_check(campaign, Action.DELETE)
    _periodic_task_remove(campaign)
    audit_record(actor=actor, verb="delete", instance=campaign, changes={"name": campaign.name})
    campaign.delete()


# Unsubscribe ------------------------------------------------------------------------------


def unsubscribe_by_token(*, token: str) -> Customer:
    """One-click unsubscribe: the customer, its suppression, and the message it came from.
    Raises signing.BadSignature for a tampered or expired token, ValidationFailed for a
    customer that no longer exists."""
    customer_id, message_id = unsubscribe_token_read(token)
    customer = Customer.objects.filter(pk=customer_id).first()
    if customer is None:
        raise ValidationFailed("This address is no longer in our records.")
    now = timezone.now()
    with transaction.atomic():
        customers_mark_unsubscribed(customer_ids=[customer.pk], at=now)
        suppressions_add(
            entries=[(customer.email, Suppression.Reason.UNSUBSCRIBE, "")],
            source=Suppression.Source.UNSUBSCRIBE_LINK,
        )
        if message_id:
            EmailMessage.objects.filter(
                pk=message_id, customer=customer, unsubscribed_at__isnull=True
            ).update(unsubscribed_at=now, status=EmailMessage.Status.UNSUBSCRIBED)
            campaign_ids = list(
                EmailMessage.objects.filter(pk=message_id).values_list("campaign_id", flat=True)
            )
            campaign_counters_refresh(campaign_ids=campaign_ids)
    customer.refresh_from_db()
    return customer
