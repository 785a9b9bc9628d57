"""What the sales app tells people (crm.notifications): a task assigned to them, their deal
moved or edited by someone else, a deal of their team won or lost."""

from django.urls import reverse

from crm.models import Notification, TeamMembership
from crm.notifications import Notice
from crm.reactions import Event, react
from sales.models import Sale, Task

Kind = Notification.Kind


def _name(user) -> str:
    return (user.get_full_name() or user.username) if user else "The automation"


def task_assigned_notify(*, task: Task, actor=None) -> None:
    """The assignee of a task another user (or the automation: actor None) gave them."""
    if task.assigned_to_id is None or task.assigned_to_id == getattr(actor, "pk", None):
        return
    link = reverse("sales:detail", args=[task.sale_id]) if task.sale_id else ""
    notice = Notice(
        kind=Kind.TASK_ASSIGNED,
        recipient_ids=[task.assigned_to_id],
        text=f"{_name(actor)} assigned you the task “{task.title}”.",
        link=link or reverse("sales:my_tasks"),
        obj=task,
        actor=actor,
    )
    react(Event.TASK_ASSIGNED, notices=[notice])


def deal_changed_notify(*, sale: Sale, actor, text: str, also: list[int] | None = None) -> None:
    """The deal's assignee (and `also`, e.g. the one it was taken from) when someone else,
    or the automation, moved or edited it."""
    recipients = [user_id for user_id in [sale.assigned_to_id, *(also or [])] if user_id]
    recipients = [user_id for user_id in recipients if user_id != getattr(actor, "pk", None)]
    if not recipients:
        return
    notice = Notice(
        kind=Kind.DEAL_CHANGED,
        recipient_ids=recipients,
        text=f"{_name(actor)} {text}",
        link=reverse("sales:detail", args=[sale.pk]),
        obj=sale,
        actor=actor,
    )
    react(Event.DEAL_EDITED_BY_OTHER, notices=[notice])


def deal_closed_notify(*, sale: Sale, actor) -> None:
    """The managers of the assignee's team when a deal is won or lost."""
    if sale.assigned_to_id is None:
        return
    managers = list(
        TeamMembership.objects.filter(user_id=sale.assigned_to_id, team__managers__isnull=False)
        .values_list("team__managers", flat=True)
        .distinct()
    )
    if not managers:
        return
    outcome = "won" if sale.status == Sale.Status.WON else "lost"
    amount = f"{sale.amount:,.2f} {sale.currency}" if sale.amount is not None else ""
    notice = Notice(
        kind=Kind.DEAL_CLOSED,
        recipient_ids=managers,
        text=f"“{sale.title}” was {outcome}"
        + (f" ({amount})" if amount else "")
        + f" by {_name(sale.assigned_to)}.",
        link=reverse("sales:detail", args=[sale.pk]),
        obj=sale,
        actor=actor,
    )
    react(Event.DEAL_CLOSED, notices=[notice])
