"""leads.services.workflows: what a grade change does (hot and warm runs), once per
transition."""

import threading
from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection

from customers.models import Customer
from leads.models import LeadActivity, WorkflowRun
from leads.services import rescore as rescore_service
from leads.services.rescore import leads_rescore
from leads.services.workflows import workflow_run_execute
from sales.models import Task
from tests.factories import CustomerFactory, unreachable_customers
from tests.leads.helpers import HOT, WARM


def _lead(owner, **fields):
    return CustomerFactory(owner=owner, lifecycle_stage="lead", **fields)


def _engage(lead, points=10, times=3):
    for _ in range(times):
        LeadActivity.objects.create(customer=lead, activity_type="download", score_impact=points)


@pytest.mark.django_db
def test_hot_lead_goes_to_a_senior_rep_with_tasks_and_email(
    team, django_capture_on_commit_callbacks
):
    lead = _lead(team["owner"], **HOT)
    _engage(lead)
    with django_capture_on_commit_callbacks(execute=True):
        leads_rescore(customer_ids=[lead.pk])
    run = WorkflowRun.objects.get(customer=lead)
    assert (run.previous_grade, run.grade, run.status) == ("", "hot", "done")
    lead.refresh_from_db()
    assert lead.owner == team["senior_a"]
    tasks = {task.title: task for task in Task.objects.filter(customer=lead)}
    call = tasks[f"Call {lead.name} – hot lead"]
    assert call.priority == "URGENT"
    assert call.assigned_to == team["senior_a"]
    assert timedelta(hours=1, minutes=55) < call.due_at - run.finished_at <= timedelta(hours=2)
    assert any(task.priority == "HIGH" for task in tasks.values())
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == [lead.email]
    assert lead.name.split()[0] in mail.outbox[0].body
    assert any("Assigned to" in action for action in run.actions)


@pytest.mark.django_db
def test_hot_leads_round_robin_between_equally_loaded_seniors(
    team, django_capture_on_commit_callbacks
):
    first, second = _lead(team["owner"], **HOT), _lead(team["owner"], **HOT)
    for lead in (first, second):
        _engage(lead)
    with django_capture_on_commit_callbacks(execute=True):
        leads_rescore(customer_ids=[first.pk])
    # senior_a now carries one hot lead; the next one goes to senior_b.
    with django_capture_on_commit_callbacks(execute=True):
        leads_rescore(customer_ids=[second.pk])
    assert Customer.objects.get(pk=first.pk).owner == team["senior_a"]
    assert Customer.objects.get(pk=second.pk).owner == team["senior_b"]


@pytest.mark.django_db
def test_warm_lead_gets_a_follow_up_and_a_case_study(team, django_capture_on_commit_callbacks):
    lead = _lead(team["owner"], **WARM)
    with django_capture_on_commit_callbacks(execute=True):
        leads_rescore(customer_ids=[lead.pk])
    run = WorkflowRun.objects.get(customer=lead)
    assert run.grade == "warm"
    (task,) = Task.objects.filter(customer=lead)
    assert task.title.startswith("Follow up with")
    assert timedelta(hours=23, minutes=55) < task.due_at - run.finished_at <= timedelta(hours=24)
    assert "case study" in mail.outbox[0].body


@pytest.mark.django_db
def test_a_transition_runs_its_workflow_once(team, django_capture_on_commit_callbacks):
    lead = _lead(team["owner"], **HOT)
    _engage(lead)
    with django_capture_on_commit_callbacks(execute=True):
        leads_rescore(customer_ids=[lead.pk])
        leads_rescore(customer_ids=[lead.pk])
    run = WorkflowRun.objects.get(customer=lead)
    assert workflow_run_execute(run_id=run.pk) is None  # a second delivery of the task
    assert Task.objects.filter(customer=lead).count() == 2
    assert len(mail.outbox) == 1


@pytest.mark.django_db(transaction=True)
def test_two_racing_rescorings_claim_a_transition_once(team, monkeypatch):
    lead = _lead(team["owner"], **HOT)
    _engage(lead)
    both_have_read = threading.Barrier(2, timeout=20)
    real_grade_for = rescore_service.grade_for

    def grade_after_both_read(total):
        both_have_read.wait()  # each rescoring has read the old (missing) grade
        return real_grade_for(total)

    monkeypatch.setattr(rescore_service, "grade_for", grade_after_both_read)
    results, errors = [], []

    def rescore():
        try:
            results.append(leads_rescore(customer_ids=[lead.pk]))
        except Exception as error:  # surfaced below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=rescore) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors
    assert sorted(len(transitions) for transitions in results) == [0, 1]
    assert WorkflowRun.objects.filter(customer=lead).count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("grade_fields", [HOT, WARM], ids=["hot", "warm"])
def test_hot_and_warm_emails_never_go_to_an_unreachable_address(
    team, django_capture_on_commit_callbacks, grade_fields
):
    unreachable = unreachable_customers(owner=team["owner"], lifecycle_stage="lead", **grade_fields)
    for customer, _refusal in unreachable.values():
        _engage(customer)
    with django_capture_on_commit_callbacks(execute=True):
        leads_rescore(customer_ids=[c.pk for c, _r in unreachable.values()])
    assert mail.outbox == []
    runs = {run.customer.email: run for run in WorkflowRun.objects.select_related("customer")}
    assert len(runs) == 5 and all(run.status == "done" for run in runs.values())
    labels = {
        "withdrawn": "consent withdrawn",
        "unsubscribed": "unsubscribed",
        "bounced": "bounced",
        "dropped": "dropped by the provider",
        "spam": "spam report",
    }
    for name, label in labels.items():
        assert f"Email not sent: {label}" in runs[f"{name}@never.example"].actions


@pytest.mark.django_db
def test_a_one_to_one_email_needs_no_granted_consent(team, django_capture_on_commit_callbacks):
    lead = _lead(team["owner"], email_consent="unknown", **HOT)
    _engage(lead)
    with django_capture_on_commit_callbacks(execute=True):
        leads_rescore(customer_ids=[lead.pk])
    assert [message.to for message in mail.outbox] == [[lead.email]]
