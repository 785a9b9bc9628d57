"""What happens when a lead changes grade (DESIGN.md "Leads"):

- hot: the least-loaded senior rep of the owner's team takes the lead (round-robin between
  equals), gets a call task due in 2 hours and a high-priority task, and a personal email;
- warm: the least-loaded rep of the team takes it, with a follow-up task due in 24 hours and
  a case-study email;
- cold: the lead enters the managers' chosen email sequence, which stops by itself when the
  lead warms up (the sequence's stop conditions).

The emails are campaigns' (crm.reactions: LEAD_NEEDS_FOLLOW_UP prepares the hot/warm email
as a draft on the rep's task, LEADS_TURNED_COLD enrols in the sequence), so this module
holds no email text.

A transition is claimed once in the rescoring transaction (leads.services.rescore); its
hot/warm work is a WorkflowRun that a task carries out once.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Count, F, OuterRef, Q, Subquery
from django.urls import reverse
from django.utils import timezone

from crm.models import Notification, TeamMembership
from crm.notifications import Notice
from crm.reactions import Event, react
from customers.models import Customer
from customers.services import customer_assign_owner_automatically
from leads.models import Grade, WorkflowRun


@dataclass(frozen=True)
class GradeTransition:
    customer_id: int
    previous: str | None
    current: str


def workflows_start(*, transitions: list[GradeTransition], now: datetime) -> None:
    """Inside the rescoring transaction: cold leads enrolled in bulk, hot/warm runs queued."""
    cold = [t.customer_id for t in transitions if t.current == Grade.COLD]
    if cold:
        react(Event.LEADS_TURNED_COLD, customer_ids=cold, now=now)
    runs = WorkflowRun.objects.bulk_create(
        [
            WorkflowRun(customer_id=t.customer_id, previous_grade=t.previous or "",
                        grade=t.current, created_at=now)
            for t in transitions
            if t.current in (Grade.HOT, Grade.WARM)
        ]
    )  # fmt: skip
    if runs:
        from leads.tasks import run_workflow

        run_ids = [run.pk for run in runs]
        transaction.on_commit(lambda: [run_workflow.delay(run_id) for run_id in run_ids])


def _least_loaded_rep(customer: Customer, *, seniors_only: bool):
    """The team's rep with the fewest hot and warm leads; ties go to whoever was given a lead
    longest ago (round-robin). None when the owner has no team."""
    membership = TeamMembership.objects.filter(user_id=customer.owner_id).first()
    if membership is None:
        return None
    members = TeamMembership.objects.filter(team_id=membership.team_id, user__is_active=True)
    if seniors_only and members.filter(is_senior=True).exists():
        members = members.filter(is_senior=True)
    User = get_user_model()
    return (
        User.objects.filter(pk__in=members.values("user_id"))
        .annotate(
            load=Count(
                "owned_customers",
                filter=Q(
                    owned_customers__lifecycle_stage=Customer.LifecycleStage.LEAD,
                    owned_customers__lead_score__grade__in=[Grade.HOT, Grade.WARM],
                ),
                distinct=True,
            ),
            last_given=Subquery(
                WorkflowRun.objects.filter(assigned_to=OuterRef("pk"))
                .exclude(finished_at=None)
                .order_by("-finished_at")
                .values("finished_at")[:1]
            ),
        )
        .order_by("load", F("last_given").asc(nulls_first=True), "pk")
        .first()
    )


def workflow_run_execute(*, run_id: int) -> WorkflowRun | None:
    """Carry out a pending run once (a second delivery of the task finds it done)."""
    with transaction.atomic():
        run = (
            WorkflowRun.objects.select_for_update()
            .select_related("customer")
            .filter(pk=run_id, status=WorkflowRun.Status.PENDING)
            .first()
        )
        if run is None:
            return None
        customer = run.customer
        now = timezone.now()
        hot = run.grade == Grade.HOT
        rep = _least_loaded_rep(customer, seniors_only=hot) or customer.owner
        actions = []
        if rep is not None and rep.pk != customer.owner_id:
            customer_assign_owner_automatically(
                customer_id=customer.pk, owner=rep, reason=f"Lead turned {run.grade}"
            )
            actions.append(f"Assigned to {rep.get_full_name() or rep.username}")
        if rep is not None:
            tasks = _tasks_for(run.grade, customer, now)
            actions.extend(f"Task: {title}" for title, _priority, _due in tasks)
            react(
                Event.LEAD_NEEDS_FOLLOW_UP,
                assigned_to=rep,
                customer=customer,
                tasks=tasks,
                grade=run.grade,
                actions=actions,
            )
        if hot and rep is not None:
            _lead_hot_notify(customer=customer, rep=rep)
        run.assigned_to = rep
        run.actions = actions
        run.status = WorkflowRun.Status.DONE
        run.finished_at = now
        run.save(update_fields=["assigned_to", "actions", "status", "finished_at"])
    return run


def _tasks_for(grade: str, customer: Customer, now: datetime) -> list[tuple[str, str, datetime]]:
    """(title, priority, due) of the follow-up tasks; the priorities are sales.Task's."""
    if grade == Grade.HOT:
        return [
            (f"Call {customer.name} – hot lead", "URGENT", now + timedelta(hours=2)),
            (f"Prepare an offer for {customer.name}", "HIGH", now + timedelta(days=1)),
        ]
    return [(f"Follow up with {customer.name}", "MEDIUM", now + timedelta(hours=24))]


def _lead_hot_notify(*, customer: Customer, rep) -> None:
    """The rep who now owns the hot lead (after commit, crm.reactions LEAD_TURNED_HOT)."""
    notice = Notice(
        kind=Notification.Kind.LEAD_HOT,
        recipient_ids=[rep.pk],
        text=f"Your lead {customer.name} turned hot: call them within 2 hours.",
        link=reverse("leads:detail", args=[customer.pk]),
        obj=customer,
    )
    react(Event.LEAD_TURNED_HOT, notices=[notice])
