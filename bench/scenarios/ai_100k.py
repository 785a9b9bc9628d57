"""The AI app at scale: training on 100,000 labelled leads with 1,000,000 activities,
batch scoring of 100,000 leads with their stored top factors, and recommendations for one
customer among 200,000 customers and 2,000 documents.

The sizes are parameters (environment, for a smaller machine): AI_BENCH_LEADS (100,000),
AI_BENCH_ACTIVITIES_PER_LEAD (about 10, so 1,000,000 activities), AI_BENCH_CUSTOMERS
(200,000 in all for recommend_200k) and AI_BENCH_DOCUMENTS (2,000). The data is made
once (untimed) and reused by the next runs.
"""

import json
import os
import random
import subprocess
import sys
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from unittest import mock

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone

from bench import database
from bench.measure import percentile, stopwatch
from bench.registry import scenario
from crm.bulk import analyze, bulk_insert
from crm.roles import REP_GROUP
from customers.models import Customer, Industry
from leads.models import LeadActivity

LEADS = int(os.environ.get("AI_BENCH_LEADS", 100_000))
ACTIVITIES_PER_LEAD = float(os.environ.get("AI_BENCH_ACTIVITIES_PER_LEAD", 9.3))
CUSTOMERS = int(os.environ.get("AI_BENCH_CUSTOMERS", 200_000))
DOCUMENTS = int(os.environ.get("AI_BENCH_DOCUMENTS", 2_000))
PREFIX = "benchai"
WORDS = [
    "warehouse", "logistics", "pricing", "security", "compliance", "onboarding", "analytics",
    "cloud", "migration", "retail", "banking", "hospital", "factory", "energy", "school",
    "procurement", "api", "integration",
]  # fmt: skip


def _rep():
    user, created = get_user_model().objects.get_or_create(username="bench_ai_rep")
    if created:
        user.groups.add(Group.objects.get(name=REP_GROUP))
    return user


def _history_ids() -> list[int]:
    return list(
        Customer.objects.filter(email__startswith=f"{PREFIX}.")
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def _ensure_history() -> list[int]:
    """LEADS leads whose labels are all known (created over 181-720 days ago)."""
    database.ensure_database()
    ids = _history_ids()
    if len(ids) >= LEADS:
        return ids[:LEADS]
    from demo.lead_history import lead_history_generate

    print(f"  generating {LEADS:,} labelled leads and their activities (untimed)…", flush=True)
    started = time.monotonic()
    lead_history_generate(
        leads=LEADS - len(ids), owner_ids=[_rep().pk], seed=100 + len(ids),
        activities_per_lead=ACTIVITIES_PER_LEAD, newest_days=181, email_prefix=PREFIX,
    )  # fmt: skip
    print(f"  … in {time.monotonic() - started:.0f} s", flush=True)
    return _history_ids()[:LEADS]


_CHILD = """
import json, sys, time
from unittest import mock
sys.path.insert(0, {root!r})
from bench.run import configure_environment, setup_django
configure_environment(); setup_django()
from ai.services.training import models_train
from ai.models import LeadScoringModel
from pathlib import Path
def peak():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
before = peak()
with mock.patch("ai.tasks.rescore_all_leads.delay"):
    started = time.perf_counter()
    summary = models_train()
    seconds = time.perf_counter() - started
model = LeadScoringModel.objects.filter(team=None).order_by("-version").first()
print("RESULT" + json.dumps({{"seconds": round(seconds, 3), "peak_mb": peak(),
    "baseline_mb": before, "model_id": model.pk, "summary": summary.get("outcome", "")}}))
"""


@scenario(
    "ai_train_100k",
    targets={"seconds_max": 90, "peak_mb_max": 2048},
    order=60,
)
def ai_train_100k() -> dict:
    """Features, training and evaluation on 100k labelled leads with 1M activities."""
    from ai.models import LeadScoringModel

    ids = _ensure_history()
    activities = LeadActivity.objects.filter(customer_id__in=ids).count() if ids else 0
    # A fresh process: its peak memory is the training's, not this process's data making.
    code = _CHILD.format(root=str(Path(__file__).resolve().parents[2]))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=os.environ.copy(), check=False)  # fmt: skip
    line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT")), None)
    if line is None:
        raise RuntimeError(f"training child failed: {done.stderr[-2000:]}")
    result = json.loads(line[len("RESULT") :])
    model = LeadScoringModel.objects.get(pk=result["model_id"])
    metrics = model.metrics
    return {
        "n": model.sample_count,
        "activities": activities,
        "conversions": model.conversion_count,
        "test_leads": model.test_count,
        "seconds": result["seconds"],
        "peak_mb": result["peak_mb"],
        "baseline_mb": result["baseline_mb"],
        "auc_model": round(metrics.get("auc_model", 0), 4),
        "auc_rules": round(metrics.get("auc_rules", 0), 4),
        "brier_model": round(metrics.get("brier_model", 0), 4),
        "brier_rules": round(metrics.get("brier_rules", 0), 4),
        "lift_top_decile_model": round(metrics.get("lift_top_decile_model", 0), 3),
        "lift_top_decile_rules": round(metrics.get("lift_top_decile_rules", 0), 3),
        "activated": model.is_active,
        "outcome": result["summary"][:300],
    }


