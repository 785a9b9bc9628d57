"""The executive dashboard over 1,000,000 deals and 200,000 customers, against the spec's
AdvancedAnalytics loops (sums in Python, CLV and churn one customer at a time).

The 1M data set lives in a database of its own (crm_bench_1m, or BENCH_1M_DATABASE), so
the 100k scenarios keep their sizes: `database_1m()` points the default connection at it
for the scenario and back afterwards; `ensure_data_1m()` creates, migrates and fills it
(untimed) when it is missing, incomplete or more than DATA_MAX_AGE old. clv_churn_200k
reads the same data.
"""

import os
import statistics
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from datetime import time as dt_time
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Max
from django.utils import timezone

from bench import database
from bench.measure import stopwatch
from bench.registry import scenario
from customers.models import Customer
from demo.generators import dataset_generate
from demo.profiles import BENCH_1M
from sales.models import Sale, StageChange

DATABASE_1M = os.environ.get("BENCH_1M_DATABASE", "crm_bench_1m")
CUSTOMERS = 200_000
DEALS = 1_000_000
BATCH = 100_000
SEED = 1_000_000
# Dates are laid out relative to the day of generation; older data is regenerated so
# "last 30 days" and "this year vs last" keep meaning what they meant.
DATA_MAX_AGE = timedelta(days=14)
ADMIN = "admin"
RUNS = 3
SCALE = 50  # the baseline runs on 1/50 of the data
BASELINE_DEALS = DEALS // SCALE
BASELINE_CUSTOMERS = CUSTOMERS // SCALE

STAGE_PATH = list(Sale.OPEN_STATUSES)


# The 1M database -------------------------------------------------------------------------


def database_1m():
    """Run the block on the 1M database (bench.database.using_database): nothing cached for
    the 1M data (same user ids) is ever read by the 100k scenarios, or the other way round."""
    return database.using_database(DATABASE_1M)


def _data_is_current(*, customers: int, deals: int) -> bool:
    if Customer.objects.count() != customers or Sale.objects.count() != deals:
        return False
    newest = Sale.objects.aggregate(newest=Max("created_at"))["newest"]
    return newest is not None and timezone.now() - newest < DATA_MAX_AGE


def ensure_data_1m(*, customers: int = CUSTOMERS, deals: int = DEALS) -> dict:
    """Inside database_1m(): the 1M data set, generated (untimed) when not there yet.

    The sizes are parameters only to try the generation on a small set; the scenarios use
    the defaults. Returns what was found or made: counts, and the seconds generation took
    (0 if reused).
    """
    database.ensure_database()  # created and migrated (the helpers read the switched name)
    generated = 0.0
    if not _data_is_current(customers=customers, deals=deals):
        print(
            f"  {DATABASE_1M}: generating {customers:,} customers and {deals:,} deals "
            "(untimed, a few minutes)…",
            flush=True,
        )
        started = time.perf_counter()
        database.recreate_database()
        # The seed's users, teams, groups, scoring rules and demo campaign, no records.
        database.seed_demo(customers=0, deals=0, lead_history=0)
        _generate(customers=customers, deals=deals)
        database.analyze()
        generated = time.perf_counter() - started
        print(f"  generated in {generated:.1f} s", flush=True)
    return {
        "customers": Customer.objects.count(),
        "deals": Sale.objects.count(),
        "stage_changes": StageChange.objects.count(),
        "generated_seconds": round(generated, 1),
    }


