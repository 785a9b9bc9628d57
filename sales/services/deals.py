"""Writes for deals and their activities. Each is one transaction with an audit row; the
pipeline rules run again after commit (deals_advance_later)."""

from datetime import date, datetime, time, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from crm import cache as crm_cache
from crm.errors import PermissionDenied, ValidationFailed
from crm.models import Tombstone
from crm.permissions import editable_sales
from crm.permissions.viewers import sale_viewer_ids, task_viewer_ids
from crm.reactions import Event, react
from crm.services import (
    audit_record,
    diff_snapshots,
    model_snapshot,
    tombstones_record_deleted,
    tombstones_record_reach_lost,
)
from customers.services import customer_record_contact
from sales.models import Sale, SaleActivity, StageChange, Task
from sales.services.checks import check_assignee, check_customer
from sales.services.notices import deal_changed_notify, deal_closed_notify
from sales.services.tasks import stage_tasks_create


class StageConflict(ValidationFailed):
    """The deal moved since the mover last saw it."""


SALE_AUDITED_FIELDS = [
    "title",
    "customer",
    "assigned_to",
    "amount",
    "currency",
    "status",
    "expected_close_date",
    "closed_at",
    "lost_reason",
    "probability",
]


def _closing_datetime(closed_on: date | datetime | None) -> datetime:
    if closed_on is None:
        return timezone.now()
    if isinstance(closed_on, datetime):
        return closed_on
    if closed_on == timezone.localdate():
        return timezone.now()
    return timezone.make_aware(datetime.combine(closed_on, time(12, 0)))


def sale_input_check(*, actor, data: dict[str, Any], sale: Sale | None = None) -> None:
    """What sale_create (no `sale`) and sale_update check of their input before writing;
    raises ValidationFailed. Forms that show errors before saving (Django admin) call it."""
    if sale is None:
        check_assignee(actor, data.get("assigned_to", actor))
        check_customer(actor, data["customer"])
        if (data.get("status") or Sale.Status.NEW) in Sale.CLOSED_STATUSES:
            raise ValidationFailed(
                "Create the deal in an open stage, then close it as won or lost.", field="status"
            )
        return
    if "status" in data:
        raise ValidationFailed("Use “Change stage” to move a deal.", field="status")
    if "assigned_to" in data and data["assigned_to"] != sale.assigned_to:
        check_assignee(actor, data["assigned_to"])
    if "customer" in data and data["customer"] != sale.customer:
        check_customer(actor, data["customer"])


@transaction.atomic
def sale_create(*, actor, data: dict[str, Any]) -> Sale:
    data = dict(data)
    data.setdefault("assigned_to", actor)
    sale_input_check(actor=actor, data=data)
    status = data.get("status") or Sale.Status.NEW
    sale = Sale.objects.create(**data, furthest_stage_rank=Sale.funnel_rank([status]))
    now = timezone.now()
    StageChange.objects.create(
        sale=sale, from_status="", to_status=sale.status, changed_by=actor, changed_at=now
    )
    stage_tasks_create(sale=sale, status=sale.status, now=now)
    deals_advance_later(sale_ids=[sale.pk])
    audit_record(
        actor=actor,
        verb="create",
        instance=sale,
        changes=model_snapshot(sale, SALE_AUDITED_FIELDS),
    )
    react(Event.RECORDS_CHANGED, model="sale", ids=[sale.pk])
    react(
        Event.DEAL_CHANGED, sale_id=sale.pk, action="created", actor=actor, title=sale.title,
        to_status=sale.status,
    )  # fmt: skip
    if sale.assigned_to_id != actor.pk:
        deal_changed_notify(sale=sale, actor=actor, text=f"gave you the deal “{sale.title}”.")
    crm_cache.bump_on_commit(crm_cache.DEALS)
    return sale


def _lock_editable_sale(actor, sale: Sale) -> Sale:
    locked = editable_sales(actor).select_for_update().filter(pk=sale.pk).first()
    if locked is None:
        raise PermissionDenied("You cannot change this deal.")
    return locked


