"""A history of past leads for the AI app: who converted, who did not, and what they did
before and after, shared by seed_demo, the tests and the ai_* benchmarks.

Each lead has a hidden propensity built from its profile and early behaviour, partly what
the managers' rules reward (authority, budget, timeline, engagement) and partly what they
do not see (industry, the pricing page in the first week, meetings combined with a
decision maker). Converted leads become customers at their conversion moment (updated_at),
a share of them with a won deal; every lead keeps doing things after its prediction moment,
converted ones more, so a feature that peeked past the cut-off would be caught by the
tests. `signal=False` draws the outcomes at random (the model must then not be used).

Deterministic: the same arguments give the same rows (dates relative to `now`).
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

import numpy as np
from django.utils import timezone

from crm.bulk import analyze, bulk_insert
from customers.models import (
    BudgetRange,
    Customer,
    DecisionAuthority,
    Industry,
    PurchaseTimeline,
    Region,
)
from leads.models import LeadActivity, ScoringRule
from sales.models import Sale

FEATURE_DAYS = 14
BATCH = 20_000
LATER_KINDS = ["website_visit", "call_answered", "meeting_scheduled", "form_submit"]
SIZES = np.array([5, 12, 25, 60, 150, 400, 1200, 5000])
INDUSTRY_EFFECT = {"software": 1.5, "finance": 0.8, "healthcare": 0.4, "government": -1.6,
                   "education": -1.2, "retail": -0.4}  # fmt: skip


@dataclass
class History:
    customer_ids: list[int] = field(default_factory=list)
    converted: int = 0
    activities: int = 0


def _choice(rng, values, size, p=None):
    return np.asarray(values, dtype=object)[rng.choice(len(values), size=size, p=p)]


def lead_history_generate(
    *,
    leads: int,
    owner_ids: list[int],
    seed: int = 17,
    now: datetime | None = None,
    activities_per_lead: float = 10.0,
    history_days: int = 720,
    newest_days: float = FEATURE_DAYS + 1,
    signal: bool = True,
    won_deal_share: float = 0.5,
    email_prefix: str = "history",
) -> History:
    """`leads` past and current leads created between `newest_days` and `history_days` ago,
    with their activities, conversions (customer stage, and for a share a won deal)."""
    now = now or timezone.now()
    rng = np.random.default_rng(seed)
    impacts = dict(ScoringRule.objects.filter(factor="engagement").values_list("key", "points"))
    out = History()
    start = Customer.objects.count()
    for offset in range(0, leads, BATCH):
        n = min(BATCH, leads - offset)
        age_days = rng.uniform(newest_days, history_days, n)
        created = [now - timedelta(days=float(d)) for d in age_days]
        industry = _choice(rng, Industry.values, n)
        authority = _choice(rng, [v for v in DecisionAuthority.values], n)
        budget = _choice(rng, BudgetRange.values, n)
        timeline = _choice(rng, PurchaseTimeline.values, n)
        source = _choice(rng, Customer.Source.values, n)
        region = _choice(rng, Region.values, n)
        size = SIZES[rng.integers(0, len(SIZES), n)]
        # Early behaviour (the first FEATURE_DAYS days): what the model may learn from.
        interest = rng.gamma(1.5, 1.0, n)
        pricing_visits = rng.poisson(0.6 * interest)
        meetings = rng.poisson(0.15 * interest)
        opens = rng.poisson(0.8 * interest)
        clicks = rng.binomial(opens, 0.3)
        downloads = rng.poisson(0.3 * interest)
        logit = (
            -2.9
            + 0.7 * (authority == "decision_maker")
            + 0.4 * np.isin(budget, ["50k_250k", "over_250k"])
            + 0.5 * (timeline == "immediate")
            + np.vectorize(lambda i: INDUSTRY_EFFECT.get(i, 0.0))(industry)
            + 2.2 * np.minimum(pricing_visits, 3) / 3 * (size >= 60)
            + 1.8 * (meetings > 0) * (authority == "decision_maker")
            + 0.25 * np.minimum(clicks, 4)
            - 0.4 * (size < 20)
        )
        probability = 1 / (1 + np.exp(-logit))
        if not signal:
            probability = np.full(n, float(probability.mean()))
        converts = rng.random(n) < probability
        conversion_day = rng.uniform(FEATURE_DAYS + 1, 170, n)
        converted_at = age_days - conversion_day  # days before now; <= 0: not yet
        converts &= converted_at > 0
        customers = []
        for i in range(n):
            number = start + offset + i
            stage = "customer" if converts[i] else ("prospect" if interest[i] > 2.5 else "lead")
            moment = now - timedelta(days=float(converted_at[i])) if converts[i] else created[i]
            customers.append({
                "name": f"History Lead {number}",
                "email": f"{email_prefix}.{number}@history.example",
                "company": f"History Co {number % 997}",
                "industry": industry[i], "company_size": int(size[i]),
                "annual_revenue": Decimal(int(size[i]) * 90_000),
                "region": region[i], "source": source[i], "lifecycle_stage": stage,
                "decision_authority": authority[i], "budget_range": budget[i],
                "purchase_timeline": timeline[i],
                "owner_id": owner_ids[(number * 7919) % len(owner_ids)],
                "created_at": created[i], "updated_at": moment,
            })  # fmt: skip
        ids = bulk_insert(Customer, customers)
        out.customer_ids += ids
        out.converted += int(converts.sum())
        activities = []

        def add(i, kind, day, details=None, created=created, activities=activities, ids=ids):
            moment = created[i] + timedelta(days=float(day))
            if moment < now:
                activities.append({
                    "customer_id": ids[i], "activity_type": kind, "details": details or {},
                    "score_impact": impacts.get(kind, 0), "timestamp": moment,
                })  # fmt: skip

        noise = rng.poisson(max(0.0, activities_per_lead - 4), n)
        for i in range(n):
            early = FEATURE_DAYS - 0.01
            for _ in range(pricing_visits[i]):
                add(i, "website_visit", rng.uniform(0, min(7, early)), {"page": "/pricing"})
            for _ in range(meetings[i]):
                add(i, "meeting_scheduled", rng.uniform(0, early))
            for _ in range(opens[i]):
                add(i, "email_open", rng.uniform(0, early))
            for _ in range(clicks[i]):
                add(i, "email_click", rng.uniform(0, early))
            for _ in range(downloads[i]):
                add(i, "download", rng.uniform(0, early))
            # After the prediction moment: heavier for the converted (a leak to avoid).
            later = noise[i] + (6 if converts[i] else 0)
            for _ in range(later):
                kind = str(rng.choice(LATER_KINDS))
                add(i, kind, rng.uniform(FEATURE_DAYS, 200))
        for chunk in range(0, len(activities), 100_000):
            bulk_insert(LeadActivity, activities[chunk : chunk + 100_000])
        out.activities += len(activities)
        deals = []
        for i in np.flatnonzero(converts & (rng.random(n) < won_deal_share)):
            closed = now - timedelta(days=float(converted_at[i]))
            deals.append({
                "title": f"First order {start + offset + i}", "customer_id": ids[i],
                "assigned_to_id": customers[i]["owner_id"],
                "customer_owner_id": customers[i]["owner_id"],
                "amount": Decimal(5000 + int(size[i]) * 10), "status": "WON",
                "closed_at": closed, "created_at": created[i] + timedelta(days=FEATURE_DAYS + 0.5),
                "updated_at": closed,
            })  # fmt: skip
        _deals_insert(deals)
    analyze(Customer, LeadActivity, Sale)
    return out


def _deals_insert(rows: list[dict]) -> None:
    """Won deals through Sale's own defaults (stage bookkeeping is the deal generator's)."""
    if not rows:
        return
    objects = []
    for row in rows:
        sale = Sale(**{k: v for k, v in row.items() if k not in ("created_at", "updated_at")})
        if hasattr(sale, "stage_entered_at"):
            sale.stage_entered_at = row["closed_at"]
        objects.append(sale)
    created = Sale.objects.bulk_create(objects, batch_size=2000)
    for sale, row in zip(created, rows, strict=True):
        sale.created_at = row["created_at"]
    Sale.objects.bulk_update(created, ["created_at"], batch_size=2000)
