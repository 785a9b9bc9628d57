from bench import database
from bench.measure import stopwatch
from bench.registry import scenario


@scenario("seed_100k", targets={"seconds_max": 90}, order=10)
def seed_100k() -> dict:
    """seed_demo with 100k customers and 100k deals on a freshly migrated, empty database."""
    database.recreate_database()
    with stopwatch() as clock:
        database.seed_demo(**database.SEED_100K)
    # Untimed: leave planner statistics behind for the page scenarios that follow.
    database.analyze()
    return {"n": database.SEED_100K["customers"], "seconds": round(clock["seconds"], 3)}
