"""The global search over 1,000,000 deals, 200,000 customers with notes and 20,000 documents
with extracted text: 300 realistic queries (names, prefixes, emails, domains, phones in
other formats, typos, phrases, filters) as a rep and as a manager, through the header's
dropdown and the results page.

The data set lives in a database of its own (crm_bench_search_1m, or BENCH_SEARCH_DATABASE;
its name must contain "bench"), made (untimed) when missing or of another size.
SEARCH_BENCH_SCALE (default 1) scales every count, for a machine or a time budget that
cannot afford the full set: 0.2 is 200,000 deals, 40,000 customers, 4,000 documents. The
row records the scale and the counts it ran on.

Row: `p95_ms`/`p50_ms` the dropdown's server time, `results_p95_ms`/`results_p50_ms` the
results page's, `queries` the most SQL statements of one request, `index_seconds` the time
`search_index_rebuild` took to index the whole set (from an empty index), `cases` the p95 per
kind of query and page.
"""

import os
import random
import statistics
import time
from collections import defaultdict
from datetime import timedelta
from urllib.parse import urlencode

from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from bench import database
from bench.measure import logged_in_client, percentile
from bench.registry import scenario
from crm.bulk import bulk_insert
from customers.models import Customer, CustomerNote
from demo.generators import dataset_generate
from demo.profiles import BENCH_1M, COMPANY_WORDS, FIRST_NAMES, LAST_NAMES
from documents.models import Document
from sales.models import Sale
from search import postgres
from search.models import SearchEntry
from search.services import search_index_rebuild

DATABASE = os.environ.get("BENCH_SEARCH_DATABASE", "crm_bench_search_1m")
SCALE = float(os.environ.get("SEARCH_BENCH_SCALE", "1"))
CUSTOMERS = int(200_000 * SCALE)
DEALS = int(1_000_000 * SCALE)
DOCUMENTS = int(20_000 * SCALE)
NOTE_SHARE = 0.5  # of customers with a note besides the generator's fields
SEED = 16_016
QUERIES = 300
WARMUP = 20
USERS = {"rep": "alex", "manager": "nora"}
PROSE = [
    "renewal",
    "pricing",
    "discount",
    "proposal",
    "contract",
    "onboarding",
    "integration",
    "security",
    "review",
    "procurement",
    "budget",
    "approval",
    "quarter",
    "invoice",
    "migration",
    "training",
    "workshop",
    "pilot",
    "rollout",
    "licence",
    "seats",
    "support",
    "escalation",
    "roadmap",
    "feedback",
    "competitor",
    "evaluation",
    "timeline",
    "stakeholder",
    "meeting",
    "demo",
    "architecture",
    "compliance",
    "audit",
    "warranty",
    "shipment",
    "logistics",
]


def _sentence(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(PROSE) for _ in range(words)).capitalize() + "."


def _ensure_data() -> dict:
    database.ensure_database()
    current = (
        Customer.objects.count() == CUSTOMERS
        and Sale.objects.count() == DEALS
        and Document.objects.count() == DOCUMENTS
        and SearchEntry.objects.exists()
        and postgres.index_intact()  # not emptied by a crash (search.models), nor half-built
    )
    made = {"generated_seconds": 0.0, "index_seconds": None}
    if current:
        return made
    print(f"  {DATABASE}: generating {CUSTOMERS:,} customers, {DEALS:,} deals, "
          f"{DOCUMENTS:,} documents (untimed)…", flush=True)  # fmt: skip
    started = time.perf_counter()
    database.recreate_database()
    database.seed_demo(customers=0, deals=0, lead_history=0)
    reps = list(
        get_user_model().objects.filter(groups__name="Sales rep").order_by("pk")
        .values_list("pk", flat=True)
    )  # fmt: skip
    dataset_generate(customers=CUSTOMERS, deals=DEALS, rep_ids=reps, seed=SEED,
                     profile=BENCH_1M, batch=100_000)  # fmt: skip
    rng = random.Random(SEED)
    _notes(rng)
    _documents(rng, reps)
    database.analyze()
    made["generated_seconds"] = round(time.perf_counter() - started, 1)
    print(f"  generated in {made['generated_seconds']} s; indexing…", flush=True)
    SearchEntry.objects.all().delete()  # the seed's few entries: index from empty
    started = time.perf_counter()
    search_index_rebuild(progress=None)
    made["index_seconds"] = round(time.perf_counter() - started, 1)
    database.analyze()
    print(f"  indexed in {made['index_seconds']} s", flush=True)
    return made


