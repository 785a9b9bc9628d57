"""seed_demo with 100k customers and 100k deals on a freshly migrated, empty database, and
first the same seed without building the search index, for what the index costs
(`search_overhead`, a fraction of the time without it)."""

from unittest import mock

from bench import database
from bench.measure import stopwatch
from bench.registry import scenario


@scenario("seed_100k", targets={"seconds_max": 90, "search_overhead_max": 0.2}, order=10)
def seed_100k() -> dict:
    """seed_demo with 100k customers and 100k deals on a freshly migrated, empty database."""
    database.recreate_database()
    with mock.patch("demo.services.search_index_rebuild"), stopwatch() as baseline:
        database.seed_demo(**database.SEED_100K)
    database.recreate_database()
    with stopwatch() as clock:
        database.seed_demo(**database.SEED_100K)
    # Untimed: leave planner statistics behind for the page scenarios that follow.
    database.analyze()
    return {
        "n": database.SEED_100K["customers"],
        "seconds": round(clock["seconds"], 3),
        "seconds_without_search": round(baseline["seconds"], 3),
        "search_overhead": round(clock["seconds"] / baseline["seconds"] - 1, 3),
    }
