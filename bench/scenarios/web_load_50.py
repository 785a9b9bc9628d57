"""50 users signed in at once, for 3 minutes, against the production shape on the 100k data.

The scenario starts what README.md "Production" runs (gunicorn with gunicorn.conf.py and three
workers, DEBUG off, PostgreSQL, Redis, one Celery worker; bench/load/stack.py) on a copy of the
100k bench database, and drives it with locust, headless, from this machine
(bench/load/locustfile.py, with the ids of bench/load/plan.py). Every process it starts is
stopped and the copy dropped at the end, error or not.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from django.conf import settings
from django.core.cache import cache

from bench import database
from bench.load.cpu import CpuMonitor
from bench.load.plan import build_plan
from bench.load.stack import Stack, exit_on_termination, production_stack, stop
from bench.measure import percentile
from bench.registry import scenario

USERS = 50
MANAGERS = 10  # sessions of the two demo managers; the other 40 are the six reps'
SPAWN_RATE = 2  # users a second, each signing in as it starts
SECONDS = float(os.environ.get("BENCH_LOAD_SECONDS", "180"))
APP_DIR = Path(__file__).resolve().parents[2]
LOCUSTFILE = APP_DIR / "bench" / "load" / "locustfile.py"
# Signing in 50 users (a password hash each) takes well under a minute on 2 cores.
LOCUST_TIMEOUT_SECONDS = SECONDS + USERS / SPAWN_RATE + 120

TARGETS = {
    "failures_max": 0,
    "server_errors_max": 0,  # any 5xx fails the scenario
    "p95_ms_max": 300,
    "worst_page_p95_ms_max": 500,
    "rps_min": 20,
}


def _run_locust(stack: Stack, plan: dict, work_dir: Path, database_name: str) -> dict:
    """Run locust until it quits (or LOCUST_TIMEOUT_SECONDS), reading the CPU use of
    everything involved once a second meanwhile; its samples with the CPU use of the window."""
    plan_path, samples_path = work_dir / "plan.json", work_dir / "samples.json"
    plan_path.write_text(json.dumps(plan))
    command = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless"]
    command += ["--users", str(USERS), "--spawn-rate", str(SPAWN_RATE), "--host", stack.url]
    command += ["--only-summary", "--loglevel", "WARNING", "--exit-code-on-error", "0"]
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO", "DATABASE", "REDIS"))
    }
    env.update(
        BENCH_LOAD_PLAN=str(plan_path),
        BENCH_LOAD_SAMPLES=str(samples_path),
        BENCH_LOAD_SECONDS=str(SECONDS),
    )
    with (work_dir / "locust.log").open("ab") as log:
        process = subprocess.Popen(
            command, cwd=work_dir, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    monitor = CpuMonitor({"generator": process.pid, **stack.process_groups}, database_name)
    deadline = time.monotonic() + LOCUST_TIMEOUT_SECONDS
    try:
        while process.poll() is None and time.monotonic() < deadline:
            monitor.read()
            time.sleep(1)
    finally:
        stop(process)
    if not samples_path.exists():
        raise RuntimeError(f"locust wrote no samples (signing in failed?); see {work_dir}.")
    result = json.loads(samples_path.read_text())
    return {**result, "cpu": monitor.usage(result["window_start"], result["window_end"])}


def _stats(rows: list[list]) -> dict:
    ms = [row[3] for row in rows]
    return {
        "requests": len(rows),
        "failures": sum(1 for row in rows if row[5]),
        "p50_ms": round(percentile(ms, 50), 1),
        "p95_ms": round(percentile(ms, 95), 1),
        "p99_ms": round(percentile(ms, 99), 1),
    }


def summarize(result: dict) -> dict:
    """The row: aggregate and per-page numbers over the measured window."""
    start, end = result["window_start"], result["window_end"]
    seconds = end - start
    measured = [row for row in result["samples"] if start <= row[0] < end]
    if not measured:
        raise RuntimeError("No request was measured.")
    by_page: dict[str, list[list]] = defaultdict(list)
    for row in measured:
        by_page[row[1]].append(row)
    pages = {name: _stats(rows) for name, rows in sorted(by_page.items())}
    worst = max(pages, key=lambda name: pages[name]["p95_ms"])
    overall = _stats(measured)
    failed = [row for row in measured if row[5]]
    examples = sorted({f"{row[2]} {row[1]}: {row[5]}" for row in failed})[:10]
    return {
        "n": len(measured),
        "seconds": round(seconds, 1),
        "users": result["users"],
        "rps": round(len(measured) / seconds, 2),
        "failures": overall["failures"],
        "server_errors": sum(1 for row in measured if row[4] >= 500),
        "p50_ms": overall["p50_ms"],
        "p95_ms": overall["p95_ms"],
        "p99_ms": overall["p99_ms"],
        "worst_page": worst,
        "worst_page_p95_ms": pages[worst]["p95_ms"],
        "pages": pages,
        # CPU time over the window as a share of the whole machine (all cores): locust (one
        # process, so at most 1 / cores), gunicorn with the Celery worker, PostgreSQL's
        # backends for the test's database, and everything that ran, other work included.
        **_cpu_shares(result["cpu"], len(measured)),
        **({"failure_examples": examples} if examples else {}),
    }


def _cpu_shares(cpu: dict, requests: int) -> dict:
    if not cpu:
        return {}
    capacity = cpu["seconds"] * (os.cpu_count() or 1)
    servers = cpu["gunicorn"] + cpu["celery worker"]
    ours = (cpu["generator"] + servers + cpu["database"]) / capacity
    return {
        "generator_cpu_share": round(cpu["generator"] / capacity, 3),
        "servers_cpu_share": round(servers / capacity, 3),
        "database_cpu_share": round(cpu["database"] / capacity, 3),
        "machine_cpu_busy_share": round(cpu["machine"], 3),
        # Redis and whatever else ran on the machine meanwhile (other people's work).
        "other_cpu_share": round(max(0.0, cpu["machine"] - ours), 3),
        "servers_cpu_ms_per_request": round(servers * 1000 / requests, 1),
        "database_cpu_ms_per_request": round(cpu["database"] * 1000 / requests, 1),
    }


def _print(row: dict) -> None:
    print(f"  {'page':<28} {'requests':>8} {'fail':>5} {'p50':>8} {'p95':>8} {'p99':>8}")
    for name, page in row["pages"].items():
        print(
            f"  {name:<28} {page['requests']:>8} {page['failures']:>5} {page['p50_ms']:>8.1f}"
            f" {page['p95_ms']:>8.1f} {page['p99_ms']:>8.1f}"
        )
    print(
        f"  {row['n']} requests in {row['seconds']} s: {row['rps']} /s, p95 {row['p95_ms']} ms,"
        f" {row['failures']} failures ({row['server_errors']} 5xx);"
        f" CPU (of the machine): locust {row.get('generator_cpu_share', 0):.0%},"
        f" gunicorn + Celery {row.get('servers_cpu_share', 0):.0%}"
        f" ({row.get('servers_cpu_ms_per_request')} ms a request),"
        f" PostgreSQL {row.get('database_cpu_share', 0):.0%}"
        f" ({row.get('database_cpu_ms_per_request')} ms a request),"
        f" other {row.get('other_cpu_share', 0):.0%},"
        f" busy {row.get('machine_cpu_busy_share', 0):.0%}",
        flush=True,
    )
    for example in row.get("failure_examples", []):
        print(f"  failed: {example}")


@scenario("web_load_50", targets=TARGETS, order=90)
def web_load_50() -> dict:
    """50 signed-in reps and managers for 3 minutes against gunicorn + Celery on the 100k data.

    Pages, searches and filters, an activity, a task and a board move per user now and then,
    1-3 s apart; every page's p50/p95/p99 and failures, requests a second, any 5xx fails it."""
    database.ensure_seeded_100k()
    plan = build_plan(users=USERS, managers=MANAGERS)
    work_dir = Path(tempfile.mkdtemp(prefix="web_load_50_"))
    with exit_on_termination():
        return _measure(plan, work_dir)


def _measure(plan: dict, work_dir: Path) -> dict:
    # The writes (activities, tasks, moves) go to a copy, so the data set stays as seeded.
    copy = database.clone_database("web_load")
    keep_logs = True
    try:
        cache.clear()  # the bench Redis db: no sessions, cached pages or queued tasks from before
        with production_stack(
            app_dir=APP_DIR,
            database_url=database.database_url(copy),
            redis_url=settings.REDIS_URL,
            work_dir=work_dir,
        ) as stack:
            load_before = round(os.getloadavg()[0], 2)
            print(f"  {stack.url} ready (load average {load_before}); {USERS} users…", flush=True)
            started = time.perf_counter()
            result = _run_locust(stack, plan, work_dir, copy)
            print(f"  locust done in {time.perf_counter() - started:.0f} s", flush=True)
        row = {**summarize(result), "load_avg_before": load_before}
        keep_logs = bool(row["failures"])
        _print(row)
        return row
    finally:
        database.drop_database(copy)
        if keep_logs:
            print(f"  logs kept in {work_dir}", flush=True)
        else:
            shutil.rmtree(work_dir, ignore_errors=True)
