"""The one generator of demo and benchmark data: customers (with tags and lead activities),
deals with their stage history, deal activities and tasks.

seed_demo, the seed_100k benchmark and the 1M data set of dashboard_1m all call
`dataset_generate`; what differs between them is data, not code: the size and the seed
are arguments, the distributions a `Profile` (demo.profiles: `DEMO`, `BENCH_1M`). The
same size, seed and profile give the same names, amounts, stages and owners every run;
dates are laid out relative to `now`, so the data always looks current.

Rows go in with `crm.bulk.bulk_insert` (COPY on PostgreSQL) in batches, not through the
services one deal at a time, so the bookkeeping those services do is done while the rows
are built: `StageChange.left_at` by `sales.history.stage_change_rows`,
`Sale.furthest_stage_rank` by `Sale.funnel_rank` over the deal's path, and
`Sale.last_activity_at` as the newest of the deal's generated activities.
"""

import random
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.utils import timezone

from crm.bulk import analyze, bulk_insert
from customers.models import (
    BudgetRange,
    ConsentSource,
    Customer,
    DecisionAuthority,
    EmailConsent,
    Industry,
    PurchaseTimeline,
    Region,
    Tag,
)
from demo.profiles import (
    ACTIVITY_TEXT,
    AMOUNT_STEPS,
    BATCH,
    CLOSED_EXPECTED_DAYS,
    COMPANY_SIZES,
    COMPANY_SUFFIXES,
    COMPANY_WORDS,
    CYCLE_DAYS,
    DEAL_PRODUCTS,
    DEMO,
    ENGAGEMENT,
    FIRST_NAMES,
    JOB_TITLES,
    LAST_NAMES,
    LEAD_ACTIVITY_DAYS,
    LOST_REASONS,
    OPEN_EXPECTED_DAYS,
    TASK_DONE_SHARE,
    TASK_DUE_HOURS,
    TASK_TITLES,
    Profile,
    Weights,
)
from leads.models import ActivityType, Factor, LeadActivity, ScoringRule
from sales.history import stage_change_rows
from sales.models import Sale, SaleActivity, StageChange, Task

STAGE_PATH = [str(status) for status in Sale.OPEN_STATUSES]


@dataclass
class Generated:
    """What dataset_generate wrote."""

    customer_ids: list[int] = field(default_factory=list)
    customer_owner_ids: list[int] = field(default_factory=list)
    lead_ids: list[int] = field(default_factory=list)
    deals: int = 0
    stage_changes: int = 0
    deal_activities: int = 0
    tasks: int = 0
    lead_activities: int = 0


def _bag(weights: Weights) -> list[str]:
    """Each value as often as its weight: rng.choice() of it is a weighted draw, and much
    faster than rng.choices() one at a time."""
    return [value for value, weight in weights.items() for _ in range(weight)]


# Letters that do not decompose into an ASCII letter and a mark.
ASCII_LETTERS = str.maketrans({"ß": "ss", "ø": "o", "æ": "ae", "œ": "oe", "ł": "l", "đ": "d",
                               "þ": "th", "ı": "i"})  # fmt: skip


def _ascii(text: str) -> str:
    """A name as an email or host name part: lower-case ASCII letters, digits and hyphens
    ("Müller" -> "muller", "O'Neil" -> "oneil"). Django's EmailValidator refuses a
    non-ASCII local part, so "hugo.müller.3@..." could not be saved through a form."""
    decomposed = unicodedata.normalize("NFKD", text.lower().translate(ASCII_LETTERS))
    plain = "".join(char for char in decomposed if not unicodedata.combining(char))
    return re.sub(r"[^a-z0-9]+", "-", plain.encode("ascii", "ignore").decode()).strip("-") or "x"