@transaction.atomic
def sale_update(*, actor, sale: Sale, data: dict[str, Any]) -> Sale:
    """Edit a deal's details; the stage only changes through sale_change_stage."""
    if "status" in data:
        raise ValidationFailed("Use “Change stage” to move a deal.", field="status")
    sale = _lock_editable_sale(actor, sale)
    sale_input_check(actor=actor, data=data, sale=sale)
    before = model_snapshot(sale, SALE_AUDITED_FIELDS)
    assignee_before = sale.assigned_to_id
    viewers = sale_viewer_ids([sale.pk]) if {"assigned_to", "customer"} & set(data) else None
    for name, value in data.items():
        setattr(sale, name, value)
    changes = diff_snapshots(before, model_snapshot(sale, SALE_AUDITED_FIELDS))
    if changes:
        sale.save(update_fields=[*data.keys(), "updated_at"])
        if viewers is not None:  # who no longer sees it drops it at their next sync
            tombstones_record_reach_lost(
                resource=Tombstone.Resource.DEAL, before=viewers, after=sale_viewer_ids([sale.pk])
            )
        if "customer" in changes:
            # The deal's tasks follow it to its new customer.
            Task.objects.filter(sale=sale).update(customer=sale.customer, updated_at=timezone.now())
        audit_record(actor=actor, verb="update", instance=sale, changes=changes)
        react(Event.RECORDS_CHANGED, model="sale", ids=[sale.pk])
        react(
            Event.DEAL_CHANGED, sale_id=sale.pk, action="updated", actor=actor, title=sale.title,
            from_status=sale.status, to_status=sale.status,
            viewers_before=(viewers or {}).get(sale.pk),
        )  # fmt: skip
        deal_changed_notify(
            sale=sale,
            actor=actor,
            text=f"edited your deal “{sale.title}” ({', '.join(changes)}).",
            also=[assignee_before] if assignee_before != sale.assigned_to_id else None,
        )
        crm_cache.bump_on_commit(crm_cache.DEALS)
    return sale


@transaction.atomic
def sale_change_stage(
    *,
    actor,
    sale: Sale,
    to_status: str,
    closed_on: date | datetime | None = None,
    lost_reason: str = "",
    reason: str = "",
    is_automatic: bool = False,
    expected_status: str | None = None,
) -> StageChange:
    """Move a deal to another stage and record it; WON/LOST need a close date, LOST a reason.

    `expected_status` is the stage the mover saw (the board's column): if the deal has moved
    since, the move is refused with who moved it, not applied over their change."""
    if to_status not in Sale.Status.values:
        raise ValidationFailed("Unknown stage.", field="to_status")
    sale = (
        _lock_editable_sale(actor, sale)
        if actor
        else Sale.objects.select_for_update().get(pk=sale.pk)
    )
    if expected_status and sale.status != expected_status:
        last = sale.stage_changes.select_related("changed_by").order_by("-changed_at").first()
        who = (
            "the automation"
            if last and last.is_automatic
            else (last.changed_by.get_full_name() or last.changed_by.username)
            if last and last.changed_by
            else "someone"
        )
        raise StageConflict(
            f"This deal was moved to {sale.get_status_display()} by {who} meanwhile; "
            "the board has been refreshed. Move it again if you still want to."
        )
    if sale.status == to_status:
        raise ValidationFailed(
            f"The deal is already in {sale.get_status_display()}.", field="to_status"
        )
    lost_reason = (lost_reason or "").strip()
    if to_status in Sale.CLOSED_STATUSES and closed_on is None:
        raise ValidationFailed("Give the date the deal closed.", field="closed_on")
    if to_status == Sale.Status.LOST and not lost_reason:
        raise ValidationFailed("Say why the deal was lost.", field="lost_reason")
    closes_in_future = (
        isinstance(closed_on, date)
        and not isinstance(closed_on, datetime)
        and closed_on > timezone.localdate()
    )
    if closes_in_future:
        raise ValidationFailed("The close date cannot be in the future.", field="closed_on")

    before = model_snapshot(sale, SALE_AUDITED_FIELDS)
    now = timezone.now()
    from_status = sale.status
    sale.status = to_status
    sale.stage_entered_at = now
    sale.furthest_stage_rank = max(sale.furthest_stage_rank, Sale.funnel_rank([to_status]))
    if to_status in Sale.CLOSED_STATUSES:
        sale.closed_at = _closing_datetime(closed_on)
        sale.lost_reason = lost_reason if to_status == Sale.Status.LOST else ""
    else:
        sale.closed_at = None
        sale.lost_reason = ""
    sale.save(
        update_fields=[
            "status", "stage_entered_at", "furthest_stage_rank", "closed_at", "lost_reason",
            "updated_at",
        ]
    )  # fmt: skip
    StageChange.objects.filter(sale=sale, left_at__isnull=True).update(left_at=now)
    change = StageChange.objects.create(
        sale=sale,
        from_status=from_status,
        to_status=to_status,
        changed_by=actor,
        is_automatic=is_automatic,
        reason=(reason or lost_reason)[:255],
        changed_at=now,
    )
    audit_record(
        actor=actor,
        verb="update",
        instance=sale,
        changes=diff_snapshots(before, model_snapshot(sale, SALE_AUDITED_FIELDS)),
    )
    if to_status in Sale.OPEN_STATUSES:
        stage_tasks_create(sale=sale, status=to_status, now=now)
        deals_advance_later(sale_ids=[sale.pk])
    react(Event.RECORDS_CHANGED, model="sale", ids=[sale.pk])
    react(
        Event.DEAL_CHANGED, sale_id=sale.pk, action="moved", actor=actor, title=sale.title,
        from_status=from_status, to_status=to_status,
    )  # fmt: skip
    deal_changed_notify(
        sale=sale,
        actor=actor,
        text=f"moved your deal “{sale.title}” to {sale.get_status_display()}.",
    )
    if to_status in Sale.CLOSED_STATUSES:
        deal_closed_notify(sale=sale, actor=actor)
    crm_cache.bump_on_commit(crm_cache.DEALS)
    return change


