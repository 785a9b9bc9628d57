"""Writes for tasks: a person's own, those the automation creates (a workflow's, a stage's on
entry, a stale deal's reminder), completing and reopening them."""

from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from crm.errors import PermissionDenied
from crm.permissions import editable_sales, visible_tasks
from crm.reactions import Event, react
from crm.services import audit_record
from sales.models import Sale, StageSetting, Task
from sales.services.checks import check_assignee, check_customer
from sales.services.notices import task_assigned_notify

STAGE_TASK_DUE_IN = timedelta(days=2)


@transaction.atomic
def task_create(*, actor, data: dict[str, Any], is_auto_created: bool = False) -> Task:
    data = dict(data)
    data.setdefault("assigned_to", actor)
    check_assignee(actor, data["assigned_to"])
    if (
        data.get("sale") is not None
        and not editable_sales(actor).filter(pk=data["sale"].pk).exists()
    ):
        raise PermissionDenied("You can read this deal but not add tasks to it.")
    if data.get("customer") is not None:
        check_customer(actor, data["customer"])
    if data.get("sale") is not None and data.get("customer") is None:
        data["customer"] = data["sale"].customer
    task = Task.objects.create(**data, created_by=actor, is_auto_created=is_auto_created)
    audit_record(
        actor=actor,
        verb="create",
        instance=task,
        changes={"title": task.title, "assigned_to": task.assigned_to_id},
    )
    react(Event.RECORDS_CHANGED, model="task", ids=[task.pk])
    task_assigned_notify(task=task, actor=actor)
    return task


def task_create_automatic(
    *,
    assigned_to,
    customer,
    title: str,
    priority: str,
    due_at: datetime,
    description: str = "",
) -> Task:
    """A task created by automation (workflows), not by a person: no actor to check."""
    task = Task.objects.create(
        title=title,
        description=description,
        customer=customer,
        assigned_to=assigned_to,
        priority=priority,
        due_at=due_at,
        is_auto_created=True,
    )
    audit_record(actor=None, verb="create", instance=task, changes={"automatic": True})
    react(Event.RECORDS_CHANGED, model="task", ids=[task.pk])
    task_assigned_notify(task=task)
    return task


def follow_up_tasks_create(
    *, assigned_to, customer, tasks: list[tuple[str, str, datetime]], **_event
) -> list[Task]:
    """The tasks a lead workflow asks for, (title, priority, due) each (crm.reactions:
    LEAD_NEEDS_FOLLOW_UP)."""
    return [
        task_create_automatic(
            assigned_to=assigned_to, customer=customer, title=title, priority=priority, due_at=due
        )
        for title, priority, due in tasks
    ]


def _lock_task(actor, task: Task) -> Task:
    locked = visible_tasks(actor).select_for_update().filter(pk=task.pk).first()
    if locked is None:
        raise PermissionDenied("You cannot change this task.")
    return locked


@transaction.atomic
def task_complete(*, actor, task: Task) -> Task:
    """Mark done; completing a done task again changes nothing (a double click is harmless)."""
    task = _lock_task(actor, task)
    if task.completed_at is None:
        task.completed_at = timezone.now()
        task.save(update_fields=["completed_at", "updated_at"])
        audit_record(
            actor=actor, verb="update", instance=task, changes={"completed": [False, True]}
        )
        react(Event.RECORDS_CHANGED, model="task", ids=[task.pk])
    return task


@transaction.atomic
def task_reopen(*, actor, task: Task) -> Task:
    task = _lock_task(actor, task)
    if task.completed_at is not None:
        task.completed_at = None
        task.save(update_fields=["completed_at", "updated_at"])
        audit_record(
            actor=actor, verb="update", instance=task, changes={"completed": [True, False]}
        )
        react(Event.RECORDS_CHANGED, model="task", ids=[task.pk])
    return task


def stage_tasks_create(*, sale: Sale, status: str, now: datetime | None = None) -> int:
    """The stage's tasks for the deal's owner, due in 2 days; each exactly once per deal and
    stage (a unique constraint), however often or concurrently the stage is entered."""
    if sale.assigned_to_id is None:
        return 0
    titles = (
        StageSetting.objects.filter(status=status).values_list("task_titles", flat=True).first()
    )
    if not titles:
        return 0
    now = now or timezone.now()
    key = f"stage:{status}"
    existing = set(
        Task.objects.filter(sale=sale, automation_key=key).values_list("title", flat=True)
    )
    # ignore_conflicts still guards the race in which two evaluations both see none.
    Task.objects.bulk_create(
        [
            Task(
                title=title[:200],
                sale=sale,
                customer_id=sale.customer_id,
                assigned_to_id=sale.assigned_to_id,
                priority=Task.Priority.MEDIUM,
                due_at=now + STAGE_TASK_DUE_IN,
                is_auto_created=True,
                automation_key=key,
            )
            for title in titles
            if title[:200] not in existing
        ],
        ignore_conflicts=True,
    )
    made = Task.objects.filter(sale=sale, automation_key=key).exclude(title__in=existing)
    react(Event.RECORDS_CHANGED, model="task", ids=list(made.values_list("pk", flat=True)))
    return len([title for title in titles if title[:200] not in existing])


def stale_reminders_create(*, now: datetime | None = None) -> int:
    """One reminder task per stale deal and stage, for its owner (nightly)."""
    now = now or timezone.now()
    stale_deals = Sale.objects.open().stale(now=now).filter(assigned_to__isnull=False)
    stale = stale_deals.values_list("pk", "title", "status", "customer_id", "assigned_to_id")
    reminded = set(
        Task.objects.filter(
            automation_key__startswith="stale:", sale__in=stale_deals.values("pk")
        ).values_list("sale_id", "automation_key")
    )
    tasks = [
        Task(
            title=f"Stale deal: {title}"[:200],
            description="This deal has been in its stage longer than expected. Move it on, "
            "update it, or close it.",
            sale_id=pk,
            customer_id=customer_id,
            assigned_to_id=owner_id,
            priority=Task.Priority.HIGH,
            due_at=now + timedelta(days=1),
            is_auto_created=True,
            automation_key=f"stale:{status}",
        )
        for pk, title, status, customer_id, owner_id in stale.iterator(chunk_size=2000)
        if (pk, f"stale:{status}") not in reminded
    ]
    Task.objects.bulk_create(tasks, ignore_conflicts=True, batch_size=1000)
    if tasks:
        made = Task.objects.filter(
            automation_key__startswith="stale:", created_at__gte=now - timedelta(minutes=1),
            sale_id__in=[task.sale_id for task in tasks],
        )  # fmt: skip
        react(Event.RECORDS_CHANGED, model="task", ids=list(made.values_list("pk", flat=True)))
    return len(tasks)