def _consent(state: str, created) -> dict:
    """The consent columns of a generated customer: given on a form when it was created."""
    if state == EmailConsent.UNKNOWN:
        return {"email_consent": state, "email_consent_source": "", "email_consent_at": None}
    return {
        "email_consent": state,
        "email_consent_source": ConsentSource.FORM,
        "email_consent_at": created,
    }


def dataset_generate(
    *,
    customers: int,
    deals: int,
    rep_ids: Sequence[int],
    seed: int,
    profile: Profile = DEMO,
    tags: Sequence[Tag] = (),
    now: datetime | None = None,
    batch: int = BATCH,
    progress: Callable[[str], None] | None = None,
) -> Generated:
    """`customers` customers owned by the reps, then `deals` deals on them (assigned as the
    profile says), each with its stage history, activities and tasks, then the leads'
    activities. One seeded RNG in that order, so the same arguments give the same data."""
    if not rep_ids and (customers or deals):
        raise ValueError("The generated customers and deals need reps to own them.")
    rng = random.Random(seed)
    now = now or timezone.now()
    generated = Generated()
    customers_generate(
        rng=rng,
        count=customers,
        profile=profile,
        rep_ids=rep_ids,
        tags=tags,
        now=now,
        into=generated,
        batch=batch,
        progress=progress,
    )
    deals_generate(
        rng=rng,
        count=deals,
        profile=profile,
        rep_ids=rep_ids,
        now=now,
        into=generated,
        batch=batch,
        progress=progress,
    )
    lead_activities_generate(rng=rng, profile=profile, now=now, into=generated)
    if customers or deals:
        analyze(Customer, Customer.tags.through, Sale, StageChange, SaleActivity, Task,
                LeadActivity)  # fmt: skip
    return generated


# Customers ---------------------------------------------------------------------------------


def customers_generate(
    *,
    rng: random.Random,
    count: int,
    profile: Profile,
    rep_ids: Sequence[int],
    tags: Sequence[Tag],
    now: datetime,
    into: Generated,
    batch: int = BATCH,
    progress: Callable[[str], None] | None = None,
) -> None:
    """Customers with a lead profile, owned by random reps; emails numbered after the
    customers already there, so a second seed without --reset adds to the first."""
    industries, regions = Industry.values, Region.values
    sources = Customer.Source.values
    budgets, timelines = BudgetRange.values, PurchaseTimeline.values
    authorities = DecisionAuthority.values
    lifecycle, engagement = _bag(profile.lifecycle), _bag(ENGAGEMENT)
    consents = _bag(profile.email_consent)
    tags = list(tags) if profile.tagged_share else []
    start = Customer.objects.count() if count else 0
    for offset in range(0, count, batch):
        rows, tagged = [], []  # tagged: (the customer's place in the batch, its tags)
        for number in range(start + offset, start + min(offset + batch, count)):
            if tags and rng.random() < profile.tagged_share:
                tagged.append((len(rows), rng.sample(tags, rng.randint(1, min(2, len(tags))))))
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            word = rng.choice(COMPANY_WORDS)
            size = rng.choice(COMPANY_SIZES)
            created = now - timedelta(days=rng.uniform(0, profile.customer_age_days))
            contacted = now - timedelta(days=rng.uniform(0, profile.last_contact_days))
            authority = rng.choice(authorities)
            rows.append(
                {
                    "name": f"{first} {last}",
                    "email": f"{_ascii(first)}.{_ascii(last)}.{number}@{_ascii(word)}-demo.example",
                    "phone": f"+1-555-{rng.randint(100, 999)}-{rng.randint(1000, 9999)}",
                    "company": f"{word} {rng.choice(COMPANY_SUFFIXES)}",
                    "industry": rng.choice(industries),
                    "company_size": size,
                    "annual_revenue": Decimal(size * rng.randint(40, 250) * 1000),
                    "region": rng.choice(regions),
                    "website": f"https://{_ascii(word)}.example",
                    "source": rng.choice(sources),
                    "lifecycle_stage": rng.choice(lifecycle),
                    "engagement_level": rng.choice(engagement),
                    "owner_id": rng.choice(rep_ids),
                    "last_contact_date": (
                        None if rng.random() < profile.no_contact_share else contacted.date()
                    ),
                    "job_title": rng.choice(JOB_TITLES[authority]),
                    "decision_authority": authority,
                    "budget_range": rng.choice(budgets),
                    "purchase_timeline": rng.choice(timelines),
                    "created_at": created,
                    "updated_at": created,
                    **_consent(rng.choice(consents), created),
                }
            )
        ids = bulk_insert(Customer, rows)
        into.customer_ids += ids
        into.customer_owner_ids += [row["owner_id"] for row in rows]
        into.lead_ids += [
            pk for pk, row in zip(ids, rows, strict=True) if row["lifecycle_stage"] == "lead"
        ]
        bulk_insert(
            Customer.tags.through,
            [
                {"customer_id": ids[place], "tag_id": tag.pk}
                for place, chosen in tagged
                for tag in chosen
            ],
        )
        if progress:
            progress(f"customers {offset + len(rows):,}")


