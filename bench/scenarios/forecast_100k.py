"""A team's forecast over 100,000 open deals, against the spec's loop (one probability per
deal computed in Python); and the whole forecast page over them, as the team's manager."""

import random
import statistics
from collections import defaultdict
from datetime import datetime, time, timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from bench import database
from bench.measure import PageRequest, logged_in_client, measure_pages, stopwatch
from bench.registry import scenario
from crm.bulk import bulk_insert
from crm.models import Team, TeamMembership
from customers.models import Customer
from demo.profiles import AMOUNT_STEPS, DEMO
from sales.forecasting.probability import OLD_DEAL_AGE, adjusted_probability, probability_model
from sales.forecasting.selectors import (
    BEST_CASE_MIN,
    COMMIT_MIN,
    Period,
    forecast,
    forecast_period,
)
from sales.models import ForecastCalibration, ForecastSnapshot, Sale, StageChange
from sales.services.forecast import forecast_snapshots_take
from sales.tasks import forecast_statistics

OPEN_DEALS = 100_000
RUNS = 3
# Team South: the pipeline_board_100k scenario tops up nora's Team North to 100,000 open
# deals; these deals stay out of her sight (South's reps, customers shared with nobody).
MANAGER = "sam"
TEAM = "Team South"
PERIOD = "90"
TITLE = "bench: forecast deal"
PAGE_REQUESTS = 50
PAGE_WARMUP = 4
SNAPSHOT_WEEKS = 26  # half a year of Monday snapshots: forecast vs actual has its 12 rows


def _team_deals(team: Team, period: Period):
    members = TeamMembership.objects.filter(team=team).values("user_id")
    return Sale.objects.open().filter(
        assigned_to__in=members, expected_close_date__range=(period.start, period.end)
    )


def _top_up(team: Team, period: Period) -> int:
    """Open deals for the team's reps closing in the period, until it has 100,000 (untimed).

    Like the seed's deals (amounts, stages, customers of every engagement level), plus
    some hand-set probabilities, deals without an amount, and ages up to 200 days; on the
    team's customers that are shared with nobody, so no other team sees them.
    """
    missing = OPEN_DEALS - _team_deals(team, period).count()
    if missing <= 0:
        return 0
    print(f"  adding {missing:,} open deals to {team.name} (untimed)…", flush=True)
    rng = random.Random(11)
    now = timezone.now()
    rep_ids = list(TeamMembership.objects.filter(team=team).values_list("user_id", flat=True))
    customer_ids = list(
        Customer.objects.filter(owner__in=rep_ids, shared_with__isnull=True).values_list(
            "pk", flat=True
        )
    )
    statuses = list(Sale.OPEN_STATUSES)
    weights = [DEMO.statuses[status] for status in statuses]  # the seed's open stages
    days = (period.end - period.start).days
    rows = []
    for number in range(missing):
        created = now - timedelta(days=rng.uniform(0, 200))
        amount = Decimal(rng.choice(AMOUNT_STEPS) * rng.randint(1, 9) * 500)
        rows.append(
            {
                "title": f"{TITLE} {number + 1}",
                "customer_id": rng.choice(customer_ids),
                "assigned_to_id": rng.choice(rep_ids),
                "amount": None if rng.random() < 0.03 else amount,
                "currency": "USD",
                "status": (status := rng.choices(statuses, weights)[0]),
                "furthest_stage_rank": Sale.funnel_rank([status]),
                "expected_close_date": period.start + timedelta(days=rng.randint(0, days)),
                "probability": rng.choice(range(5, 100, 5)) if rng.random() < 0.05 else None,
                "stage_entered_at": created,
                "created_at": created,
                "updated_at": created,
            }
        )
    sale_ids = bulk_insert(Sale, rows)
    bulk_insert(
        StageChange,
        [
            {
                "sale_id": sale_id,
                "from_status": "",
                "to_status": row["status"],
                "changed_by_id": row["assigned_to_id"],
                "changed_at": row["created_at"],
            }
            for sale_id, row in zip(sale_ids, rows, strict=True)
        ],
    )
    database.analyze()
    return missing


def _spec_loop(team: Team, period: Period) -> dict:
    """The obvious way: every open deal of the team loaded with its customer, its probability
    computed in Python by the same rule, the totals summed in Python."""
    now = timezone.now()
    model = probability_model()
    cutoff = now - OLD_DEAL_AGE
    totals = defaultdict(lambda: defaultdict(Decimal))
    months = defaultdict(lambda: defaultdict(Decimal))
    for sale in _team_deals(team, period).select_related("customer"):
        if sale.probability is not None:
            probability = Decimal(sale.probability)
        else:
            probability = adjusted_probability(
                model.rates[sale.status],
                is_old=sale.created_at < cutoff,
                engagement=sale.customer.engagement_level,
            )
        value = sale.amount or Decimal(0)
        weighted = value * probability / 100
        row = totals[sale.currency]
        row["deal_count"] += 1
        row["pipeline_value"] += value
        row["weighted_value"] += weighted
        if probability >= COMMIT_MIN:
            row["commit_value"] += value
        elif probability >= BEST_CASE_MIN:
            row["best_case_value"] += value
        else:
            row["pipeline_only_value"] += value
        month = months[(sale.currency, sale.expected_close_date.replace(day=1))]
        month["pipeline_value"] += value
        month["weighted_value"] += weighted
    return totals


