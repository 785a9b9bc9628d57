"""Duplicate customers: a scan of 200,000 customers of which 2% are planted duplicates of
others, scored against the planted pairs; then a merge of a customer with 1,000 related
rows into another, and its undo.

The data set lives in a database of its own (crm_bench_duplicates_200k, or
BENCH_DUPLICATES_DATABASE; its name must contain "bench"), made (untimed) when missing. The
customers are people at 20,000 companies, with names drawn from Faker's name lists of nine
locales (the demo generator's 720 names would make namesakes of everyone), company emails,
phones in several formats (15% none). A planted duplicate copies one of them with the
changes people make when they type a customer twice: a typo, other case or spacing in the
name; another email (a private one, another spelling at the company, a +tag); the phone in
another format or left out; the company in other case, with another legal form or left out.
At least one of email domain, phone and company still links it (with none, nobody could tell
"J. Smith" from his namesake). The pairs are kept in a bench-only table.

Row: `seconds` the scan (keys, blocks, scoring, saving), `recall` planted pairs found,
`precision` found pairs that are planted, `pairs` found, `merge_seconds` one merge moving
1,000 rows (deals, tasks, notes, activities, score history), `undo_seconds` its undo.
"""

import os
import random
import re
import time
import unicodedata
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone

from bench import database
from bench.registry import scenario
from crm.bulk import bulk_insert
from customers.duplicates import services
from customers.duplicates.models import CustomerMerge, DuplicateJob, DuplicatePair
from customers.models import Customer, CustomerNote
from leads.models import LeadActivity, ScoreChange
from sales.models import Sale, Task

DATABASE = os.environ.get("BENCH_DUPLICATES_DATABASE", "crm_bench_duplicates_200k")
CUSTOMERS = 200_000
PLANTED_SHARE = 0.02
COMPANIES = 20_000
SEED = 22_022
LOCALES = ["en_US", "de_DE", "fr_FR", "es_ES", "it_IT", "nl_NL", "sv_SE", "pt_BR", "pl_PL"]
COMPANY_WORDS = [
    "Logistics", "Analytics", "Foods", "Energy", "Systems", "Partners", "Labs", "Media",
    "Retail", "Capital", "Health", "Robotics", "Textiles", "Travel", "Motors", "Pharma",
    "Software", "Consulting", "Design", "Marine", "Solar", "Freight", "Insurance", "Studio",
]  # fmt: skip
LEGAL_FORMS = ["Inc", "Ltd", "GmbH", "LLC", "Corp", "SA", "BV", "AB", ""]
OTHER_FORMS = {"Inc": "Incorporated", "Ltd": "Limited", "Corp": "Corporation", "LLC": "L.L.C."}
FREE_MAIL = ["gmail.com", "yahoo.com", "outlook.com", "hotmail.com", "gmx.de", "icloud.com"]
PLANTED_TABLE = (
    "CREATE TABLE IF NOT EXISTS bench_planted_pairs (original_id bigint, duplicate_id bigint)"
)
RELATED_ROWS = {"sales": 100, "tasks": 100, "notes": 300, "activities": 300, "scores": 200}


def _slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "", ascii_text.lower())


def _names() -> tuple[list[str], list[str]]:
    import importlib

    first, last = set(), set()
    for locale in LOCALES:
        provider = importlib.import_module(f"faker.providers.person.{locale}").Provider
        first |= set(provider.first_names)
        last |= set(provider.last_names)
    return sorted(first), sorted(last)


def _phone(rng: random.Random, digits: str) -> str:
    area, mid, end = digits[:3], digits[3:6], digits[6:]
    return rng.choice(
        [
            f"+1 {area} {mid} {end}",
            f"({area}) {mid}-{end}",
            f"{area}.{mid}.{end}",
            f"+1-{area}-{mid}-{end}",
            f"{area}{mid}{end}",
        ]
    )


def _typo(text: str, rng: random.Random) -> str:
    letters = [i for i, c in enumerate(text) if c.isalpha()][1:]  # keep the first letter
    if not letters:
        return text
    at = rng.choice(letters)
    kind = rng.choice(["drop", "double", "swap", "other"])
    if kind == "drop":
        return text[:at] + text[at + 1 :]
    if kind == "double":
        return text[:at] + text[at] + text[at:]
    if kind == "swap" and at + 1 < len(text) and text[at + 1].isalpha():
        return text[:at] + text[at + 1] + text[at] + text[at + 2 :]
    return text[:at] + rng.choice("aeiourstln") + text[at + 1 :]