# Deals -------------------------------------------------------------------------------------


def deals_generate(
    *,
    rng: random.Random,
    count: int,
    profile: Profile,
    rep_ids: Sequence[int],
    now: datetime,
    into: Generated,
    batch: int = BATCH,
    progress: Callable[[str], None] | None = None,
) -> None:
    """Deals on the customers generated into `into`, with their stage changes, activities
    and tasks; written a batch of deals at a time."""
    if not count:
        return
    customer_ids, owner_ids = into.customer_ids, into.customer_owner_ids
    if not customer_ids:
        raise ValueError("Deals need customers: generate some first.")
    statuses, currencies = _bag(profile.statuses), _bag(profile.currencies)
    kinds, priorities = list(ACTIVITY_TEXT), Task.Priority.values
    owner_share, activities_max = profile.owner_share, profile.activities_per_deal
    unassigned_below = profile.owner_share + profile.unassigned_share
    for offset in range(0, count, batch):
        sales, histories, activities, tasks = [], [], [], []
        for index in range(min(batch, count - offset)):
            customer = rng.randrange(len(customer_ids))
            roll = rng.random()
            if roll < owner_share:
                assignee = owner_ids[customer]
            elif roll < unassigned_below:
                assignee = None
            else:
                assignee = rng.choice(rep_ids)
            status = rng.choice(statuses)
            if status in STAGE_PATH:
                path = STAGE_PATH[: STAGE_PATH.index(status) + 1]
                created = now - timedelta(days=rng.uniform(0, profile.open_age_days))
                end, closed_at = now, None
                expected = now + timedelta(days=rng.randint(*OPEN_EXPECTED_DAYS))
            else:
                reached = len(STAGE_PATH) if status == "WON" else rng.randint(1, len(STAGE_PATH))
                path = [*STAGE_PATH[:reached], status]
                closed_at = now - timedelta(days=rng.uniform(0, profile.closed_within_days))
                created = closed_at - timedelta(days=rng.uniform(*CYCLE_DAYS))
                end = closed_at
                expected = closed_at + timedelta(days=rng.randint(*CLOSED_EXPECTED_DAYS))
            # Entered the first stage when created; each later one some time after the one
            # before; a closed deal's last step is its close.
            span = (end - created).total_seconds()
            steps = len(path) - 1 if closed_at is None else len(path) - 2
            moments = sorted(rng.uniform(0, span) for _ in range(steps))
            changed = [created, *(created + timedelta(seconds=s) for s in moments)]
            if closed_at is not None:
                changed.append(closed_at)
            amount = Decimal(rng.choice(AMOUNT_STEPS) * rng.randint(1, 9) * 500)
            last_activity = None
            for _ in range(rng.randint(0, activities_max) if activities_max else 0):
                kind = rng.choice(kinds)
                at = created + timedelta(seconds=rng.uniform(0, span))
                last_activity = at if last_activity is None or at > last_activity else last_activity
                activities.append(
                    {
                        "sale_id": index,  # the deal's place in the batch, until it has an id
                        "kind": kind,
                        "user_id": assignee,
                        "text": ACTIVITY_TEXT[kind],
                        "occurred_at": at,
                        "created_at": at,
                    }
                )
            if (
                closed_at is None
                and assignee is not None
                and profile.open_task_share
                and rng.random() < profile.open_task_share
            ):
                tasks.append(
                    {
                        "title": rng.choice(TASK_TITLES),
                        "sale_id": index,
                        "customer_id": customer_ids[customer],
                        "assigned_to_id": assignee,
                        "created_by_id": assignee,
                        "priority": rng.choice(priorities),
                        "due_at": now + timedelta(hours=rng.randint(*TASK_DUE_HOURS)),
                        "completed_at": (
                            now - timedelta(hours=1) if rng.random() < TASK_DONE_SHARE else None
                        ),
                    }
                )
            sales.append(
                {
                    "title": f"{rng.choice(DEAL_PRODUCTS)} – {rng.randint(10, 500)} seats",
                    "customer_id": customer_ids[customer],
                    "assigned_to_id": assignee,
                    "amount": None if rng.random() < profile.no_amount_share else amount,
                    "currency": rng.choice(currencies),
                    "status": status,
                    "expected_close_date": expected.date(),
                    "closed_at": closed_at,
                    "lost_reason": rng.choice(LOST_REASONS) if status == "LOST" else "",
                    "stage_entered_at": changed[-1],
                    "furthest_stage_rank": Sale.funnel_rank(path),
                    "last_activity_at": last_activity,
                    "created_at": created,
                    "updated_at": changed[-1],
                }
            )
            histories.append(list(zip(path, changed, strict=True)))
        sale_ids = bulk_insert(Sale, sales)
        changes = []
        for sale_id, sale, history in zip(sale_ids, sales, histories, strict=True):
            changes += stage_change_rows(
                sale_id=sale_id, history=history, changed_by_id=sale["assigned_to_id"]
            )
        for start in range(0, len(changes), batch):
            bulk_insert(StageChange, changes[start : start + batch])
        for row in activities:
            row["sale_id"] = sale_ids[row["sale_id"]]
        for row in tasks:
            row["sale_id"] = sale_ids[row["sale_id"]]
        bulk_insert(SaleActivity, activities)
        bulk_insert(Task, tasks)
        into.deals += len(sale_ids)
        into.stage_changes += len(changes)
        into.deal_activities += len(activities)
        into.tasks += len(tasks)
        if progress:
            progress(f"deals {offset + len(sales):,} (+{len(changes):,} stage changes)")


# Leads -------------------------------------------------------------------------------------


def lead_activities_generate(
    *, rng: random.Random, profile: Profile, now: datetime, into: Generated
) -> None:
    """What the generated leads did in the last 90 days, each activity worth what the
    managers' engagement rules say (as leads.services.lead_activity_record counts it)."""
    if not into.lead_ids or not any(profile.lead_activity_counts):
        return
    impacts = dict(
        ScoringRule.objects.filter(factor=Factor.ENGAGEMENT).values_list("key", "points")
    )
    types = ActivityType.values
    rows = []
    for customer_id in into.lead_ids:
        for _ in range(rng.choice(profile.lead_activity_counts)):
            kind = rng.choice(types)
            rows.append(
                {
                    "customer_id": customer_id,
                    "activity_type": kind,
                    "details": {},
                    "score_impact": impacts.get(kind, 0),
                    "timestamp": now - timedelta(days=rng.uniform(0, LEAD_ACTIVITY_DAYS)),
                }
            )
    bulk_insert(LeadActivity, rows)
    into.lead_activities += len(rows)
