"""Nightly rescoring of 100,000 leads with 1,000,000 activities, against the obvious way."""

import random
from collections import defaultdict
from datetime import timedelta
from unittest import mock

from django.db import transaction
from django.utils import timezone

from bench import database
from bench.measure import stopwatch
from bench.registry import scenario
from crm.bulk import bulk_insert
from customers.models import Customer
from leads.models import FACTOR_MAX, ActivityType, LeadActivity, LeadScore, ScoringRule, grade_for
from leads.services import leads_rescore

LEADS = 100_000
ACTIVITIES = 1_000_000
BASELINE_SAMPLE = 5_000
HALF_LIFE_DAYS = 30


def _ensure_activities(customer_ids: list[int]) -> None:
    if LeadActivity.objects.count() >= ACTIVITIES:
        return
    LeadActivity.objects.all().delete()
    rng = random.Random(7)
    now = timezone.now()
    types = list(ActivityType.values)
    impacts = {rule.key: rule.points for rule in ScoringRule.objects.filter(factor="engagement")}
    print("  generating 1,000,000 lead activities (untimed)…", flush=True)
    for _batch in range(ACTIVITIES // 100_000):
        rows = []
        for _ in range(100_000):
            kind = rng.choice(types)
            rows.append(
                {
                    "customer_id": rng.choice(customer_ids),
                    "activity_type": kind,
                    "details": {},
                    "score_impact": impacts.get(kind, 0),
                    "timestamp": now - timedelta(days=rng.uniform(0, 400)),
                }
            )
        bulk_insert(LeadActivity, rows)
    database.analyze()


def _obvious_rescore(customer_ids: list[int]) -> None:
    """The seed's approach: each lead loaded, its activities summed in Python, saved alone."""
    now = timezone.now()
    rules = list(ScoringRule.objects.all())
    for customer in Customer.objects.filter(pk__in=customer_ids):
        points = defaultdict(int)
        for rule in rules:
            if rule.factor == "company_size":
                size = customer.company_size or 0
                if size >= (rule.min_value or 0) and (
                    rule.max_value is None or size <= rule.max_value
                ):
                    points["company_size"] = rule.points
            elif rule.factor == "budget" and rule.key == customer.budget_range:
                points["budget"] = rule.points
            elif rule.factor == "source_quality" and rule.key == customer.source:
                points["source_quality"] = rule.points
        engagement = 0.0
        for activity in customer.lead_activities.all():
            age = (now - activity.timestamp).total_seconds() / 86400
            if 0 <= age < 365:
                engagement += activity.score_impact * 0.5 ** (age / HALF_LIFE_DAYS)
        points["engagement"] = min(round(engagement), FACTOR_MAX["engagement"])
        total = min(sum(points.values()), 100)
        LeadScore.objects.update_or_create(
            customer=customer,
            defaults={
                "company_size_score": points["company_size"],
                "budget_score": points["budget"],
                "engagement_score": points["engagement"],
                "source_quality_score": points["source_quality"],
                "total_score": total,
                "grade": grade_for(total),
                "last_calculated": now,
            },
        )


@scenario("lead_rescore_100k", targets={"seconds_max": 20, "ratio_min": 20}, order=30)
def lead_rescore_100k() -> dict:
    """leads_rescore() over 100k leads and 1M activities (a nightly run, after a first one)."""
    database.ensure_seeded_100k()
    customer_ids = list(Customer.objects.order_by("pk").values_list("pk", flat=True)[:LEADS])
    stages = dict(Customer.objects.filter(pk__in=customer_ids).values_list("pk", "lifecycle_stage"))
    Customer.objects.filter(pk__in=customer_ids).update(lifecycle_stage="lead")
    _ensure_activities(customer_ids)
    # The scoring is measured, not the workflows it would start: their tasks are not queued.
    with mock.patch("leads.tasks.run_workflow.delay"):
        try:
            leads_rescore()  # untimed: the first run grades every lead
            with stopwatch() as ours:
                leads_rescore(now=timezone.now() + timedelta(days=1))
            sample = customer_ids[:BASELINE_SAMPLE]
            with stopwatch() as baseline, transaction.atomic():
                _obvious_rescore(sample)
                transaction.set_rollback(True)
        finally:
            by_stage = defaultdict(list)
            for pk, stage in stages.items():
                by_stage[stage].append(pk)
            for stage, pks in by_stage.items():
                Customer.objects.filter(pk__in=pks).update(lifecycle_stage=stage)
    return {
        "n": len(customer_ids),
        "activities": LeadActivity.objects.count(),
        "seconds": round(ours["seconds"], 3),
        "baseline_seconds": round(baseline["seconds"] * len(customer_ids) / len(sample), 3),
        "baseline_sample": len(sample),
    }
