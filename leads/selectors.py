"""Reads for leads, always filtered through crm.permissions."""

from typing import Any

from django.db.models import QuerySet

from crm.permissions import visible_customers
from crm.permissions.scopes import of_owner
from customers.models import Customer
from leads.models import (
    FACTOR_MAX,
    Factor,
    LeadActivity,
    LeadScore,
    ScoreChange,
    WorkflowRun,
)


def lead_list(*, user, filters: dict[str, Any] | None = None) -> "LeadsBestFirst":
    """Visible leads, best score first (unscored leads last), for a paginator."""
    filters = filters or {}
    leads = visible_customers(user).leads().search(filters.get("q", ""))
    if filters.get("grade"):
        leads = leads.filter(lead_score__grade=filters["grade"])
    if filters.get("owner"):
        leads = of_owner(leads, filters["owner"], field="owner")
    if filters.get("source"):
        leads = leads.filter(source=filters["source"])
    if filters.get("score_min") is not None:
        leads = leads.filter(lead_score__total_score__gte=filters["score_min"])
    if filters.get("score_max") is not None:
        leads = leads.filter(lead_score__total_score__lte=filters["score_max"])
    return LeadsBestFirst(leads.select_related("owner", "lead_score"))


class LeadsBestFirst:
    """Leads best score first, then the ones not scored yet (the score is computed by a
    task), as a sequence a Paginator can count and slice.

    One ORDER BY score NULLS LAST over a LEFT JOIN makes PostgreSQL join and sort every
    lead in reach (0.1 s for a team at 100k customers); the scored ones alone, in score
    order, walk the score index and stop after a page (1 ms). So a page reads the scored
    leads first and the unscored ones only where the scored ones run out."""

    def __init__(self, leads: QuerySet[Customer]):
        self.leads = leads
        self.scored = leads.filter(lead_score__isnull=False).order_by(
            "-lead_score__total_score", "name", "pk"
        )
        self.unscored = leads.filter(lead_score__isnull=True).order_by("name", "pk")

    def count(self) -> int:
        return self.leads.count()

    def __len__(self) -> int:
        return self.count()

    def __getitem__(self, key: slice) -> list[Customer]:
        if not isinstance(key, slice) or key.step not in (None, 1):
            raise TypeError("LeadsBestFirst takes slices without a step.")
        start, stop = key.start or 0, key.stop
        if stop is None:
            stop = self.count()
        rows = list(self.scored[start:stop])
        if len(rows) == stop - start:
            return rows
        # The scored leads end before this slice does: the rest are unscored leads.
        scored_count = start + len(rows) if rows else self.scored.count()
        offset = max(0, start - scored_count)
        return rows + list(self.unscored[offset : offset + (stop - start) - len(rows)])


def lead_score(*, customer: Customer) -> LeadScore | None:
    """The lead's current score, or None before its first scoring."""
    return LeadScore.objects.filter(customer=customer).first()


def lead_score_breakdown(*, score: LeadScore | None) -> list[dict[str, Any]]:
    """Each factor's points (from `lead_score`) and its maximum, for the lead page."""
    return [
        {
            "factor": factor.label,
            "points": getattr(score, f"{factor.value}_score", 0) if score else 0,
            "max": FACTOR_MAX[factor],
        }
        for factor in Factor
    ]


def lead_score_history(*, customer: Customer, limit: int = 200) -> list[dict[str, Any]]:
    changes = ScoreChange.objects.filter(customer=customer).order_by("-at")[:limit]
    return [
        {"at": change.at.isoformat(), "total": change.total_score, "grade": change.grade}
        for change in reversed(list(changes))
    ]


def lead_workflow_runs(*, customer: Customer, limit: int = 20) -> QuerySet[WorkflowRun]:
    return customer.workflow_runs.select_related("assigned_to")[:limit]


def lead_activities(*, customer: Customer, limit: int = 100) -> QuerySet[LeadActivity]:
    return customer.lead_activities.select_related("recorded_by")[:limit]
