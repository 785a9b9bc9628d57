"""Timing helpers shared by the scenarios: a stopwatch, a query counter and the
page-request loop."""

import statistics
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext


class QueryCounter:
    """Counts the SQL statements run on the default connection, without keeping them."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        return execute(sql, params, many, context)


@contextmanager
def stopwatch() -> Iterator[dict[str, float]]:
    """`with stopwatch() as clock: ...` then clock["seconds"] is the wall time."""
    clock = {"seconds": 0.0}
    started = time.perf_counter()
    try:
        yield clock
    finally:
        clock["seconds"] = time.perf_counter() - started


def percentile(values: Sequence[float], pct: float) -> float:
    """Linear-interpolated percentile (the "inclusive" method: p0 = min, p100 = max)."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    position = (len(ordered) - 1) * pct / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass(frozen=True)
class PageRequest:
    """One GET of the mix: who asks (a label and a logged-in client) and for which URL."""

    who: str
    client: Client
    url: str


def logged_in_client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def measure_pages(mix: Sequence[PageRequest], *, requests: int, warmup: int) -> dict:
    """GET the mix round-robin, `requests` times after `warmup` uncounted requests.

    Each request is timed with perf_counter around client.get and its queries counted
    with CaptureQueriesContext; every response must be a 200. Returns the row fields of a
    page scenario (n, seconds, p50_ms, p95_ms, queries = the most queries of one page)
    and `cases`, the same numbers per URL of the mix for finding the slow one.
    """
    for i in range(warmup):
        _get(mix[i % len(mix)])
    durations: list[float] = []
    per_case: dict[tuple[str, str], list[tuple[float, int]]] = defaultdict(list)
    with stopwatch() as clock:
        for i in range(requests):
            request = mix[i % len(mix)]
            ms, queries = _get(request)
            durations.append(ms)
            per_case[(request.who, request.url)].append((ms, queries))
    cases = [
        {
            "who": who,
            "url": url,
            "p50_ms": round(statistics.median(ms for ms, _ in samples), 2),
            "max_ms": round(max(ms for ms, _ in samples), 2),
            "queries": max(q for _, q in samples),
        }
        for (who, url), samples in per_case.items()
    ]
    return {
        "n": requests,
        "seconds": round(clock["seconds"], 3),
        "p50_ms": round(percentile(durations, 50), 2),
        "p95_ms": round(percentile(durations, 95), 2),
        "queries": max(case["queries"] for case in cases),
        "cases": cases,
    }


def _get(request: PageRequest) -> tuple[float, int]:
    with CaptureQueriesContext(connection) as captured:
        started = time.perf_counter()
        response = request.client.get(request.url)
        ms = (time.perf_counter() - started) * 1000
    if response.status_code != 200:
        raise AssertionError(
            f"GET {request.url} as {request.who} answered {response.status_code}, not 200."
        )
    return ms, len(captured.captured_queries)
