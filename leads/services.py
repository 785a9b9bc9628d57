"""Writes for leads: scores, activities. Scores are computed in SQL (leads.scoring)."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from crm.errors import ValidationFailed
from customers.models import Customer
from leads.defaults import default_rules
from leads.models import (
    ActivityType,
    Factor,
    LeadActivity,
    LeadScore,
    ScoreChange,
    ScoringRule,
    grade_for,
)
from leads.scoring import SCORE_COLUMNS, annotate_scores

RESCORE_CHUNK = 5000


@dataclass(frozen=True)
class GradeTransition:
    customer_id: int
    previous: str | None
    current: str


def leads_rescore(
    *, customer_ids: list[int] | None = None, now: datetime | None = None, progress=None
) -> list[GradeTransition]:
    """Recompute the scores of the given leads (all leads when None), in chunks.

    Writes LeadScore with one upsert per chunk and a ScoreChange for each lead whose total
    or grade changed; returns the grade transitions for the workflows.
    """
    now = now or timezone.now()
    rules = list(ScoringRule.objects.all())
    leads = Customer.objects.leads().order_by("pk")
    if customer_ids is not None:
        leads = leads.filter(pk__in=customer_ids)
    ids = list(leads.values_list("pk", flat=True))
    transitions: list[GradeTransition] = []
    for start in range(0, len(ids), RESCORE_CHUNK):
        chunk = ids[start : start + RESCORE_CHUNK]
        transitions += _rescore_chunk(chunk, now=now, rules=rules)
        if progress:
            progress(min(start + RESCORE_CHUNK, len(ids)), len(ids))
    return transitions


def _rescore_chunk(ids: list[int], *, now, rules) -> list[GradeTransition]:
    rows = (
        annotate_scores(Customer.objects.filter(pk__in=ids), now=now, rules=rules)
        .values_list("pk", *SCORE_COLUMNS, "score_total", "lead_score__total_score",
                     "lead_score__grade")
    )  # fmt: skip
    scores, changes, transitions = [], [], []
    for pk, *factor_scores, total, previous_total, previous_grade in rows:
        total = max(0, min(100, total))
        grade = grade_for(total)
        scores.append(
            LeadScore(
                customer_id=pk,
                **dict(zip(SCORE_COLUMNS, factor_scores, strict=True)),
                total_score=total,
                grade=grade,
                last_calculated=now,
            )
        )
        if previous_total != total or previous_grade != grade:
            changes.append(
                ScoreChange(
                    customer_id=pk,
                    total_score=total,
                    grade=grade,
                    previous_total=previous_total,
                    previous_grade=previous_grade or "",
                    at=now,
                )
            )
        if previous_grade != grade:
            transitions.append(GradeTransition(pk, previous_grade, grade))
    with transaction.atomic():
        LeadScore.objects.bulk_create(
            scores,
            update_conflicts=True,
            unique_fields=["customer"],
            update_fields=[*SCORE_COLUMNS, "total_score", "grade", "last_calculated"],
            batch_size=RESCORE_CHUNK,
        )
        ScoreChange.objects.bulk_create(changes, batch_size=RESCORE_CHUNK)
    return transitions


@transaction.atomic
def scoring_rules_reset_defaults(*, actor=None) -> list[ScoringRule]:
    """Replace every scoring rule with the defaults a new installation starts with."""
    ScoringRule.objects.all().delete()
    rules = default_rules(ScoringRule)
    for rule in rules:
        rule.updated_by = actor
    return ScoringRule.objects.bulk_create(rules)


def lead_rescore_later(*, customer_id: int) -> None:
    """Rescore one lead in a Celery task once the current transaction commits."""
    from leads.tasks import rescore_lead

    transaction.on_commit(lambda: rescore_lead.delay(customer_id))


def lead_activity_record(
    *,
    customer: Customer,
    activity_type: str,
    details: dict[str, Any] | None = None,
    timestamp: datetime | None = None,
    recorded_by=None,
) -> LeadActivity:
    """Record what a lead did; its score impact comes from the engagement rules."""
    if activity_type not in ActivityType.values:
        raise ValidationFailed(f"Unknown activity type “{activity_type}”.", field="activity_type")
    timestamp = timestamp or timezone.now()
    if timestamp > timezone.now() + timedelta(minutes=5):
        raise ValidationFailed("An activity cannot happen in the future.", field="timestamp")
    rule = ScoringRule.objects.filter(factor=Factor.ENGAGEMENT, key=activity_type).first()
    with transaction.atomic():
        activity = LeadActivity.objects.create(
            customer=customer,
            activity_type=activity_type,
            details=details or {},
            score_impact=rule.points if rule else 0,
            timestamp=timestamp,
            recorded_by=recorded_by,
        )
        lead_rescore_later(customer_id=customer.pk)
    return activity