def _notes(rng: random.Random) -> None:
    ids = list(Customer.objects.order_by("pk").values_list("pk", flat=True))
    now = timezone.now()
    rows = [
        {"customer_id": pk, "author_id": None, "text": _sentence(rng, rng.randint(8, 30)),
         "created_at": now - timedelta(days=rng.randint(0, 700))}
        for pk in ids
        if rng.random() < NOTE_SHARE
    ]  # fmt: skip
    for start in range(0, len(rows), 50_000):
        bulk_insert(CustomerNote, rows[start : start + 50_000])


def _documents(rng: random.Random, reps: list[int]) -> None:
    customers = list(Customer.objects.order_by("pk").values_list("pk", "name"))
    now = timezone.now()
    rows = []
    for i in range(DOCUMENTS):
        pk, name = rng.choice(customers)
        paragraphs = [_sentence(rng, rng.randint(10, 40)) for _ in range(rng.randint(20, 120))]
        paragraphs.insert(rng.randrange(len(paragraphs)), f"Prepared for {name}.")
        rows.append({
            "title": f"{rng.choice(['Proposal', 'Contract', 'Notes', 'Offer'])} {name}",
            "description": _sentence(rng, 12), "document_type": "other",
            "file": f"bench/{i}.txt", "original_name": f"document-{i}.txt", "file_size": 1,
            "mime_type": "text/plain", "sha256": "0" * 64, "customer_id": pk,
            "uploaded_by_id": rng.choice(reps),
            "uploaded_at": now - timedelta(days=rng.randint(0, 700)),
            "is_active": True, "version": 1, "is_public": False, "processing_status": "done",
            "extracted_text": "\n".join(paragraphs), "preview_text": "",
        })  # fmt: skip
        if len(rows) == 5000:
            bulk_insert(Document, rows)
            rows = []
    bulk_insert(Document, rows)


# The queries -----------------------------------------------------------------------------


def _typo(word: str, rng: random.Random) -> str:
    if len(word) < 5:
        return word + word[-1]
    i = rng.randrange(1, len(word) - 2)
    return word[:i] + word[i + 1] + word[i] + word[i + 2 :]


def _phone_variant(phone: str, rng: random.Random) -> str:
    digits = "".join(c for c in phone if c.isdigit())
    return rng.choice([
        phone, digits, f"{digits[-10:-7]} {digits[-7:-4]} {digits[-4:]}",
        f"({digits[-10:-7]}) {digits[-7:-4]}-{digits[-4:]}", digits[-7:],
    ])  # fmt: skip


