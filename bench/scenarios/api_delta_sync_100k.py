"""A phone's delta sync over 100k customers: what changed since yesterday (issue 18).

On a copy of the bench database (its writes must not change what the other scenarios
read): every customer last changed two days ago, then 1,000 changed an hour ago, 50 of
them deleted and 50 given away from the rep through the services (tombstones). Timed: the
whole sync, `updated_since` = yesterday, following `next` to the end, pages of 200, as the
admin (who sees all 100,000) and as a rep; repeated SYNCS times each.
"""

import time
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db import connection, connections
from django.db.models import F
from django.utils import timezone

from bench import database
from bench.measure import QueryCounter, percentile
from bench.registry import scenario
from bench.scenarios.api_customers_100k import token_client

CHANGED = 1000
DELETED = 50
REASSIGNED = 50
SYNCS = 10
PAGE_SIZE = 200


def _prepare(admin, rep, other) -> dict:
    from customers.models import Customer
    from customers.services import customer_bulk_assign_owner, customer_delete

    now = timezone.now()
    Customer.objects.update(updated_at=now - timedelta(days=2))
    rep_ids = list(Customer.objects.filter(owner=rep).order_by("?").values_list("pk", flat=True))
    others = list(
        Customer.objects.exclude(owner=rep).order_by("?").values_list("pk", flat=True)[:CHANGED]
    )
    changed = rep_ids[: CHANGED // 4] + others[: CHANGED - CHANGED // 4]
    Customer.objects.filter(pk__in=changed).update(
        updated_at=now - timedelta(hours=1), notes=F("notes")
    )
    gone = [pk for pk in changed if pk not in rep_ids][:DELETED]
    for customer in Customer.objects.filter(pk__in=gone):
        customer_delete(actor=admin, customer=customer)
    given_away = rep_ids[CHANGED // 4 : CHANGED // 4 + REASSIGNED]
    customer_bulk_assign_owner(actor=admin, customer_ids=given_away, owner=other)
    return {"changed": len(changed), "given_away": len(given_away)}


def _sync(client, since) -> tuple[list[float], int, int, int]:
    """One full sync: (each page's ms, most queries of a page, records, removed ids)."""
    url = "/api/v1/customers/"
    params = {"updated_since": since.isoformat(), "page_size": PAGE_SIZE}
    timings, most_queries, records, removed = [], 0, 0, 0
    while url:
        counter = QueryCounter()
        with connection.execute_wrapper(counter):
            started = time.perf_counter()
            response = client.get(url, params)
            timings.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise AssertionError(f"GET {url} answered {response.status_code}")
        body = response.json()
        most_queries = max(most_queries, counter.count)
        records += len(body["results"])
        removed += len(body.get("removed", []))
        url, params = body["next"], None
    return timings, most_queries, records, removed


@scenario(
    "api_delta_sync_100k",
    targets={"seconds_max": 0.2, "p95_ms_max": 200, "queries_max": 12},
    order=22,
)
def api_delta_sync_100k() -> dict:
    """/api/v1/customers/?updated_since=yesterday: 1,000 changed of 100,000, with tombstones."""
    database.ensure_seeded_100k()
    copy = database.clone_database("api_sync")
    original = connection.settings_dict["NAME"]
    connections.close_all()
    connection.settings_dict["NAME"] = copy
    try:
        users = get_user_model().objects.in_bulk(["admin", "alex", "bea"], field_name="username")
        prepared = _prepare(users["admin"], users["alex"], users["bea"])
        since = timezone.now() - timedelta(days=1)
        clients = {"admin": token_client(users["admin"]), "alex": token_client(users["alex"])}
        for client in clients.values():
            _sync(client, since)  # warm-up
        page_ms, sync_seconds, queries, seen = [], [], 0, {}
        for _ in range(SYNCS):
            for who, client in clients.items():
                started = time.perf_counter()
                timings, most, records, removed = _sync(client, since)
                if who == "admin":
                    sync_seconds.append(time.perf_counter() - started)
                page_ms += timings
                queries = max(queries, most)
                seen[who] = {"records": records, "removed": removed, "pages": len(timings)}
    finally:
        connections.close_all()
        connection.settings_dict["NAME"] = original
        database.drop_database(copy)
    return {
        "n": SYNCS,
        "seconds": round(percentile(sync_seconds, 50), 3),
        "slowest_sync_seconds": round(max(sync_seconds), 3),
        "p50_ms": round(percentile(page_ms, 50), 2),
        "p95_ms": round(percentile(page_ms, 95), 2),
        "queries": queries,
        "synced": seen,
        **prepared,
    }
