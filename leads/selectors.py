"""Reads for leads, always filtered through crm.permissions."""

from typing import Any

from django.db.models import F, QuerySet

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


def lead_list(*, user, filters: dict[str, Any] | None = None) -> QuerySet[Customer]:
    """Visible leads, best score first (unscored leads last)."""
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
    return leads.select_related("owner", "lead_score").order_by(
        F("lead_score__total_score").desc(nulls_last=True), "name", "pk"
    )


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
