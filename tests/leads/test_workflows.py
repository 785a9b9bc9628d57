"""leads.services.workflows: what a grade change does (hot and warm runs), once per
transition. The hot and warm emails are campaigns' drafts (campaigns.drafts), rendered from
the templates the managers chose in the lead email settings."""

import threading
from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection

from campaigns.drafts import draft_send
from campaigns.models import EmailDraft, OutboxMessage
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
    team, lead_emails, django_capture_on_commit_callbacks
):
    lead_emails(send_automatically=True)
    lead = _lead(team["owner"], **HOT)
    _engage(lead)
    with django_capture_on_commit_callbacks(execute=True):
        leads_rescore(customer_ids=[lead.pk])
    run = WorkflowRun.objects.get(customer=lead)
    assert (run.previous_grade, run.grade, run.status) == ("", "hot", "done")
    lead.refresh_from_db()
    senior = team["senior_a"]
    assert lead.owner == senior
    tasks = {task.title: task for task in Task.objects.filter(customer=lead)}
    call = tasks[f"Call {lead.name} – hot lead"]
    assert call.priority == "URGENT"
    assert call.assigned_to == senior
    assert timedelta(hours=1, minutes=55) < call.due_at - run.finished_at <= timedelta(hours=2)
    assert any(task.priority == "HIGH" for task in tasks.values())
    # The personal email: rendered from the hot template, from the rep, replies to the rep.
    (email,) = mail.outbox
    assert email.to == [lead.email]
    assert email.reply_to == [senior.email]
    assert senior.get_full_name() in email.from_email
    assert lead.name.split()[0] in email.body and senior.get_full_name() in email.body
    draft = EmailDraft.objects.get(customer=lead)
    assert (draft.status, draft.rep, draft.subject) == ("sent", senior, email.subject)
    assert draft.task in tasks.values()
    assert draft.get_absolute_url() in Task.objects.get(pk=draft.task_id).description
    assert any("Assigned to" in action for action in run.actions)
    assert f"Email to send automatically (the email gate decides): {draft.subject}" in run.actions


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
def test_warm_lead_gets_a_follow_up_and_a_case_study(
    team, lead_emails, django_capture_on_commit_callbacks
):
    lead_emails(send_automatically=True)
    lead = _lead(team["owner"], **WARM)
    with django_capture_on_commit_callbacks(execute=True):
        leads_rescore(customer_ids=[lead.pk])
    run = WorkflowRun.objects.get(customer=lead)
    assert run.grade == "warm"
    (task,) = Task.objects.filter(customer=lead)
    assert task.title.startswith("Follow up with")
    assert timedelta(hours=23, minutes=55) < task.due_at - run.finished_at <= timedelta(hours=24)
    (email,) = mail.outbox
    assert email.to == [lead.email] and "case study" in email.body
    assert EmailDraft.objects.get(customer=lead).task == task


@pytest.mark.django_db
def test_the_email_waits_on_the_reps_task_as_a_draft_unless_sent_automatically(
    team, lead_emails, django_capture_on_commit_callbacks
):
    lead_emails(send_automatically=False)
    lead = _lead(team["owner"], **WARM)
    with django_capture_on_commit_callbacks(execute=True):
        leads_rescore(customer_ids=[lead.pk])
    draft = EmailDraft.objects.get(customer=lead)
    assert draft.status == "draft" and mail.outbox == []
    assert f"Email draft for the rep: {draft.subject}" in WorkflowRun.objects.get().actions
    assert "case study" in draft.text_body and lead.name.split()[0] in draft.text_body
    sent = draft_send(actor=draft.rep, draft=draft)
    assert sent.status == "sent" and [m.to for m in mail.outbox] == [[lead.email]]


@pytest.mark.django_db
def test_without_a_chosen_template_no_email_is_prepared(team, django_capture_on_commit_callbacks):
    lead = _lead(team["owner"], **HOT)
    _engage(lead)
    with django_capture_on_commit_callbacks(execute=True):
        leads_rescore(customer_ids=[lead.pk])
    run = WorkflowRun.objects.get(customer=lead)
    assert run.status == "done" and Task.objects.filter(customer=lead).count() == 2
    assert "No email: no template is chosen in the lead email settings" in run.actions
    assert not EmailDraft.objects.exists() and mail.outbox == []


@pytest.mark.django_db
def test_a_transition_runs_its_workflow_once(team, lead_emails, django_capture_on_commit_callbacks):
    lead_emails(send_automatically=True)
    lead = _lead(team["owner"], **HOT)
    _engage(lead)
    with django_capture_on_commit_callbacks(execute=True):
        leads_rescore(customer_ids=[lead.pk])
        leads_rescore(customer_ids=[lead.pk])
    run = WorkflowRun.objects.get(customer=lead)
    assert workflow_run_execute(run_id=run.pk) is None  # a second delivery of the task
    assert Task.objects.filter(customer=lead).count() == 2
    assert EmailDraft.objects.filter(customer=lead).count() == 1
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
    team, lead_emails, django_capture_on_commit_callbacks, grade_fields
):
    lead_emails(send_automatically=True)
    unreachable = unreachable_customers(owner=team["owner"], lifecycle_stage="lead", **grade_fields)
    for customer, _refusal in unreachable.values():
        _engage(customer)
    with django_capture_on_commit_callbacks(execute=True):
        leads_rescore(customer_ids=[c.pk for c, _r in unreachable.values()])
    assert mail.outbox == [] and not OutboxMessage.objects.exists()
    runs = {run.customer.email: run for run in WorkflowRun.objects.select_related("customer")}
    assert len(runs) == 5 and all(run.status == "done" for run in runs.values())
    drafts = {d.customer.email: d for d in EmailDraft.objects.select_related("customer")}
    labels = {
        "withdrawn": "consent withdrawn",
        "unsubscribed": "unsubscribed",
        "bounced": "bounced",
        "dropped": "dropped by the provider",
        "spam": "spam report",
    }
    for name, label in labels.items():
        draft = drafts[f"{name}@never.example"]
        assert (draft.status, draft.error, draft.sent_at) == (
            "refused",
            f"Not sent: {label}.",
            None,
        )


@pytest.mark.django_db
def test_a_one_to_one_email_needs_no_granted_consent(
    team, lead_emails, django_capture_on_commit_callbacks
):
    lead_emails(send_automatically=True)
    lead = _lead(team["owner"], email_consent="unknown", **HOT)
    _engage(lead)
    with django_capture_on_commit_callbacks(execute=True):
        leads_rescore(customer_ids=[lead.pk])
    assert [message.to for message in mail.outbox] == [[lead.email]]
