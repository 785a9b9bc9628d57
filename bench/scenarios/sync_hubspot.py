"""CRM sync with HubSpot (issue 21), against the fake HubSpot server (tests/fakes) driven
through the official hubspot-api-client over real HTTP, on a copy of the bench database.

sync_hubspot_100k: the first import of 100,000 contacts, 20,000 companies and 50,000 deals,
the fake limiting requests as a Professional account's private app does (190 per 10 s).
sync_incremental_1k: after a first import of 10,000 contacts and 5,000 deals, 1,000 records
changed on each side (700 contacts and 300 deals), then one incremental run; `api_calls`
against `api_calls_min`, what the batch sizes allow (searches of 200, updates of 100,
association reads of 1,000, plus the owners page and one archived page per object).
"""

import math
import random
import time
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connection, connections

from bench import database
from bench.registry import scenario

SEED = 20_261_205
STAGES = ["appointmentscheduled", "qualifiedtobuy", "presentationscheduled",
          "decisionmakerboughtin", "contractsent", "closedwon", "closedlost"]  # fmt: skip
TOKEN = "pat-bench-token"


def _fill(fake, *, contacts: int, companies: int, deals: int, at: datetime) -> list[int]:
    rng = random.Random(SEED)
    owners = [fake.add_owner(f"owner{i}@bench-hubspot.example", f"Owner{i}", "Bench")
              for i in range(20)]  # fmt: skip
    company_ids = fake.put_many(
        "companies",
        [{"name": f"Company {i}", "domain": f"c{i}.example"} for i in range(companies)],
        at=at,
    )
    contact_ids = fake.put_many(
        "contacts",
        [
            {"email": f"contact{i}@bench-hubspot.example", "firstname": f"First{i}",
             "lastname": f"Last{i}", "phone": f"+1 555 {i:07d}",
             "jobtitle": rng.choice(["CEO", "CTO", "Buyer", ""]),
             "lifecyclestage": rng.choice(["lead", "opportunity", "customer"]),
             "hubspot_owner_id": str(rng.choice(owners)),
             "_associations": {"companies": [company_ids[i % companies]]}}
            for i in range(contacts)
        ],
        at=at,
    )  # fmt: skip
    fake.put_many(
        "deals",
        [
            {"dealname": f"Deal {i}", "amount": f"{rng.randint(500, 90_000)}.00",
             "dealstage": rng.choice(STAGES), "closedate": "2027-06-30T00:00:00.000Z",
             "_associations": {"contacts": [contact_ids[(i * 2) % contacts]]}}
            for i in range(deals)
        ],
        at=at,
    )  # fmt: skip
    return contact_ids


class _CopyOfBench:
    """The scenario's writes go to a copy of the bench database, dropped afterwards."""

    def __init__(self, suffix: str):
        self.suffix = suffix

    def __enter__(self):
        database.ensure_database()
        self.copy = database.clone_database(self.suffix)
        self.original = connection.settings_dict["NAME"]
        connections.close_all()
        connection.settings_dict["NAME"] = self.copy
        return self

    def __exit__(self, *exc):
        connections.close_all()
        connection.settings_dict["NAME"] = self.original
        database.drop_database(self.copy)


def _connect(fake):
    from django.contrib.auth import get_user_model

    from integrations.models import Connection
    from integrations.services.connections import connection_create

    settings.HUBSPOT_API_URL = fake.url
    settings.SYNC_SETTLE_SECONDS = 0
    users = get_user_model().objects
    admin = users.filter(is_superuser=True).first() or users.create_superuser(
        "bench-sync-admin", "bench-sync-admin@example.com", None
    )
    return connection_create(
        actor=admin,
        data={"name": f"HubSpot bench {time.time_ns()}", "provider": Connection.Provider.HUBSPOT,
              "auth_flow": Connection.AuthFlow.TOKEN},
        secrets={"access_token": TOKEN},
    )  # fmt: skip


def _run(hubspot_connection):
    from integrations.services.runs import sync_run_execute, sync_start

    hubspot_connection.refresh_from_db()
    run = sync_start(connection=hubspot_connection)
    started = time.perf_counter()
    run = sync_run_execute(run_id=run.pk)
    seconds = time.perf_counter() - started
    if run.status != "succeeded":
        raise AssertionError(f"sync run failed: {run.error}")
    return run, seconds