def _queries(user, rng: random.Random, count: int) -> list[tuple[str, str]]:
    """(kind, query) drawn from what this user can see, and some from what they cannot."""
    from crm.permissions import visible_customers

    sample = list(
        visible_customers(user).order_by("?").values("name", "email", "phone", "company")[:200]
    )
    others = list(Customer.objects.order_by("?").values("name")[:50])
    makers = [
        ("name", lambda c: c["name"]),
        ("prefix", lambda c: c["name"].split()[-1][: rng.randint(3, 5)]),
        ("first and prefix", lambda c: f"{c['name'].split()[0]} {c['name'].split()[-1][:3]}"),
        ("email", lambda c: c["email"]),
        ("domain", lambda c: c["email"].split("@")[1]),
        ("phone", lambda c: _phone_variant(c["phone"], rng)),
        ("typo", lambda c: _typo(c["name"].split()[-1], rng)),
        ("company", lambda c: c["company"].split()[0]),
        ("phrase", lambda c: f'"{rng.choice(PROSE)} {rng.choice(PROSE)}"'),
        ("deal filter", lambda c: f"{c['name'].split()[-1]} type:deal"),
        ("word or word", lambda c: f"{rng.choice(LAST_NAMES)} or {rng.choice(COMPANY_WORDS)}"),
        ("exclude", lambda c: f"{rng.choice(FIRST_NAMES)} -{rng.choice(LAST_NAMES)}"),
        ("prose", lambda c: rng.choice(PROSE)),
        ("not theirs", lambda c: rng.choice(others)["name"]),
    ]
    queries = []
    for i in range(count):
        kind, make = makers[i % len(makers)]
        queries.append((kind, make(rng.choice(sample))))
    return queries


def _timed(client, url: str) -> tuple[float, int]:
    with CaptureQueriesContext(connection) as captured:
        started = time.perf_counter()
        response = client.get(url)
        ms = (time.perf_counter() - started) * 1000
    if response.status_code != 200:
        raise AssertionError(f"GET {url} answered {response.status_code}")
    return ms, len(captured.captured_queries)


@scenario(
    "search_1m",
    targets={"p95_ms_max": 50, "results_p95_ms_max": 150, "queries_max": 10},
    order=95,
)
def search_1m() -> dict:
    """Global search: 1M deals, 200k customers with notes, 20k documents (SEARCH_BENCH_SCALE)."""
    with database.using_database(DATABASE):
        made = _ensure_data()
        users = get_user_model().objects.in_bulk(list(USERS.values()), field_name="username")
        rng = random.Random(SEED)
        plan = []  # (who, kind, query)
        for role, username in USERS.items():
            user = users[username]
            plan += [(role, kind, q) for kind, q in _queries(user, rng, QUERIES // len(USERS))]
        rng.shuffle(plan)
        clients = {role: logged_in_client(users[name]) for role, name in USERS.items()}
        for role, _, q in plan[:WARMUP]:
            _timed(clients[role], "/search/dropdown/?" + urlencode({"q": q}))
        dropdown, results, most_queries = [], [], 0
        per_case: dict[tuple[str, str], list[tuple[float, int]]] = defaultdict(list)
        started = time.perf_counter()
        for role, kind, q in plan:
            for page, url, into in (
                ("dropdown", "/search/dropdown/?", dropdown),
                ("results", "/search/?", results),
            ):
                ms, queries = _timed(clients[role], url + urlencode({"q": q}))
                into.append(ms)
                most_queries = max(most_queries, queries)
                per_case[(page, kind)].append((ms, queries))
        seconds = time.perf_counter() - started
        return {
            "n": len(plan),
            "seconds": round(seconds, 3),
            "p50_ms": round(percentile(dropdown, 50), 2),
            "p95_ms": round(percentile(dropdown, 95), 2),
            "results_p50_ms": round(percentile(results, 50), 2),
            "results_p95_ms": round(percentile(results, 95), 2),
            "queries": most_queries,
            "scale": SCALE,
            "customers": Customer.objects.count(),
            "deals": Sale.objects.count(),
            "documents": Document.objects.count(),
            "entries": SearchEntry.objects.count(),
            **made,
            "cases": [
                {
                    "who": page,  # the runner prints who and url: the page and the query kind
                    "url": kind,
                    "p50_ms": round(statistics.median(ms for ms, _ in v), 2),
                    "p95_ms": round(percentile([ms for ms, _ in v], 95), 2),
                    "max_ms": round(max(ms for ms, _ in v), 2),
                    "queries": max(q for _, q in v),
                }
                for (page, kind), v in sorted(per_case.items())
            ],  # fmt: skip
        }
