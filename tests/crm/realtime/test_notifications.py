"""Each action writes its notification once, after commit, never on rollback; preferences;
the daily digest."""

from datetime import timedelta

import pytest
from django.core import mail
from django.db import transaction
from django.utils import timezone

from ai.models import TrainingRun
from ai.services.training import _trained_notify
from campaigns.models import CampaignRun, EmailCampaign
from campaigns.sending.runs import run_finish, run_give_up
from crm.models import Notification, RealtimeEvent
from crm.notifications import digests_send, preferences_save
from customers.csv_import import _mark_failed
from customers.models import Customer, CustomerImport, Suppression
from documents.models import Document
from documents.services import document_share
from leads.models import Grade, WorkflowRun
from leads.services.workflows import workflow_run_execute
from sales.models import Sale
from sales.services import sale_change_stage, sale_update, task_create, task_create_automatic
from tests.factories import CustomerFactory, EmailCampaignFactory, SaleFactory

Kind = Notification.Kind


def notes(user, kind) -> list[Notification]:
    return list(Notification.objects.filter(recipient=user, kind=kind))


@pytest.fixture
def deal(rep, teams):
    return SaleFactory(customer=CustomerFactory(owner=rep), assigned_to=rep, title="ACME")


def _document(owner) -> Document:
    return Document.objects.create(
        title="Price list", file="documents/x.txt", original_name="x.txt", file_size=1,
        mime_type="text/plain", sha256="0" * 64, uploaded_by=owner,
    )  # fmt: skip


def _campaign_run(author) -> CampaignRun:
    campaign = EmailCampaignFactory(created_by=author, status=EmailCampaign.Status.SENDING)
    return CampaignRun.objects.create(
        campaign=campaign, run_key="once", status=CampaignRun.Status.SENDING, total=1200
    )


# One action per kind: (the action, given the fixtures; the recipient; the kind)
ACTIONS = {
    "task assigned by a manager": (
        lambda f: task_create(
            actor=f["manager"],
            data={"title": "Call", "assigned_to": f["rep"], "due_at": timezone.now()},
        ),
        "rep",
        Kind.TASK_ASSIGNED,
    ),
    "task assigned by automation": (
        lambda f: task_create_automatic(
            assigned_to=f["rep"],
            customer=f["deal"].customer,
            title="Call now",
            priority="HIGH",
            due_at=timezone.now(),
        ),  # fmt: skip
        "rep",
        Kind.TASK_ASSIGNED,
    ),
    "deal moved by the manager": (
        lambda f: sale_change_stage(
            actor=f["manager"], sale=f["deal"], to_status=Sale.Status.CONTACTED
        ),
        "rep",
        Kind.DEAL_CHANGED,
    ),
    "deal edited by the manager": (
        lambda f: sale_update(actor=f["manager"], sale=f["deal"], data={"amount": 5}),
        "rep",
        Kind.DEAL_CHANGED,
    ),
    "deal won": (
        lambda f: sale_change_stage(
            actor=f["rep"],
            sale=f["deal"],
            to_status=Sale.Status.WON,
            closed_on=timezone.localdate(),
        ),  # fmt: skip
        "manager",
        Kind.DEAL_CLOSED,
    ),
    "deal lost": (
        lambda f: sale_change_stage(
            actor=f["rep"],
            sale=f["deal"],
            to_status=Sale.Status.LOST,
            closed_on=timezone.localdate(),
            lost_reason="Price",
        ),  # fmt: skip
        "manager",
        Kind.DEAL_CLOSED,
    ),
    "document shared": (
        lambda f: document_share(
            actor=f["rep"],
            document=_document(f["rep"]),
            user_ids=[f["teammate"].pk],
            is_public=False,
        ),  # fmt: skip
        "teammate",
        Kind.DOCUMENT_SHARED,
    ),
    "campaign finished": (
        lambda f: run_finish(_campaign_run(f["manager"])),
        "manager",
        Kind.CAMPAIGN_ENDED,
    ),
    "campaign paused after errors": (
        lambda f: run_give_up(run_id=_campaign_run(f["manager"]).pk, reason="HTTP 503"),
        "manager",
        Kind.CAMPAIGN_ENDED,
    ),
    "import failed": (
        lambda f: _mark_failed(
            CustomerImport.objects.create(uploaded_by=f["rep"], filename="leads.csv").pk,
            "Not a CSV file.",
        ),
        "rep",
        Kind.IMPORT_FINISHED,
    ),
    "model trained": (
        lambda f: _trained_notify(TrainingRun.objects.create(outcome="v1 (global): active")),
        "manager",
        Kind.MODEL_TRAINED,
    ),
}