def _generate(*, customers: int, deals: int) -> None:
    """The demo's generator with the 1M profile: customers owned by the seed's reps, then
    deals with their stage history, written in COPY batches of 100,000. Deterministic from
    SEED; dates relative to now."""
    reps = list(
        get_user_model()
        .objects.filter(groups__name="Sales rep")
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    if not reps:
        raise RuntimeError("seed_demo made no reps in the 1M database.")
    dataset_generate(
        customers=customers,
        deals=deals,
        rep_ids=reps,
        seed=SEED,
        profile=BENCH_1M,
        batch=BATCH,
        progress=lambda done: print(f"    {done}", flush=True),
    )


def admin_1m():
    return get_user_model().objects.get(username=ADMIN)


# The spec's way: AdvancedAnalytics --------------------------------------------------------


class SpecAdvancedAnalytics:
    """The executive dashboard as the spec's AdvancedAnalytics computes it: querysets
    iterated and summed in Python, CLV and churn one customer at a time, each customer's
    deals fetched by its own queries. The same definitions as analytics.selectors, so the
    numbers can be compared.

    `deals` and `customers` are the querysets it runs over: all of them in production, a
    1/50 slice for the baseline (the per-customer queries still hit the whole table).
    """

    def __init__(self, *, deals, customers, now):
        self.deals = deals
        self.customers = customers
        self.now = now

    # Revenue -----------------------------------------------------------------------------

    def revenue(self) -> dict:
        totals = {}
        for name, days in (("last_30", 30), ("last_90", 90), ("last_365", 365)):
            by_currency = defaultdict(Decimal)
            won = self.deals.filter(
                status="WON",
                closed_at__gte=self.now - timedelta(days=days),
                closed_at__lte=self.now,
            )
            for sale in won:
                if sale.amount is not None:
                    by_currency[sale.currency] += sale.amount
            totals[name] = dict(by_currency)
        return totals

    def revenue_by_month(self, months: int = 24) -> dict:
        by_month = defaultdict(Decimal)
        start = self.now - timedelta(days=31 * months)
        for sale in self.deals.filter(status="WON", closed_at__gte=start):
            if sale.amount is not None:
                by_month[(sale.closed_at.year, sale.closed_at.month, sale.currency)] += sale.amount
        return dict(by_month)

    # Pipeline health -----------------------------------------------------------------------

    def pipeline(self, closing_days: int = 30) -> dict:
        today = timezone.localdate(self.now)
        soon = today + timedelta(days=closing_days)
        value, by_stage, closing = defaultdict(Decimal), defaultdict(Decimal), defaultdict(int)
        for sale in self.deals.exclude(status__in=["WON", "LOST"]):
            amount = sale.amount or Decimal(0)
            value[sale.currency] += amount
            by_stage[(sale.status, sale.currency)] += amount
            if sale.expected_close_date and today <= sale.expected_close_date <= soon:
                closing[sale.currency] += 1
        return {"value": dict(value), "by_stage": dict(by_stage), "closing": dict(closing)}

    def average_deal_size(self) -> float:
        amounts = [s.amount for s in self.deals.filter(status="WON") if s.amount is not None]
        return float(sum(amounts) / len(amounts)) if amounts else 0.0

    def win_loss_funnel(self, days: int = 365) -> dict:
        ranks = {status: rank for rank, status in enumerate([*STAGE_PATH, "WON"])}
        reached, won, lost = defaultdict(int), 0, 0
        created = self.deals.filter(created_at__gte=self.now - timedelta(days=days))
        for sale in created.prefetch_related("stage_changes"):
            furthest = max(
                [ranks.get(sale.status, 0)]
                + [ranks.get(change.to_status, 0) for change in sale.stage_changes.all()]
            )
            for status in STAGE_PATH:
                if furthest >= ranks[status]:
                    reached[status] += 1
            won += sale.status == "WON"
            lost += sale.status == "LOST"
        return {**reached, "WON": won, "LOST": lost}

    # Team performance ----------------------------------------------------------------------

    def top_reps(self, days: int = 90, limit: int = 5) -> list:
        User = get_user_model()
        rows = []
        for rep in User.objects.filter(is_active=True):
            won = self.deals.filter(
                assigned_to=rep, status="WON", closed_at__gte=self.now - timedelta(days=days)
            )
            total = sum((s.amount for s in won if s.amount is not None), Decimal(0))
            if total:
                rows.append((total, rep.username))
        return sorted(rows, reverse=True)[:limit]

    def sales_velocity(self, start, end) -> dict:
        opportunities = len(list(self.deals.filter(created_at__gte=start, created_at__lte=end)))
        closed = list(self.deals.filter(closed_at__gte=start, closed_at__lte=end))
        won = [s for s in closed if s.status == "WON"]
        sizes = [s.amount for s in won if s.amount is not None]
        cycles = [(s.closed_at - s.created_at).total_seconds() / 86400 for s in won]
        win_rate = len(won) / len(closed) if closed else 0.0
        size = float(sum(sizes) / len(sizes)) if sizes else 0.0
        cycle = sum(cycles) / len(cycles) if cycles else 0.0
        return {
            "opportunities": opportunities,
            "won": len(won),
            "win_rate": win_rate,
            "velocity": opportunities * win_rate * size / cycle if cycle else 0.0,
        }

    def velocity_trend(self, months: int = 6) -> list:
        return [
            self.sales_velocity(self.now - timedelta(days=30 * (back + 1)),
                                self.now - timedelta(days=30 * back))
            for back in range(months - 1, -1, -1)
        ]  # fmt: skip

    def stage_durations(self, days: int = 365) -> dict:
        spans = defaultdict(list)
        for sale in self.deals.prefetch_related("stage_changes"):
            changes = sorted(sale.stage_changes.all(), key=lambda c: (c.changed_at, c.id))
            for change, following in zip(changes, changes[1:], strict=False):
                if change.changed_at >= self.now - timedelta(days=days):
                    days_in = (following.changed_at - change.changed_at).total_seconds() / 86400
                    spans[change.to_status].append(days_in)
        return {
            status: {"median": statistics.median(v), "average": statistics.fmean(v)}
            for status, v in spans.items()
            if status in STAGE_PATH
        }

    # Customer insights ---------------------------------------------------------------------

    def expected_lifespan_years(self) -> float:
        spans = []
        for customer in self.customers.filter(lifecycle_stage="churned"):
            deals = list(Sale.objects.filter(customer=customer))
            firsts = [s.created_at for s in deals]
            lasts = [s.closed_at for s in deals if s.closed_at is not None]
            if firsts and lasts and max(lasts) > min(firsts):
                spans.append((max(lasts) - min(firsts)).total_seconds() / 86400)
        if len(spans) >= 20:
            return sum(spans) / len(spans) / 365.25
        return 3.0

    def customer_lifetime_value(self, customer, lifespan_years: float) -> float:
        # In one currency, as the selectors count it (the spec's code added currencies up).
        won = [
            s
            for s in Sale.objects.filter(customer=customer, status="WON", currency="USD")
            if s.amount is not None
        ]
        if not won:
            return 0.0
        average = sum(s.amount for s in won) / len(won)
        first = min(s.closed_at for s in won)
        tenure = (self.now - first).total_seconds() / 86400 / 365.25
        # As the selectors: purchases a year over at least a year, and a lifespan at least
        # as long as the customer's own so far.
        return float(average) * (len(won) / max(tenure, 1.0)) * max(lifespan_years, tenure)

    def churn_probability(self, customer) -> float:
        if customer.last_contact_date is None:
            contact = 1.0
        else:
            midnight = datetime.combine(customer.last_contact_date, dt_time.min, tzinfo=UTC)
            contact = max(min((self.now - midnight).total_seconds() / 86400 / 180, 1.0), 0.0)
        active = Sale.objects.filter(customer=customer).exclude(status__in=["WON", "LOST"]).count()
        engagement = {"LOW": 1.0, "MEDIUM": 0.5, "HIGH": 0.2, "VIP": 0.0}.get(
            customer.engagement_level, 0.5
        )
        return contact * 0.4 + (0.0 if active else 1.0) * 0.3 + engagement * 0.3

    def customer_insights(self) -> dict:
        lifespan = self.expected_lifespan_years()
        clv, churn = {}, {}
        for customer in self.customers:
            clv[customer.pk] = self.customer_lifetime_value(customer, lifespan)
            if customer.lifecycle_stage != "churned":
                churn[customer.pk] = self.churn_probability(customer)
        high = sorted(((v, pk) for pk, v in clv.items() if v), reverse=True)[:10]
        risk = sorted(((p, pk) for pk, p in churn.items() if p >= 0.6), reverse=True)[:20]
        return {"lifespan": lifespan, "clv": clv, "churn": churn, "high": high, "risk": risk}

    def executive_dashboard(self) -> dict:
        return {
            "revenue": self.revenue(),
            "revenue_by_month": self.revenue_by_month(),
            "pipeline": self.pipeline(),
            "average_deal_size": self.average_deal_size(),
            "funnel": self.win_loss_funnel(),
            "top_reps": self.top_reps(),
            "velocity": self.sales_velocity(self.now - timedelta(days=90), self.now),
            "velocity_trend": self.velocity_trend(),
            "stage_durations": self.stage_durations(),
            "customers": self.customer_insights(),
        }


def _baseline_sample():
    """1/50 of the data: the first 20,000 deals and the first 4,000 customers (by id)."""
    first_deal = Sale.objects.order_by("pk").values_list("pk", flat=True)[0]
    first_customer = Customer.objects.order_by("pk").values_list("pk", flat=True)[0]
    deals = Sale.objects.filter(pk__gte=first_deal, pk__lt=first_deal + BASELINE_DEALS)
    customers = Customer.objects.filter(
        pk__gte=first_customer, pk__lt=first_customer + BASELINE_CUSTOMERS
    ).order_by("pk")
    return deals, customers


# The scenario -----------------------------------------------------------------------------


class QueryTimer:
    """Counts the SQL statements run on the default connection and times each one."""

    def __init__(self) -> None:
        self.queries: list[tuple[float, str]] = []

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.queries.append((time.perf_counter() - started, sql))

    def slowest(self, n: int = 5) -> list[dict]:
        return [
            {"ms": round(seconds * 1000, 1), "sql": " ".join(sql.split())[:90]}
            for seconds, sql in sorted(self.queries, reverse=True)[:n]
        ]


def _check_baseline_metrics(admin, spec: SpecAdvancedAnalytics, insights: dict) -> None:
    """The baseline computes the selectors' numbers: the sample's CLV (with the lifespan it
    measured) and churn probabilities equal customers_with_clv / customers_with_churn."""
    from analytics.selectors.churn import customers_with_churn
    from analytics.selectors.clv import customers_with_clv

    pks = list(spec.customers.values_list("pk", flat=True))
    clv = dict(
        customers_with_clv(user=admin, lifespan_years=insights["lifespan"], now=spec.now)
        .filter(pk__in=pks)
        .values_list("pk", "clv")
    )
    churn = dict(
        customers_with_churn(user=admin, now=spec.now)
        .filter(pk__in=pks)
        .values_list("pk", "churn_probability")
    )
    if clv.keys() != insights["clv"].keys() or churn.keys() != insights["churn"].keys():
        raise AssertionError("The baseline and the selectors cover different customers.")
    for pk, value in insights["clv"].items():
        if abs(clv[pk] - value) > 1e-6 * max(1.0, abs(value)):
            raise AssertionError(f"CLV of customer {pk}: selectors {clv[pk]}, baseline {value}.")
    for pk, value in insights["churn"].items():
        if abs(churn[pk] - value) > 1e-9:
            raise AssertionError(f"Churn of {pk}: selectors {churn[pk]}, baseline {value}.")


@scenario(
    "dashboard_1m", targets={"seconds_max": 1.5, "queries_max": 20, "ratio_min": 50}, order=60
)
def dashboard_1m() -> dict:
    """Executive dashboard, all data (admin), uncached, 1M deals and 200k customers.

    Timed: analytics.dashboard.executive_dashboard(user=admin, filters=DashboardFilters(),
    use_cache=False), median of 3 runs after a warm-up, queries counted with
    connection.execute_wrapper. Baseline: SpecAdvancedAnalytics (the spec's loops) on the
    first 20,000 deals and 4,000 customers, scaled x50. Data: crm_bench_1m (generated
    untimed when missing).
    """
    from analytics.dashboard import DashboardFilters, executive_dashboard

    with database_1m():
        data = ensure_data_1m()
        filters = DashboardFilters()
        executive_dashboard(user=admin_1m(), filters=filters, use_cache=False)  # warm-up
        runs, timers = [], []
        for _ in range(RUNS):
            admin = admin_1m()  # a fresh user: no role or team caches kept between runs
            timer = QueryTimer()
            with stopwatch() as clock, connection.execute_wrapper(timer):
                result = executive_dashboard(user=admin, filters=filters, use_cache=False)
            runs.append(clock["seconds"])
            timers.append(timer)
        median_run = sorted(range(RUNS), key=runs.__getitem__)[RUNS // 2]

        deals, customers = _baseline_sample()
        spec = SpecAdvancedAnalytics(deals=deals, customers=customers, now=timezone.now())
        with stopwatch() as baseline:
            expected = spec.executive_dashboard()
        _check_baseline_metrics(admin, spec, expected["customers"])

        # Untimed sanity checks on what the dashboard showed.
        if not result["customers"]["high_clv"] or not result["customers"]["churn_risk"]:
            raise AssertionError("The dashboard lists no high-CLV or churn-risk customers.")
        if not result["revenue"]["windows"] or not result["pipeline"]["by_stage"]:
            raise AssertionError("The dashboard shows no revenue or pipeline.")
    return {
        "n": data["deals"],
        "customers": data["customers"],
        "stage_changes": data["stage_changes"],
        "seconds": round(statistics.median(runs), 3),
        "runs": [round(run, 3) for run in runs],
        "queries": max(len(timer.queries) for timer in timers),
        "slowest_queries": timers[median_run].slowest(),
        "baseline_seconds": round(baseline["seconds"] * SCALE, 3),
        "baseline_sample_seconds": round(baseline["seconds"], 3),
        "baseline_sample": {"deals": BASELINE_DEALS, "customers": BASELINE_CUSTOMERS},
    }
