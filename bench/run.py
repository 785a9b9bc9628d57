#!/usr/bin/env python
"""Run the benchmark scenarios on PostgreSQL and record them in bench/results.json.

    python bench/run.py                          # every scenario
    python bench/run.py --scenario customer_list_100k
    python bench/run.py --list

Exit status: 0 when every scenario met its targets, 1 when one missed, 2 on an error.
"""

import argparse
import os
import sys
import traceback
import warnings
from datetime import UTC, datetime
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/crm_bench"


def configure_environment() -> None:
    """The bench's own database and Redis db; must run before Django reads its settings."""
    os.environ["DATABASE_URL"] = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL)
    os.environ["REDIS_URL"] = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
    os.environ["DJANGO_SETTINGS_MODULE"] = "crm.settings"
    # DEBUG=true only so crm.settings loads without a SECRET_KEY; see setup_django().
    os.environ["DEBUG"] = "true"
    os.environ["ALLOWED_HOSTS"] = "testserver,127.0.0.1,localhost"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))


def setup_django() -> None:
    import django
    from django.conf import settings

    # Whitenoise warns that STATIC_ROOT was never collected; the pages work without it.
    warnings.filterwarnings("ignore", message="No directory at", category=UserWarning)
    django.setup()
    # Measure production behaviour, as Django's test runner does: no SQL log kept in
    # memory, templates without debug bookkeeping (template engines are built lazily).
    settings.DEBUG = False


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--scenario",
        action="append",
        metavar="NAME",
        help="run only this scenario (repeat or comma-separate for several)",
    )
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    parser.add_argument(
        "--results", type=Path, default=BENCH_DIR / "results.json", help="where rows are kept"
    )
    return parser.parse_args(argv)


def run_one(scenario) -> dict:
    from bench.registry import check_targets

    print(f"\n== {scenario.name}: {scenario.description}", flush=True)
    row: dict = {"scenario": scenario.name}
    try:
        measured = scenario.func()
        missing = {"n", "seconds"} - measured.keys()
        if missing:
            raise RuntimeError(f"{scenario.name} did not return {sorted(missing)}.")
    except Exception as error:  # record it, carry on with the other scenarios
        traceback.print_exc()
        row.update({"n": None, "seconds": None, "error": f"{type(error).__name__}: {error}"})
        missed = ["the scenario raised an error"]
    else:
        row.update(measured)
        if row.get("baseline_seconds"):
            # How many times faster than the baseline: baseline over ours.
            row["ratio"] = round(row["baseline_seconds"] / row["seconds"], 3)
        missed = check_targets(row, scenario.targets)
    row["targets"] = scenario.targets
    row["passed"] = not missed
    if missed:
        row["missed"] = missed
    row["measured_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    # Other work on the machine skews timings; the 1-minute load average says how much.
    row["load_avg_1m"] = round(os.getloadavg()[0], 2)
    for case in row.get("cases", []):
        print(
            f"  {case['who']:<6} {case['url']:<58} p50 {case['p50_ms']:7.2f} ms"
            f"  max {case['max_ms']:7.2f} ms  {case['queries']:2d} queries",
            flush=True,
        )
    verdict = "error" if row.get("error") else ("pass" if not missed else "FAIL")
    print(f"  -> {verdict}" + (f": {'; '.join(missed)}" if missed else ""), flush=True)
    return row


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    configure_environment()
    setup_django()

    from bench import results
    from bench.registry import load_scenarios

    scenarios = load_scenarios()
    if args.list:
        for scenario in scenarios.values():
            print(f"{scenario.name:<24} {scenario.description}")
        return 0
    wanted = [name for item in args.scenario or [] for name in item.split(",") if name]
    unknown = [name for name in wanted if name not in scenarios]
    if unknown:
        print(f"Unknown scenario(s): {', '.join(unknown)}. Known: {', '.join(scenarios)}")
        return 2
    chosen = [scenario for name, scenario in scenarios.items() if not wanted or name in wanted]

    from django.conf import settings

    print(f"Benchmark database: {settings.DATABASES['default']['NAME']}", flush=True)
    new_rows = [run_one(scenario) for scenario in chosen]
    rows = results.merge(results.load(args.results), new_rows, order=list(scenarios))
    results.save(args.results, rows)
    print(f"\n{results.table(rows)}\n\nWrote {args.results}", flush=True)
    if any(row.get("error") for row in new_rows):
        return 2
    return 0 if all(row["passed"] for row in new_rows) else 1


if __name__ == "__main__":
    sys.exit(main())