@scenario(
    "sync_hubspot_100k",
    targets={"seconds_max": 180},
    order=90,
)
def sync_hubspot_100k() -> dict:
    """First import from (fake) HubSpot: 100k contacts, 20k companies, 50k deals."""
    from customers.models import Customer
    from sales.models import Sale
    from tests.fakes.hubspot_server import FakeHubSpot

    with FakeHubSpot(access_token=TOKEN, rate_limit=190) as fake, _CopyOfBench("sync100k"):
        _fill(fake, contacts=100_000, companies=20_000, deals=50_000,
              at=datetime.now(UTC) - timedelta(days=1))  # fmt: skip
        before = (Customer.objects.count(), Sale.objects.count())
        run, seconds = _run(_connect(fake))
        imported = (Customer.objects.count() - before[0], Sale.objects.count() - before[1])
        return {
            "n": 170_000,
            "seconds": round(seconds, 1),
            "records_per_second": round(170_000 / seconds),
            "customers_imported": imported[0],
            "deals_imported": imported[1],
            "api_calls": run.api_calls,
            "refused_429": fake.refused_429,
            "rate_limit_per_10s": fake.rate_limit,
        }


@scenario(
    "sync_incremental_1k",
    targets={"seconds_max": 15, "api_calls_max": 30},
    order=91,
)
def sync_incremental_1k() -> dict:
    """1,000 changes on each side (700 contacts, 300 deals), one incremental run."""
    from customers.models import Customer
    from customers.services import customers_sync_write
    from integrations.models import SyncLink
    from sales.models import Sale
    from sales.services.sync import sales_sync_write
    from tests.fakes.hubspot_server import FakeHubSpot

    with FakeHubSpot(access_token=TOKEN, rate_limit=190) as fake, _CopyOfBench("syncinc"):
        contact_ids = _fill(fake, contacts=10_000, companies=2_000, deals=5_000,
                            at=datetime.now(UTC) - timedelta(days=1))  # fmt: skip
        hubspot = _connect(fake)
        _run(hubspot)  # the first import, untimed
        rng = random.Random(SEED)
        remote_contacts = rng.sample(contact_ids, 700)
        for remote_id in remote_contacts:
            fake.touch("contacts", remote_id, {"jobtitle": f"Remote {remote_id}"})
        deal_ids = sorted(r.id for r in fake.live("deals"))
        remote_deals = rng.sample(deal_ids, 300)
        for remote_id in remote_deals:
            fake.touch("deals", remote_id, {"amount": "123.00"})
        # Local changes on other records, through the same bulk services a UI bulk edit uses.
        links = SyncLink.objects.filter(connection=hubspot)
        customers = list(
            links.filter(object_type="contacts")
            .exclude(remote_id__in=[str(i) for i in remote_contacts])
            .values_list("local_id", flat=True)[:700]
        )  # fmt: skip
        customers_sync_write(actor=hubspot.run_as, creates=[],
                             updates=[(pk, {"job_title": "Local"}) for pk in customers],
                             via="bench")  # fmt: skip
        sales = list(
            links.filter(object_type="deals")
            .exclude(remote_id__in=[str(i) for i in remote_deals])
            .values_list("local_id", flat=True)[:300]
        )  # fmt: skip
        sales_sync_write(actor=hubspot.run_as, creates=[],
                         updates=[(pk, {"title": f"Local deal {pk}"}) for pk in sales],
                         via="bench")  # fmt: skip
        calls_before = len(fake.requests)
        run, seconds = _run(hubspot)
        pulled = Customer.objects.filter(job_title__startswith="Remote").count()
        pushed = sum(1 for r in fake.live("contacts") if r.properties.get("jobtitle") == "Local")
        pushed_deals = sum(
            1 for r in fake.live("deals") if r.properties.get("dealname", "").startswith("Local")
        )
        minimum = (
            math.ceil(700 / 200) + math.ceil(300 / 200) + math.ceil(300 / 1000)  # pulls
            + math.ceil(700 / 100) + math.ceil(300 / 100)  # pushes
            + 1 + 2  # owners, one archived page per object
        )  # fmt: skip
        return {
            "n": 2_000,
            "seconds": round(seconds, 2),
            "api_calls": len(fake.requests) - calls_before,
            "api_calls_min": minimum,
            "pulled_contacts": pulled,
            "pulled_deals": Sale.objects.filter(amount=123).count(),
            "pushed_contacts": pushed,
            "pushed_deals": pushed_deals,
        }
