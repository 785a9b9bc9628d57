"""Rescoring leads: the scores are computed in SQL (leads.scoring) and written in chunks; a
grade change is claimed once and starts its workflow (leads.services.workflows)."""

from collections import defaultdict
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from crm.bulk import bulk_upsert
from crm.reactions import Question, ask
from customers.models import Customer
from leads.models import LeadScore, RescoreRun, ScoreChange, ScoringRule, grade_for
from leads.scoring import (
    FIELD_SCORE_COLUMNS,
    SCORE_COLUMNS,
    annotate_scores,
    engagement_by_customer,
)
from leads.services.workflows import GradeTransition, workflows_start

RESCORE_CHUNK = 5000
UNGRADED = ""  # a LeadScore row created in this rescoring, before its first grade is claimed


def leads_rescore(
    *,
    customer_ids: list[int] | None = None,
    now: datetime | None = None,
    progress=None,
    start_workflows: bool = True,
) -> list[GradeTransition]:
    """Recompute the scores of the given leads (all leads when None), in chunks.

    Writes LeadScore with one upsert per chunk and a ScoreChange for each lead whose total
    or grade changed; returns the grade transitions. start_workflows=False grades without
    the hot/warm/cold workflows: for the first scoring of an existing database (go-live) or
    demo data, where every lead would otherwise be reassigned, tasked and emailed at once.
    """
    now = now or timezone.now()
    rules = list(ScoringRule.objects.all())
    leads = Customer.objects.leads().order_by("pk")
    if customer_ids is not None:
        leads = leads.filter(pk__in=customer_ids)
    ids = list(leads.values_list("pk", flat=True))
    # Rescoring everyone: all engagement sums in one pass; otherwise per chunk.
    engagement = engagement_by_customer(None, now=now) if customer_ids is None else None
    transitions: list[GradeTransition] = []
    for start in range(0, len(ids), RESCORE_CHUNK):
        chunk = ids[start : start + RESCORE_CHUNK]
        transitions += _rescore_chunk(
            chunk, now=now, rules=rules, engagement=engagement, start_workflows=start_workflows
        )
        if progress:
            progress(min(start + RESCORE_CHUNK, len(ids)), len(ids))
    return transitions


def _rescore_chunk(
    ids: list[int], *, now, rules, engagement=None, start_workflows=True
) -> list[GradeTransition]:
    previous_columns = [f"lead_score__{column}" for column in SCORE_COLUMNS]
    rows = annotate_scores(Customer.objects.filter(pk__in=ids).order_by(), rules=rules).values_list(
        "pk",
        *FIELD_SCORE_COLUMNS,
        *previous_columns,
        "lead_score__ai_score",
        "lead_score__total_score",
        "lead_score__grade",
    )
    if engagement is None:
        engagement = engagement_by_customer(ids, now=now)
    # The model's probability, when ai/ has an active model; it grades the leads instead of
    # the rule total when the managers chose so ("grades").
    ai_scores = ask(Question.LEAD_AI_SCORES, {}, customer_ids=ids, now=now)
    scores, changes, unchanged = [], [], []
    wanted: dict[tuple[str, str], list[int]] = defaultdict(list)
    totals: dict[int, tuple[int | None, int]] = {}
    field_count = len(FIELD_SCORE_COLUMNS)
    for pk, *values, previous_ai, previous_total, previous_grade in rows:
        factor_scores = [*values[:field_count], engagement.get(pk, 0)]
        total = max(0, min(100, sum(factor_scores)))
        ai = ai_scores.get(pk)
        ai_score, explanation = (ai["score"], ai["explanation"]) if ai else (None, {})
        grade = grade_for(ai_score if ai and ai["grades"] else total)
        if (
            previous_grade == grade
            and list(values[field_count:]) == factor_scores
            and previous_ai == ai_score
        ):
            # Most leads on a nightly run: only the timestamp moves (an unchanged model
            # score keeps its explanation; reading every stored one back costs more).
            unchanged.append(pk)
            continue
        scores.append({
            "customer_id": pk,
            **dict(zip(SCORE_COLUMNS, factor_scores, strict=True)),
            "total_score": total,
            "ai_score": ai_score,
            "ai_explanation": explanation,
            "grade": previous_grade or UNGRADED,  # grades change only through a claim below
            "last_calculated": now,
        })  # fmt: skip
        totals[pk] = (previous_total, total)
        if previous_grade != grade:
            wanted[(previous_grade or UNGRADED, grade)].append(pk)
        elif previous_total != total:
            changes.append(_score_change(pk, previous_total, total, grade, grade, now))
    transitions = []
    with transaction.atomic():
        bulk_upsert(
            LeadScore,
            scores,
            unique_fields=["customer"],
            update_fields=[
                *SCORE_COLUMNS,
                "total_score",
                "ai_score",
                "ai_explanation",
                "last_calculated",
            ],
        )
        LeadScore.objects.filter(customer_id__in=unchanged).update(last_calculated=now)
        for (previous, grade), pks in wanted.items():
            # Claim the transition: only the rescoring that still finds the old grade (after
            # any concurrent one has committed) moves it, so each transition happens once.
            claimed = list(
                LeadScore.objects.select_for_update()
                .filter(customer_id__in=pks, grade=previous)
                .values_list("customer_id", flat=True)
            )
            LeadScore.objects.filter(customer_id__in=claimed).update(grade=grade)
            for pk in claimed:
                previous_total, total = totals[pk]
                changes.append(_score_change(pk, previous_total, total, grade, previous, now))
                transitions.append(GradeTransition(pk, previous or None, grade))
        ScoreChange.objects.bulk_create(changes, batch_size=RESCORE_CHUNK)
        if start_workflows:
            workflows_start(transitions=transitions, now=now)
    return transitions


def _score_change(pk, previous_total, total, grade, previous_grade, now) -> ScoreChange:
    return ScoreChange(
        customer_id=pk,
        total_score=total,
        grade=grade,
        previous_total=previous_total,
        previous_grade=previous_grade if previous_grade != UNGRADED else "",
        at=now,
    )


def lead_rescore_later(*, customer_ids: list[int], start_workflows: bool = True) -> None:
    """Rescore these leads in one Celery task once the current transaction commits;
    start_workflows=False grades them without the grade workflows (an import)."""
    from leads.tasks import rescore_leads

    ids = list(customer_ids)
    if start_workflows:
        transaction.on_commit(lambda: rescore_leads.delay(ids))
    else:
        transaction.on_commit(lambda: rescore_leads.delay(ids, start_workflows=False))


def rescore_run_execute(*, run_id: int) -> RescoreRun | None:
    """Rescore every lead for a queued run, recording progress as it goes."""
    updated = RescoreRun.objects.filter(pk=run_id, status=RescoreRun.Status.QUEUED).update(
        status=RescoreRun.Status.RUNNING
    )
    if not updated:
        return None

    def progress(done: int, total: int) -> None:
        RescoreRun.objects.filter(pk=run_id).update(done=done, total=total)

    try:
        leads_rescore(progress=progress)
    except Exception as error:
        RescoreRun.objects.filter(pk=run_id).update(
            status=RescoreRun.Status.FAILED, error=str(error)[:2000], finished_at=timezone.now()
        )
        raise
    RescoreRun.objects.filter(pk=run_id).update(
        status=RescoreRun.Status.DONE, finished_at=timezone.now()
    )
    return RescoreRun.objects.get(pk=run_id)