@scenario("ai_score_100k", targets={"seconds_max": 60}, order=61)
def ai_score_100k() -> dict:
    """Batch scoring (rule and model score, top factors stored) of 100k leads."""
    from ai.models import LeadScoringModel, ModelStatus
    from leads.models import LeadScore
    from leads.services import leads_rescore

    ids = _ensure_history()
    model = LeadScoringModel.objects.filter(team=None).order_by("-version").first()
    if model is None:
        raise RuntimeError("Run ai_train_100k first: there is no model to score with.")
    forced = not model.is_active
    if forced:  # the speed of scoring is measured even if the model lost to the rules
        LeadScoringModel.objects.filter(is_active=True, team=None).update(is_active=False)
        LeadScoringModel.objects.filter(pk=model.pk).update(
            is_active=True, status=ModelStatus.ACTIVE
        )
    stages = dict(Customer.objects.filter(pk__in=ids).values_list("pk", "lifecycle_stage"))
    Customer.objects.filter(pk__in=ids).update(lifecycle_stage="lead")
    try:
        with mock.patch("leads.tasks.run_workflow.delay"), stopwatch() as clock:
            leads_rescore(customer_ids=ids, start_workflows=False)
        scored = LeadScore.objects.filter(customer_id__in=ids).exclude(ai_score=None)
        count = scored.count()
        with_factors = scored.exclude(ai_explanation={}).count()
    finally:
        by_stage: dict[str, list[int]] = {}
        for pk, stage in stages.items():
            by_stage.setdefault(stage, []).append(pk)
        for stage, pks in by_stage.items():
            Customer.objects.filter(pk__in=pks).update(lifecycle_stage=stage)
        if forced:
            LeadScoringModel.objects.filter(pk=model.pk).update(
                is_active=False, status=ModelStatus.CANDIDATE
            )
    return {
        "n": count,
        "with_factors": with_factors,
        "seconds": round(clock["seconds"], 3),
        "model_version": model.version,
        "forced_activation": forced,
        "auc_model": round(model.metrics.get("auc_model", 0), 4),
        "auc_rules": round(model.metrics.get("auc_rules", 0), 4),
    }