def _planted(original: dict, company: dict, rng: random.Random, taken: set[str]) -> dict:
    first, last = original["_first"], original["_last"]
    name = original["name"]
    change = rng.random()
    if change < 0.45:
        name = _typo(name, rng)
    elif change < 0.65:
        name = rng.choice([name.upper(), name.lower()])
    elif change < 0.8:
        name = rng.choice(
            [f"{first}  {last}", f" {name} ", f"{first} {last}".replace(" ", "  ", 1)]
        )
    # Which links remain: drawn, but never none of email domain, phone and company.
    email_kind = rng.choice(["private", "private", "company", "tag"])
    phone_kind = rng.choice(["format", "format", "same", "none"]) if original["phone"] else "none"
    company_kind = rng.choice(["same", "same", "case", "form", "none"])
    if email_kind == "private" and phone_kind == "none" and company_kind == "none":
        company_kind = "same"
    local = f"{_slug(first)}.{_slug(last)}"
    for attempt in range(100):
        if email_kind == "private":
            email = f"{local}{rng.randint(1, 999) if attempt else ''}@{rng.choice(FREE_MAIL)}"
        elif email_kind == "company":
            email = f"{_slug(first)[:1]}{_slug(last)}{attempt or ''}@{company['domain']}"
        else:
            email = original["email"].replace(
                "@", f"+{rng.choice(['crm', 'news', 'x'])}{attempt or ''}@"
            )
        if email not in taken:
            break
    taken.add(email)
    digits = re.sub(r"\D", "", original["phone"])[-10:]
    phone = {
        "format": _phone(rng, digits) if digits else "",
        "same": original["phone"],
        "none": "",
    }[phone_kind]
    company_name = {
        "same": company["name"],
        "case": company["name"].upper(),
        "form": _other_form(company, rng),
        "none": "",
    }[company_kind]
    return {
        **_plain(original),
        "name": name,
        "email": email,
        "phone": phone,
        "company": company_name,
    }


def _other_form(company: dict, rng: random.Random) -> str:
    form = company["form"]
    base = company["name"][: -len(form)].strip() if form else company["name"]
    return f"{base} {OTHER_FORMS.get(form, rng.choice(['Inc', 'Ltd']))}".strip()


def _plain(row: dict) -> dict:
    return {key: value for key, value in row.items() if not key.startswith("_")}


def _users() -> None:
    """An admin (who merges) and a rep (who owns): the demo seed would add its own
    customers, whose numbered names ("History Lead 422") are not this data set's."""
    from django.contrib.auth.models import Group

    from crm.roles import ADMIN_GROUP, REP_GROUP

    User = get_user_model()
    admin = User.objects.create_superuser("bench-admin", "admin@bench.example", None)
    admin.groups.add(Group.objects.get(name=ADMIN_GROUP))
    rep = User.objects.create_user("bench-rep", "rep@bench.example", None)
    rep.groups.add(Group.objects.get(name=REP_GROUP))


def _ensure_data() -> None:
    database.ensure_database()
    with connection.cursor() as cursor:
        cursor.execute(PLANTED_TABLE)
        cursor.execute("SELECT count(*) FROM bench_planted_pairs")
        planted = cursor.fetchone()[0]
    if Customer.objects.count() == CUSTOMERS and planted == int(CUSTOMERS * PLANTED_SHARE):
        return
    print(
        f"  {DATABASE}: generating {CUSTOMERS:,} customers, 2% planted duplicates (untimed)…",
        flush=True,
    )
    database.recreate_database()
    _users()
    rng = random.Random(SEED)
    first_names, last_names = _names()
    companies = []
    for _ in range(COMPANIES):
        owner_name, word, form = (
            rng.choice(last_names),
            rng.choice(COMPANY_WORDS),
            rng.choice(LEGAL_FORMS),
        )
        companies.append(
            {
                "name": f"{owner_name} {word} {form}".strip(),
                "form": form,
                "domain": f"{_slug(owner_name)}{_slug(word)}{rng.randint(1, 99)}.example",
            }
        )
    now = timezone.now()
    planted_count = int(CUSTOMERS * PLANTED_SHARE)
    originals, taken = [], set()
    while len(originals) < CUSTOMERS - planted_count:
        first, last = rng.choice(first_names), rng.choice(last_names)
        company = rng.randrange(COMPANIES)
        email = f"{_slug(first)}.{_slug(last)}@{companies[company]['domain']}"
        if email in taken or not _slug(first) or not _slug(last):
            continue
        taken.add(email)
        digits = f"{rng.randint(200, 989)}{rng.randint(200, 999)}{rng.randint(0, 9999):04d}"
        originals.append(
            {
                "_first": first,
                "_last": last,
                "_company": company,
                "name": f"{first} {last}",
                "email": email,
                "phone": _phone(rng, digits) if rng.random() > 0.15 else "",
                "company": companies[company]["name"],
                "created_at": now - timedelta(days=rng.randint(0, 900)),
                "updated_at": now,
            }
        )
    ids = []
    for start in range(0, len(originals), 50_000):
        ids += bulk_insert(Customer, [_plain(row) for row in originals[start : start + 50_000]])
    chosen = rng.sample(range(len(originals)), planted_count)
    duplicates = [
        _planted(originals[i], companies[originals[i]["_company"]], rng, taken) for i in chosen
    ]
    duplicate_ids = bulk_insert(Customer, duplicates)
    with connection.cursor() as cursor:
        cursor.execute(PLANTED_TABLE)
        cursor.execute("TRUNCATE bench_planted_pairs")
        cursor.executemany(
            "INSERT INTO bench_planted_pairs VALUES (%s, %s)",
            [(ids[i], dup) for i, dup in zip(chosen, duplicate_ids, strict=True)],
        )
    database.analyze()