@pytest.fixture
def people(rep, teammate, manager, deal, teams):
    return {"rep": rep, "teammate": teammate, "manager": manager, "deal": deal}


@pytest.mark.parametrize("action", ACTIONS)
def test_action_notifies_once_after_commit(action, people, django_capture_on_commit_callbacks):
    do, recipient, kind = ACTIONS[action]
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        do(people)
        assert notes(people[recipient], kind) == [], "written before the commit"
    assert callbacks
    written = notes(people[recipient], kind)
    assert len(written) == 1
    assert written[0].text and written[0].link.startswith("/")
    event = RealtimeEvent.objects.get(topic="notification", payload__notification=written[0].pk)
    assert event.user_ids == [people[recipient].pk] and not event.for_admins


@pytest.mark.parametrize("action", ACTIONS)
def test_action_rolled_back_notifies_nobody(action, people, django_capture_on_commit_callbacks):
    do, _, _ = ACTIONS[action]
    with (
        django_capture_on_commit_callbacks(execute=True),
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        do(people)
        raise RuntimeError("rolled back")
    assert not Notification.objects.exists()
    assert not RealtimeEvent.objects.exists()


def test_lead_turned_hot_notifies_its_rep_once(rep, teams, django_capture_on_commit_callbacks):
    lead = CustomerFactory(owner=rep, lifecycle_stage=Customer.LifecycleStage.LEAD)
    run = WorkflowRun.objects.create(customer=lead, previous_grade=Grade.WARM, grade=Grade.HOT)
    with django_capture_on_commit_callbacks(execute=True):
        workflow_run_execute(run_id=run.pk)
        workflow_run_execute(run_id=run.pk)  # a second delivery of the task
    hot = notes(rep, Kind.LEAD_HOT)
    assert len(hot) == 1 and lead.name in hot[0].text


def test_own_actions_notify_nobody(rep, deal, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        task_create(actor=rep, data={"title": "Mine", "due_at": timezone.now()})
        sale_change_stage(actor=rep, sale=deal, to_status=Sale.Status.CONTACTED)
    assert not Notification.objects.exists()


def test_sharing_again_with_the_same_people_notifies_nobody_new(
    rep, teammate, teams, django_capture_on_commit_callbacks
):
    document = _document(rep)
    with django_capture_on_commit_callbacks(execute=True):
        document_share(actor=rep, document=document, user_ids=[teammate.pk], is_public=False)
        document_share(actor=rep, document=document, user_ids=[teammate.pk], is_public=True)
    assert len(notes(teammate, Kind.DOCUMENT_SHARED)) == 1


def test_kind_turned_off_writes_nothing(people, django_capture_on_commit_callbacks):
    preferences_save(user=people["rep"], deliveries={Kind.DEAL_CHANGED: "off"})
    with django_capture_on_commit_callbacks(execute=True):
        sale_change_stage(
            actor=people["manager"], sale=people["deal"], to_status=Sale.Status.CONTACTED
        )
    assert notes(people["rep"], Kind.DEAL_CHANGED) == []


def test_digest_emails_the_unread_of_chosen_kinds_once(people, django_capture_on_commit_callbacks):
    rep, manager = people["rep"], people["manager"]
    preferences_save(user=rep, deliveries={Kind.TASK_ASSIGNED: "digest"})
    with django_capture_on_commit_callbacks(execute=True):
        task_create(actor=manager, data={"title": "Call A", "assigned_to": rep,
                                         "due_at": timezone.now()})  # fmt: skip
        sale_change_stage(actor=manager, sale=people["deal"], to_status=Sale.Status.CONTACTED)
    assert len(notes(rep, Kind.TASK_ASSIGNED)) == 1  # in the app as well
    with django_capture_on_commit_callbacks(execute=True):
        assert digests_send() == 1
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == [rep.email]
    assert "Call A" in mail.outbox[0].body
    assert "moved your deal" not in mail.outbox[0].body  # that kind stays in the app only
    with django_capture_on_commit_callbacks(execute=True):
        assert digests_send(now=timezone.now() + timedelta(minutes=1)) == 0
    assert len(mail.outbox) == 1


def test_digest_skips_suppressed_addresses_and_those_who_did_not_choose_it(
    people, django_capture_on_commit_callbacks
):
    rep, teammate, manager = people["rep"], people["teammate"], people["manager"]
    preferences_save(user=rep, deliveries={Kind.TASK_ASSIGNED: "digest"})
    Suppression.objects.create(email=rep.email.lower(), reason="bounce")
    with django_capture_on_commit_callbacks(execute=True):
        for user in (rep, teammate):
            task_create(actor=manager, data={"title": "Call", "assigned_to": user,
                                             "due_at": timezone.now()})  # fmt: skip
        assert digests_send() == 0
    assert mail.outbox == []