@transaction.atomic
def sale_delete(*, actor, sale: Sale) -> None:
    sale = _lock_editable_sale(actor, sale)
    audit_record(
        actor=actor, verb="delete", instance=sale, changes=model_snapshot(sale, SALE_AUDITED_FIELDS)
    )
    viewers = sale_viewer_ids([sale.pk])
    react(
        Event.DEAL_CHANGED, sale_id=sale.pk, action="deleted", actor=actor, title=sale.title,
        from_status=sale.status, viewers_before=viewers.get(sale.pk),
    )  # fmt: skip
    tombstones_record_deleted(resource=Tombstone.Resource.DEAL, viewers=viewers)
    tombstones_record_deleted(
        resource=Tombstone.Resource.TASK,
        viewers=task_viewer_ids(sale.tasks.values_list("pk", flat=True)),
    )
    sale.delete()
    crm_cache.bump_on_commit(crm_cache.DEALS)


@transaction.atomic
def sale_activity_add(
    *, actor, sale: Sale, kind: str, text: str, occurred_at: datetime | None = None
) -> SaleActivity:
    if not editable_sales(actor).filter(pk=sale.pk).exists():
        raise PermissionDenied("You can read this deal but not log activities on it.")
    text = (text or "").strip()
    if not text:
        raise ValidationFailed("Describe the activity.", field="text")
    if kind not in SaleActivity.Kind.values:
        raise ValidationFailed("Unknown activity type.", field="kind")
    occurred_at = occurred_at or timezone.now()
    if occurred_at > timezone.now() + timedelta(minutes=5):
        raise ValidationFailed("An activity cannot happen in the future.", field="occurred_at")
    activity = SaleActivity.objects.create(
        sale=sale, kind=kind, text=text, user=actor, occurred_at=occurred_at
    )
    Sale.objects.filter(pk=sale.pk).filter(
        Q(last_activity_at__isnull=True) | Q(last_activity_at__lt=occurred_at)
    ).update(last_activity_at=occurred_at)
    deals_advance_later(sale_ids=[sale.pk])
    # Logging an activity is contact with the customer.
    customer_record_contact(
        customer_id=sale.customer_id, contact_date=timezone.localdate(occurred_at)
    )
    audit_record(
        actor=actor,
        verb="create",
        instance=activity,
        changes={"sale": sale.pk, "kind": kind, "occurred_at": occurred_at},
    )
    react(Event.RECORDS_CHANGED, model="sale", ids=[sale.pk])
    return activity


def deals_advance_later(*, sale_ids: list[int]) -> None:
    """Run the pipeline rules on these deals after commit (sales.automation, in a task);
    also what a proposal attached to a deal sets off (crm.reactions)."""
    from sales.tasks import advance_deals  # the task runs sales.automation, which calls these

    ids = list(sale_ids)
    transaction.on_commit(lambda: advance_deals.delay(ids))