@scenario("forecast_100k", targets={"seconds_max": 1, "ratio_min": 10}, order=45)
def forecast_100k() -> dict:
    """A manager's team forecast, next 90 days, over 100,000 open deals (vs the spec's loop).

    Timed: forecast() for sam's team, median of 3 runs after a warm-up.
    Baseline: the spec's loop, one probability per deal computed in Python, on all of them;
    its totals must equal ours to the cent.
    """
    database.ensure_seeded_100k()
    manager = get_user_model().objects.get(username=MANAGER)
    team = Team.objects.get(name=TEAM)
    period = forecast_period(PERIOD)
    added = _top_up(team, period)

    def ours() -> dict:
        return forecast(user=manager, scope=str(team.pk), period=PERIOD)

    ours()  # untimed warm-up: connection, plans, caches
    runs, result = [], None
    for _ in range(RUNS):
        manager = get_user_model().objects.get(pk=manager.pk)  # no per-request caches kept
        with stopwatch() as clock, CaptureQueriesContext(connection) as queries:
            result = ours()
        runs.append(clock["seconds"])
    with stopwatch() as baseline:
        expected = _spec_loop(team, period)

    usd = next(row for row in result["currencies"] if row["currency"] == "USD")
    loop = expected["USD"]
    for name in ("deal_count", "pipeline_value", "commit_value", "best_case_value"):
        assert usd[name] == loop[name], (name, usd[name], loop[name])
    pipeline_only = usd["categories"]["pipeline"]["value"]
    assert pipeline_only == loop["pipeline_only_value"], (pipeline_only, loop)
    assert usd["weighted_value"] == loop["weighted_value"].quantize(Decimal("0.01")), (
        usd["weighted_value"],
        loop["weighted_value"],
    )
    assert result["deal_count"] >= OPEN_DEALS, result["deal_count"]
    return {
        "n": result["deal_count"],
        "seconds": round(statistics.median(runs), 3),
        "runs": [round(run, 3) for run in runs],
        "queries": len(queries),
        "open_deals_total": Sale.objects.open().count(),
        "deals_added": added,
        "historical_rates": result["model"].historical,
        "weighted_value": str(usd["weighted_value"]),
        "baseline_seconds": round(baseline["seconds"], 3),
    }


def _snapshot_history() -> int:
    """The weekly snapshots of the last SNAPSHOT_WEEKS Mondays, taken as the Monday task
    would have (over the deals as they are now), where missing (untimed)."""
    today = timezone.localdate()
    taken = 0
    for weeks in range(1, SNAPSHOT_WEEKS + 1):
        monday = today - timedelta(days=today.weekday(), weeks=weeks)
        if not ForecastSnapshot.objects.filter(taken_on=monday, scope_key="all").exists():
            moment = timezone.make_aware(datetime.combine(monday, time(3, 0)))
            forecast_snapshots_take(today=monday, now=moment)
            taken += 1
    return taken


@scenario("forecast_page_100k", targets={"p95_ms_max": 300, "queries_max": 10}, order=46)
def forecast_page_100k() -> dict:
    """The whole forecast page (/sales/forecast/) as sam, whose team has 100,000 open deals.

    Untimed first: the data of forecast_100k (seeded and topped up when missing), half a
    year of weekly snapshots, and the nightly statistics task (sales.forecast_statistics),
    run once as in production.
    Timed: 50 GETs through django.test.Client, round-robin over his default view (all his
    teams, 90 days), the team for 90 days and for this quarter, and all his teams for 30
    days; every one with the forecast, forecast vs actual and calibration.
    """
    database.ensure_seeded_100k()
    manager = get_user_model().objects.get(username=MANAGER)
    team = Team.objects.get(name=TEAM)
    added = _top_up(team, forecast_period(PERIOD))
    snapshots_taken = _snapshot_history()
    with stopwatch() as statistics_clock:
        forecast_statistics()
    client = logged_in_client(manager)
    mix = [
        PageRequest(MANAGER, client, url)
        for url in (
            "/sales/forecast/",
            f"/sales/forecast/?scope={team.pk}&period={PERIOD}",
            f"/sales/forecast/?scope={team.pk}&period=quarter",
            "/sales/forecast/?scope=all&period=30",
        )
    ]
    row = measure_pages(mix, requests=PAGE_REQUESTS, warmup=PAGE_WARMUP)
    return {
        **row,
        "open_deals_in_team": _team_deals(team, forecast_period(PERIOD)).count(),
        "closed_deals": Sale.objects.filter(status__in=Sale.CLOSED_STATUSES).count(),
        "stage_changes": StageChange.objects.count(),
        "calibration_rows": ForecastCalibration.objects.count(),
        "snapshots": ForecastSnapshot.objects.count(),
        "snapshots_compared": ForecastSnapshot.objects.filter(
            actual_computed_at__isnull=False
        ).count(),
        "snapshot_weeks_taken": snapshots_taken,
        "statistics_seconds": round(statistics_clock["seconds"], 3),
        "deals_added": added,
    }