def _ensure_customers_and_documents(rep) -> None:
    from documents.models import Document

    missing = CUSTOMERS - Customer.objects.count()
    if missing > 0:
        print(f"  adding {missing:,} customers (untimed)…", flush=True)
        rng = random.Random(5)
        now = timezone.now()
        industries = Industry.values
        for start in range(0, missing, 20_000):
            rows = [
                {
                    "name": f"Recommend {start + i}",
                    "email": f"benchrec.{start + i}@recommend.example",
                    "industry": rng.choice(industries),
                    "company_size": rng.choice([10, 60, 300, 2000]),
                    "lifecycle_stage": rng.choice(["lead", "prospect", "customer"]),
                    "owner_id": rep.pk,
                    "notes": " ".join(rng.sample(WORDS, 3)),
                    "annual_revenue": Decimal(1_000_000),
                    "created_at": now - timedelta(days=rng.uniform(0, 700)),
                    "updated_at": now,
                }
                for i in range(min(20_000, missing - start))
            ]
            bulk_insert(Customer, rows)
    have = Document.objects.filter(title__startswith="Bench doc ").count()
    if have < DOCUMENTS:
        print(f"  adding {DOCUMENTS - have:,} documents and their engagement (untimed)…")
        rng = random.Random(9)
        owner = get_user_model().objects.get_or_create(username="bench_ai_owner")[0]
        rows = []
        for i in range(have, DOCUMENTS):
            text = " ".join(rng.choice(WORDS) for _ in range(200))
            rows.append({
                "title": f"Bench doc {i}",
                "document_type": rng.choice(["marketing", "presentation"]),
                "file": f"documents/bench/{i}.txt", "original_name": f"{i}.txt", "file_size": 10,
                "mime_type": "text/plain", "sha256": "0" * 64, "uploaded_by_id": owner.pk,
                "is_public": i % 10 != 0, "processing_status": "done", "extracted_text": text,
                "uploaded_at": timezone.now(),
            })  # fmt: skip
        document_ids = bulk_insert(Document, rows)
        customer_ids = list(Customer.objects.values_list("pk", flat=True))
        now = timezone.now()
        engagement = [
            {
                "customer_id": rng.choice(customer_ids),
                "activity_type": "download",
                "details": {"document_id": rng.choice(document_ids)},
                "score_impact": 0,
                "timestamp": now - timedelta(days=rng.uniform(40, 600)),
            }  # fmt: skip
            for _ in range(300_000)
        ]
        for start in range(0, len(engagement), 100_000):
            bulk_insert(LeadActivity, engagement[start : start + 100_000])
    analyze(Customer, LeadActivity, Document)


@scenario("recommend_200k", targets={"p95_ms_max": 50}, order=62)
def recommend_200k() -> dict:
    """Recommendations for one customer among 200k customers and 2,000 documents."""
    from ai.services.recommend import (
        document_recommendations,
        engagement_stats_refresh,
        recommendations_evaluate,
    )

    database.ensure_database()
    rep = _rep()
    _ensure_customers_and_documents(rep)
    with stopwatch() as refresh:
        stats = engagement_stats_refresh()
    customers = list(Customer.objects.filter(owner=rep).order_by("?")[:230])
    for customer in customers[:30]:  # warm-up: the TF-IDF of the documents is built once
        document_recommendations(user=rep, customer=customer)
    durations = []
    with stopwatch() as clock:
        for customer in customers[30:]:
            started = time.perf_counter()
            top = document_recommendations(user=rep, customer=customer)
            durations.append((time.perf_counter() - started) * 1000)
            assert top, "no recommendation"
    # Offline quality on this data (random engagement here, so no better than popular).
    offline = recommendations_evaluate(split_at=timezone.now() - timedelta(days=120))
    return {
        **{f"offline_{key}": value for key, value in offline.items()},
        "n": len(durations),
        "customers": Customer.objects.count(),
        "documents": DOCUMENTS,
        "seconds": round(clock["seconds"], 3),
        "p50_ms": round(percentile(durations, 50), 2),
        "p95_ms": round(percentile(durations, 95), 2),
        "stats_rows": stats,
        "stats_refresh_seconds": round(refresh["seconds"], 3),
    }
