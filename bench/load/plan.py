"""What each simulated user of the load test works on, read from the database before the run
and handed to the locustfile as JSON (locust runs in its own process, without Django).

Every simulated user signs in as one of the demo accounts (demo.services.TEAMS: six reps and
two managers, each with its own session) and gets ids it may use, so pages answer 200, not
404: customers and deals it sees, deals it may change for the activity and task forms, and
deals of its own to move on the board. The deals moved by one simulated user are moved by no
other and get no activity from the load test, so no move meets "moved by someone else
meanwhile" (409): the pipeline automation only moves a deal after an activity or a proposal
since it entered its stage.

Only ids and a few columns are read (values_list), so the same code plans a run against an
older schema of the application.
"""

import random

from django.contrib.auth import get_user_model

from crm.permissions.customers import visible_customers
from crm.permissions.sales import editable_sales, visible_sales
from customers.models import Customer
from demo.services import DEMO_PASSWORD, TEAMS
from sales.models import Sale

CUSTOMERS_PER_USER = 40
DEALS_PER_USER = 40
WRITE_DEALS_PER_USER = 6  # activities and tasks
MOVE_DEALS_PER_USER = 6  # board moves
SEARCHES_PER_USER = 8
# Drawn from this many of the user's most recently created records (random among them):
# a sample of the user's book without ordering tens of thousands of rows at random.
SAMPLE_POOL = 3000


def _accounts() -> tuple[list, list]:
    names_reps = [rep[0] for team in TEAMS.values() for rep in team["reps"]]
    names_managers = [team["manager"][0] for team in TEAMS.values()]
    users = get_user_model().objects.in_bulk(names_reps + names_managers, field_name="username")
    missing = sorted(set(names_reps + names_managers) - users.keys())
    if missing:
        raise RuntimeError(f"The demo accounts {missing} are missing: run seed_demo first.")
    return [users[name] for name in names_reps], [users[name] for name in names_managers]


def _sample(queryset, count: int, rng: random.Random, exclude: set[int] = frozenset()) -> list:
    pool = [row for row in queryset.order_by("-pk")[:SAMPLE_POOL] if _key(row) not in exclude]
    return rng.sample(pool, min(count, len(pool)))


def _key(row) -> int:
    return row[0] if isinstance(row, tuple) else row


def _choices(field: str) -> list[str]:
    return [value for value, _ in Customer._meta.get_field(field).choices if value]


def _search_terms(names: list[str], companies: list[str], rng: random.Random) -> list[str]:
    """What a user types in the search box: a surname or a company word of their customers."""
    words = [name.split()[-1] for name in names if name.split()]
    words += [company.split()[0] for company in companies if company.split()]
    words = sorted({word.strip(",.") for word in words if len(word) >= 3})
    return rng.sample(words, min(SEARCHES_PER_USER, len(words)))


def _user_plan(user, role: str, rng: random.Random, moved: set[int], written: set[int]) -> dict:
    customers = _sample(
        visible_customers(user).values_list("pk", "name", "company"), CUSTOMERS_PER_USER, rng
    )
    deals = _sample(visible_sales(user).values_list("pk", flat=True), DEALS_PER_USER, rng)
    editable_open = editable_sales(user).filter(status__in=Sale.OPEN_STATUSES)
    # Deals this user moves are moved by nobody else and get no activity from the test.
    move = _sample(
        editable_open.values_list("pk", "status"), MOVE_DEALS_PER_USER, rng, moved | written
    )
    moved.update(pk for pk, _ in move)
    write = _sample(
        editable_open.values_list("pk", flat=True), WRITE_DEALS_PER_USER, rng, moved | written
    )
    written.update(write)
    if not (customers and deals and move and write):
        raise RuntimeError(f"{user.username} has too few customers or deals for the load test.")
    return {
        "username": user.username,
        "password": DEMO_PASSWORD,
        "role": role,
        "user_id": user.pk,
        "customers": [pk for pk, _, _ in customers],
        "deals": deals,
        "write_deals": write,
        "move_deals": [{"id": pk, "status": status} for pk, status in move],
        "searches": _search_terms(
            [name for _, name, _ in customers], [company for _, _, company in customers], rng
        ),
    }


def build_plan(*, users: int, managers: int, seed: int = 50) -> dict:
    """`users` simulated users, `managers` of them signed in as the demo managers and the rest
    as the demo reps, spread evenly over the accounts (so each account has several sessions)
    and listed round-robin: logging in one after another, no account has many sign-ins in
    flight at once (the login lockout counts attempts in flight)."""
    rng = random.Random(seed)
    reps, bosses = _accounts()
    moved: set[int] = set()
    written: set[int] = set()
    plan_users = []
    for index in range(users - managers):
        plan_users.append(_user_plan(reps[index % len(reps)], "rep", rng, moved, written))
    for index in range(managers):
        plan_users.append(_user_plan(bosses[index % len(bosses)], "manager", rng, moved, written))
    return {
        "users": plan_users,
        "open_statuses": list(Sale.OPEN_STATUSES),
        "filters": {
            field: _choices(field)
            for field in ("lifecycle_stage", "engagement_level", "region", "industry")
        },
        "deal_statuses": ["open", *Sale.OPEN_STATUSES],
    }
