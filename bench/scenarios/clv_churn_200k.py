"""CLV and churn probability for every one of 200,000 customers (over 1,000,000 deals)."""

import statistics

from django.db import connection

from analytics.selectors.churn import customers_with_churn
from analytics.selectors.clv import customers_with_clv, expected_lifespan_years
from bench.measure import QueryCounter, stopwatch
from bench.registry import scenario
from bench.scenarios.dashboard_1m import CUSTOMERS, admin_1m, database_1m, ensure_data_1m
from customers.models import Customer

RUNS = 3


def _clv_and_churn(admin) -> tuple[list, list, float]:
    lifespan, _ = expected_lifespan_years()
    clv = list(customers_with_clv(user=admin, lifespan_years=lifespan).values_list("pk", "clv"))
    churn = list(customers_with_churn(user=admin).values_list("pk", "churn_probability"))
    return clv, churn, lifespan


@scenario("clv_churn_200k", targets={"seconds_max": 3}, order=62)
def clv_churn_200k() -> dict:
    """CLV and churn probability of all 200,000 customers, fetched in full (1M deals).

    Timed: expected_lifespan_years, then customers_with_clv(...).values_list("pk", "clv")
    and customers_with_churn(...).values_list("pk", "churn_probability") as lists, for the
    admin (every customer), median of 3 runs after a warm-up. Data: dashboard_1m's
    crm_bench_1m database (generated untimed when missing).
    """
    with database_1m():
        data = ensure_data_1m()
        admin = admin_1m()
        _clv_and_churn(admin)  # untimed warm-up: connection, plans, caches
        runs, clv_runs, churn_runs = [], [], []
        for _ in range(RUNS):
            counter = QueryCounter()
            with stopwatch() as clock, connection.execute_wrapper(counter):
                with stopwatch() as clv_clock:
                    lifespan, _ = expected_lifespan_years()
                    clv = list(
                        customers_with_clv(user=admin, lifespan_years=lifespan).values_list(
                            "pk", "clv"
                        )
                    )
                with stopwatch() as churn_clock:
                    churn = list(
                        customers_with_churn(user=admin).values_list("pk", "churn_probability")
                    )
            runs.append(clock["seconds"])
            clv_runs.append(clv_clock["seconds"])
            churn_runs.append(churn_clock["seconds"])

        # Untimed checks: every customer has a CLV, every customer not yet churned a
        # probability between 0 and 1.
        if len(clv) != CUSTOMERS or len({pk for pk, _ in clv}) != CUSTOMERS:
            raise AssertionError(f"{len(clv)} CLV rows for {CUSTOMERS} customers.")
        not_churned = Customer.objects.exclude(lifecycle_stage="churned").count()
        if len(churn) != not_churned:
            raise AssertionError(f"{len(churn)} churn rows for {not_churned} customers.")
        if not all(0.0 <= p <= 1.0 for _, p in churn):
            raise AssertionError("A churn probability outside 0-1.")
        with_value = sum(1 for _, value in clv if value)
        at_risk = sum(1 for _, p in churn if p >= 0.6)
    return {
        "n": len(clv),
        "seconds": round(statistics.median(runs), 3),
        "runs": [round(run, 3) for run in runs],
        "clv_seconds": round(statistics.median(clv_runs), 3),
        "churn_seconds": round(statistics.median(churn_runs), 3),
        "queries": counter.count,
        "churn_rows": len(churn),
        "customers_with_clv": with_value,
        "churn_risk_0_6": at_risk,
        "lifespan_years": round(lifespan, 3),
        "deals": data["deals"],
    }
