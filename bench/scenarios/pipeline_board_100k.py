"""The pipeline board of a manager who sees 100,000 open deals, with its filters."""

import random
from datetime import timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.utils import timezone

from bench import database
from bench.measure import PageRequest, logged_in_client, measure_pages
from bench.registry import scenario
from crm.bulk import bulk_insert
from crm.models import Team, TeamMembership
from customers.models import Customer
from demo.profiles import AMOUNT_STEPS, DEMO
from sales.board import board_deals
from sales.history import stage_change_rows
from sales.models import Sale, StageChange

OPEN_DEALS = 100_000
MANAGER = "nora"
TEAM = "Team North"
TITLE = "bench: board deal"
REQUESTS = 200
WARMUP = 12
STAGE_PATH = list(Sale.OPEN_STATUSES)
STATUS_WEIGHTS = [DEMO.statuses[status] for status in STAGE_PATH]  # the seed's open stages


def _visible_open(manager) -> int:
    return board_deals(user=manager, filters={}).count()


def _top_up(manager, team: Team) -> int:
    """Open deals of the team's reps on the team's customers, until the manager's board has
    100,000 (untimed). Like the seed's: its amounts and stage weights, a stage history per
    deal, created up to 400 days ago, expected close dates from a month ago to half a year on."""
    missing = OPEN_DEALS - _visible_open(manager)
    if missing <= 0:
        return 0
    print(f"  adding {missing:,} open deals to {team.name} (untimed)…", flush=True)
    rng = random.Random(23)
    now = timezone.now()
    rep_ids = list(TeamMembership.objects.filter(team=team).values_list("user_id", flat=True))
    customer_ids = list(Customer.objects.filter(owner__in=rep_ids).values_list("pk", flat=True))
    rows, histories = [], []
    for number in range(missing):
        status = rng.choices(STAGE_PATH, STATUS_WEIGHTS)[0]
        path = STAGE_PATH[: STAGE_PATH.index(status) + 1]
        created = now - timedelta(days=rng.uniform(1, 400))
        # Entered NEW when created; each later stage some time after the one before.
        moments = sorted(rng.uniform(0, (now - created).total_seconds()) for _ in path[1:])
        changed = [created, *(created + timedelta(seconds=s) for s in moments)]
        entered = changed[-1]
        amount = Decimal(rng.choice(AMOUNT_STEPS) * rng.randint(1, 9) * 500)
        rows.append(
            {
                "title": f"{TITLE} {number + 1}",
                "customer_id": rng.choice(customer_ids),
                "assigned_to_id": rng.choice(rep_ids),
                "amount": amount,
                "currency": "USD",
                "status": status,
                "expected_close_date": (now + timedelta(days=rng.randint(-30, 180))).date(),
                "probability": rng.choice(range(5, 100, 5)) if rng.random() < 0.05 else None,
                "stage_entered_at": entered,
                "furthest_stage_rank": Sale.funnel_rank(path),
                "created_at": created,
                "updated_at": entered,
            }
        )
        histories.append(list(zip(path, changed, strict=True)))
    sale_ids = bulk_insert(Sale, rows)
    changes = []
    for sale_id, row, history in zip(sale_ids, rows, histories, strict=True):
        changes += stage_change_rows(
            sale_id=sale_id, history=history, changed_by_id=row["assigned_to_id"]
        )
    bulk_insert(StageChange, changes)
    database.analyze()
    return missing


@scenario("pipeline_board_100k", targets={"p95_ms_max": 150, "queries_max": 10}, order=25)
def pipeline_board_100k() -> dict:
    """/sales/pipeline/ for a manager (nora) who sees 100k open deals, filtered and not.

    Owner, team, amount and close-date filters, and two "load more" column pages."""
    database.ensure_seeded_100k()
    users = get_user_model().objects.in_bulk([MANAGER, "alex", "bea"], field_name="username")
    team = Team.objects.get(name=TEAM)
    added = _top_up(users[MANAGER], team)
    visible = _visible_open(users[MANAGER])
    assert visible >= OPEN_DEALS, visible
    nora = logged_in_client(users[MANAGER])
    alex, bea = users["alex"].pk, users["bea"].pk
    today = timezone.localdate()
    month_end = today + timedelta(days=30)
    mix = [
        PageRequest("nora", nora, "/sales/pipeline/"),
        PageRequest("nora", nora, f"/sales/pipeline/?owner={alex}"),
        PageRequest("nora", nora, f"/sales/pipeline/?team={team.pk}"),
        PageRequest("nora", nora, "/sales/pipeline/?amount_min=20000"),
        PageRequest("nora", nora, "/sales/pipeline/?amount_min=5000&amount_max=20000"),
        PageRequest("nora", nora, f"/sales/pipeline/?close_from={today}&close_to={month_end}"),
        PageRequest("nora", nora, f"/sales/pipeline/?team={team.pk}&amount_min=10000"),
        PageRequest("nora", nora, f"/sales/pipeline/?owner={bea}&close_from={today}"),
        PageRequest("nora", nora, "/sales/pipeline/column/NEW/?offset=50"),
        PageRequest("nora", nora, f"/sales/pipeline/column/PROPOSAL/?team={team.pk}&offset=500"),
    ]
    return {
        **measure_pages(mix, requests=REQUESTS, warmup=WARMUP),
        "open_deals_visible": visible,
        "open_deals_total": Sale.objects.open().count(),
        "deals_added": added,
    }
