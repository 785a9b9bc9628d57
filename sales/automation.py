"""Pipeline automation (DESIGN.md "Pipeline"): the rule engine that moves deals forward
when the events of the spec's rules are there.

Rules, each evaluated in SQL over any number of deals:
- NEW -> CONTACTED: an activity was logged in the last 7 days (since the deal entered NEW);
- CONTACTED -> PROPOSAL: a proposal was sent (an activity) or attached (a document: the
  documents app answers crm.reactions' DEALS_WITH_PROPOSAL);
- PROPOSAL / NEGOTIATION: the managers' AutomationRules ("customer replied" -> NEGOTIATION,
  "no activity for N days" -> a stage or just the stale flag).

Only events after the deal entered its current stage count, and a move is made only if the
deal is still where it was when evaluated: a person's move, before or during an evaluation,
always wins.

The reads these rules share with the board (`quiet_since`, stale deals) are SaleQuerySet
methods; the writes (a stage's tasks, stale reminders, the moves) are sales.services, which
this module calls and which never call it back: they enqueue the `sales.advance_deals` task
(sales.services.deals.deals_advance_later, which crm.reactions also lists).
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from crm.reactions import Question, ask
from sales.managers import quiet_for
from sales.models import AutomationRule, Sale, SaleActivity
from sales.services.deals import sale_change_stage

CONTACT_WINDOW = timedelta(days=7)
Status = Sale.Status


def _has_proposal() -> Q:
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
        Status.CONTACTED: [Move(Status.PROPOSAL, "Proposal attached", _has_proposal())],
    }
    for rule in AutomationRule.objects.filter(is_active=True).exclude(to_status=""):
        condition = (
            _customer_replied()
            if rule.condition == AutomationRule.Condition.CUSTOMER_REPLIED
            else quiet_for(now, rule.days)
        )
        moves.setdefault(rule.from_status, []).append(
            Move(rule.to_status, f"Rule: {rule}", condition)
        )
    return moves


def deals_advance(*, sale_ids: list[int] | None = None, now: datetime | None = None) -> int:
    """Apply every progression rule to the given open deals (all when None); returns how
    many moved. One query per rule finds the deals; each move is its own transaction."""
    now = now or timezone.now()
    moved = 0
    for from_status, moves in _moves(now).items():
        deals = Sale.objects.filter(status=from_status).with_quiet_since()
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
