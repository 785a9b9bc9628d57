"""Pipeline automation (DESIGN.md "Pipeline"): deals move forward when the events of the
spec's rules are there, entering a stage creates its tasks once, stale deals get flagged
and reminded.

Rules, each evaluated in SQL over any number of deals:
- NEW -> CONTACTED: an activity was logged in the last 7 days (since the deal entered NEW);
- CONTACTED -> PROPOSAL: a proposal was sent (an activity) or attached (a document: the
  documents app answers crm.reactions' DEALS_WITH_PROPOSAL);
- PROPOSAL / NEGOTIATION: the managers' AutomationRules ("customer replied" -> NEGOTIATION,
  "no activity for N days" -> a stage or just the stale flag).

Only events after the deal entered its current stage count, and a move is made only if the
deal is still where it was when evaluated: a person's move, before or during an evaluation,
always wins.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q, QuerySet
from django.db.models.functions import Coalesce
from django.utils import timezone

from crm.reactions import Question, ask
from sales.models import AutomationRule, Sale, SaleActivity, StageSetting, Task

CONTACT_WINDOW = timedelta(days=7)
TASK_DUE_IN = timedelta(days=2)
Status = Sale.Status


def has_proposal() -> Q:
    """Deals with a proposal sent or attached since they entered their stage."""
    sent = SaleActivity.objects.filter(
        sale=OuterRef("pk"),
        kind=SaleActivity.Kind.PROPOSAL_SENT,
        occurred_at__gte=OuterRef("stage_entered_at"),
    )
    return Q(Exists(sent)) | ask(Question.DEALS_WITH_PROPOSAL, default=Q(pk__in=[]))


def _customer_replied() -> Q:
    replies = SaleActivity.objects.filter(
        sale=OuterRef("pk"),
        kind__in=[SaleActivity.Kind.EMAIL, SaleActivity.Kind.MEETING],
        occurred_at__gte=OuterRef("stage_entered_at"),
    )
    return Q(Exists(replies))


def _quiet_since(now: datetime, days: int) -> Q:
    """No activity for `days` (counting from the stage entry when there was none)."""
    return Q(quiet_since__lt=now - timedelta(days=days))


@dataclass(frozen=True)
class Move:
    to_status: str
    reason: str
    condition: Q


def _moves(now: datetime) -> dict[str, list[Move]]:
    moves = {
        Status.NEW: [
            Move(
                Status.CONTACTED,
                "Activity logged in the last 7 days",
                Q(last_activity_at__gte=now - CONTACT_WINDOW)
                & Q(last_activity_at__gte=F("stage_entered_at")),
            )
        ],
        Status.CONTACTED: [Move(Status.PROPOSAL, "Proposal attached", has_proposal())],
    }
    for rule in AutomationRule.objects.filter(is_active=True).exclude(to_status=""):
        condition = (
            _customer_replied()
            if rule.condition == AutomationRule.Condition.CUSTOMER_REPLIED
            else _quiet_since(now, rule.days)
        )
        moves.setdefault(rule.from_status, []).append(
            Move(rule.to_status, f"Rule: {rule}", condition)
        )
    return moves


def deals_advance(*, sale_ids: list[int] | None = None, now: datetime | None = None) -> int:
    """Apply every progression rule to the given open deals (all when None); returns how
    many moved. One query per rule finds the deals; each move is its own transaction."""
    from sales.services import sale_change_stage

    now = now or timezone.now()
    moved = 0
    for from_status, moves in _moves(now).items():
        deals = Sale.objects.filter(status=from_status).alias(
            quiet_since=Coalesce("last_activity_at", "stage_entered_at")
        )
        if sale_ids is not None:
            deals = deals.filter(pk__in=sale_ids)
        for move in moves:
            candidates = list(deals.filter(move.condition).values_list("pk", "stage_entered_at"))
            for pk, entered in candidates:
                with transaction.atomic():
                    # Still where it was when evaluated? Otherwise someone moved it: they win.
                    sale = (
                        Sale.objects.select_for_update()
                        .filter(pk=pk, status=from_status, stage_entered_at=entered)
                        .first()
                    )
                    if sale is None:
                        continue
                    closing = move.to_status in Sale.CLOSED_STATUSES
                    sale_change_stage(
                        actor=None,
                        sale=sale,
                        to_status=move.to_status,
                        closed_on=timezone.localdate(now) if closing else None,
                        lost_reason=move.reason if move.to_status == Status.LOST else "",
                        reason=move.reason,
                        is_automatic=True,
                    )
                    moved += 1
    return moved


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
                due_at=now + TASK_DUE_IN,
                is_auto_created=True,
                automation_key=key,
            )
            for title in titles
            if title[:200] not in existing
        ],
        ignore_conflicts=True,
    )
    return len([title for title in titles if title[:200] not in existing])


def stale_condition(*, now: datetime | None = None, max_days: dict | None = None) -> Q:
    """Q over Sale (with the `quiet_since` alias) for open deals that are stale: longer in
    their stage than its maximum, or matching a manager's "no activity" flag rule."""
    now = now or timezone.now()
    q = Q()
    if max_days is None:
        max_days = dict(StageSetting.objects.values_list("status", "max_days_in_stage"))
    for status, days in max_days.items():
        q |= Q(status=status, stage_entered_at__lt=now - timedelta(days=days))
    for rule in AutomationRule.objects.filter(
        is_active=True, to_status="", condition=AutomationRule.Condition.NO_ACTIVITY
    ):
        q |= Q(status=rule.from_status) & _quiet_since(now, rule.days)
    return q if q else Q(pk__in=[])


def with_quiet_since(deals: QuerySet) -> QuerySet:
    return deals.alias(quiet_since=Coalesce("last_activity_at", "stage_entered_at"))


def stale_reminders_create(*, now: datetime | None = None) -> int:
    """One reminder task per stale deal and stage, for its owner (nightly)."""
    now = now or timezone.now()
    stale_deals = with_quiet_since(Sale.objects.open()).filter(
        stale_condition(now=now), assigned_to__isnull=False
    )
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
    return len(tasks)


def deals_advance_later(*, sale_ids: list[int]) -> None:
    from sales.tasks import advance_deals

    ids = list(sale_ids)
    transaction.on_commit(lambda: advance_deals.delay(ids))
