"""sales.services.tasks: tasks of people and of the automation (stage tasks, stale reminders)."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from crm.errors import ValidationFailed
from crm.models import AuditEvent
from sales import services
from sales.models import StageSetting, Task
from sales.services import sale_change_stage, sale_create
from tests.factories import CustomerFactory, TaskFactory
from tests.sales.helpers import deal_in_stage

pytestmark = pytest.mark.django_db

NOW = timezone.now()


def _deal(rep, status="NEW", entered_days_ago=20, **fields):
    return deal_in_stage(rep, now=NOW, status=status, entered_days_ago=entered_days_ago, **fields)


def test_task_complete_is_idempotent(rep, teams):
    task = TaskFactory(assigned_to=rep)
    services.task_complete(actor=rep, task=task)
    first = Task.objects.get(pk=task.pk).completed_at
    services.task_complete(actor=rep, task=task)
    assert Task.objects.get(pk=task.pk).completed_at == first
    assert AuditEvent.objects.filter(object_id=str(task.pk), verb="update").count() == 1
    services.task_reopen(actor=rep, task=task)
    assert Task.objects.get(pk=task.pk).completed_at is None


def test_task_for_another_teams_rep_is_refused(rep, other_rep, teams):
    with pytest.raises(ValidationFailed):
        services.task_create(
            actor=rep,
            data={"title": "x", "assigned_to": other_rep, "due_at": timezone.now()},
        )


def test_entering_a_stage_creates_its_tasks_once_for_the_owner(rep, teams):
    sale = _deal(rep, status="NEW")
    sale_change_stage(actor=rep, sale=sale, to_status="CONTACTED")
    titles = StageSetting.objects.get(status="CONTACTED").task_titles
    tasks = Task.objects.filter(sale=sale, automation_key="stage:CONTACTED")
    assert sorted(t.title for t in tasks) == sorted(titles)
    assert all(t.assigned_to == rep and t.is_auto_created for t in tasks)
    due = tasks.first().due_at - timezone.now()
    assert timedelta(days=1, hours=23) < due <= timedelta(days=2)
    sale_change_stage(actor=rep, sale=sale, to_status="NEW")
    sale_change_stage(actor=rep, sale=sale, to_status="CONTACTED")  # re-entered
    assert Task.objects.filter(sale=sale, automation_key="stage:CONTACTED").count() == len(titles)


def test_a_new_deal_gets_the_new_stage_tasks(rep, teams):
    sale = sale_create(actor=rep, data={"title": "T", "customer": CustomerFactory(owner=rep)})
    assert Task.objects.filter(sale=sale, automation_key="stage:NEW").count() == 2


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_evaluations_create_the_tasks_once(rep, teams):
    sale = _deal(rep, status="PROPOSAL")
    barrier = threading.Barrier(2)
    errors = []

    def evaluate():
        try:
            barrier.wait()
            services.stage_tasks_create(sale=sale, status="PROPOSAL")
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=evaluate) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    titles = StageSetting.objects.get(status="PROPOSAL").task_titles
    assert Task.objects.filter(sale=sale, automation_key="stage:PROPOSAL").count() == len(titles)


def test_one_stale_reminder_per_deal_and_stage(rep, teams):
    sale = _deal(rep, status="CONTACTED", entered_days_ago=40)
    fresh = _deal(rep, status="CONTACTED", entered_days_ago=1)
    assert services.stale_reminders_create(now=NOW) == 1
    assert services.stale_reminders_create(now=NOW) == 0
    reminder = Task.objects.get(automation_key="stale:CONTACTED")
    assert reminder.sale == sale and reminder.assigned_to == rep and reminder.priority == "HIGH"
    assert not Task.objects.filter(sale=fresh, automation_key__startswith="stale").exists()