def _scan() -> dict:
    DuplicatePair.objects.all().delete()
    DuplicateJob.objects.all().delete()
    job = DuplicateJob.objects.create(kind=DuplicateJob.Kind.SCAN)
    started = time.perf_counter()
    services.duplicate_scan_run(job_id=job.pk)
    seconds = time.perf_counter() - started
    job.refresh_from_db()
    if job.status != DuplicateJob.Status.DONE:
        raise RuntimeError(job.error)
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT count(*) FILTER (WHERE p.id IS NOT NULL), count(*),
                   (SELECT count(*) FROM customers_duplicatepair)
            FROM bench_planted_pairs t
            LEFT JOIN customers_duplicatepair p
              ON p.customer_a_id = least(t.original_id, t.duplicate_id)
             AND p.customer_b_id = greatest(t.original_id, t.duplicate_id)
            """
        )
        found, planted, pairs = cursor.fetchone()
    return {
        "seconds": round(seconds, 2),
        "recall": round(found / planted, 4),
        "precision": round(found / pairs, 4) if pairs else 0.0,
        "pairs": pairs,
        "planted": planted,
    }


def _merge_pair(admin, rep_id: int, *, scale: int) -> tuple[float, float, int]:
    """Merge a customer with `scale` x RELATED_ROWS rows into another and undo it: (merge
    seconds, undo seconds, rows moved); both customers are deleted afterwards."""
    stamp = f"{time.time_ns()}"
    survivor_id, other_id = bulk_insert(
        Customer,
        [
            {"name": "Merge Bench", "email": f"merge-{stamp}@bench.example", "owner_id": rep_id},
            {"name": "Merge  Bench", "email": f"merge-{stamp}@gmail.com", "owner_id": rep_id},
        ],
    )
    now = timezone.now()
    count = {key: max(1, int(value * scale)) for key, value in RELATED_ROWS.items()}
    bulk_insert(
        Sale,
        [
            {"title": f"Deal {i}", "customer_id": other_id, "assigned_to_id": rep_id}
            for i in range(count["sales"])
        ],
    )
    bulk_insert(
        Task,
        [
            {"title": f"Call {i}", "customer_id": other_id, "assigned_to_id": rep_id, "due_at": now}
            for i in range(count["tasks"])
        ],
    )
    bulk_insert(
        CustomerNote,
        [
            {"customer_id": other_id, "text": f"Note {i}", "created_at": now}
            for i in range(count["notes"])
        ],
    )
    bulk_insert(
        LeadActivity,
        [
            {"customer_id": other_id, "activity_type": "website_visit"}
            for _ in range(count["activities"])
        ],
    )
    bulk_insert(
        ScoreChange,
        [
            {"customer_id": other_id, "total_score": 40, "grade": "cold"}
            for _ in range(count["scores"])
        ],
    )
    started = time.perf_counter()
    merge = services.customers_merge(actor=admin, survivor_id=survivor_id, other_id=other_id)
    merge_seconds = time.perf_counter() - started
    started = time.perf_counter()
    services.customer_merge_undo(actor=admin, merge=merge)
    undo_seconds = time.perf_counter() - started
    Customer.objects.filter(pk__in=[survivor_id, other_id]).delete()
    CustomerMerge.objects.filter(pk=merge.pk).delete()
    return merge_seconds, undo_seconds, merge.moved_count


def _merge() -> dict:
    admin = get_user_model().objects.get(username="bench-admin")
    rep_id = get_user_model().objects.get(username="bench-rep").pk
    # A first, small merge loads what a running web process has loaded already (the task
    # modules its reactions queue through, the broker connection).
    _merge_pair(admin, rep_id, scale=0.01)
    merge_seconds, undo_seconds, moved = _merge_pair(admin, rep_id, scale=1)
    return {
        "merge_seconds": round(merge_seconds, 3),
        "undo_seconds": round(undo_seconds, 3),
        "rows_moved": moved,
    }


@scenario(
    "duplicates_200k",
    targets={"seconds_max": 60, "recall_min": 0.9, "precision_min": 0.9, "merge_seconds_max": 1},
    order=60,
)
def duplicates_200k() -> dict:
    """Scan 200k customers (2% planted duplicates): recall, precision; merge 1,000 rows."""
    with database.using_database(DATABASE):
        _ensure_data()
        row = {"n": CUSTOMERS, **_scan(), **_merge()}
    return row
