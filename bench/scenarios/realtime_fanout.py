"""500 websocket clients on one server process, 200 board moves: who receives what, how fast.

One uvicorn process serves crm.asgi (the production server's worker, alone) with the Redis
channel layer. Five teams of a manager and nine reps: each of the 50 people has ten open
sockets (a board in ten tabs, or ten people's worth of sockets), 500 in all, 450 of reps and
50 of managers. Each rep has four deals on their own customers; one customer in ten is also
shared with a rep of the next team. 200 of these deals are then moved, one every 40 ms, each
by its rep through sales.services.sale_change_stage in this process (as a web or worker
process would), which writes the event and pushes it through Redis after commit.

Measured, for each move and each socket: a delivery's latency is from the start of the move
(before its transaction) to the socket's receiving the event. `lost` counts sockets whose
user may see the deal (crm.permissions.visible_sales, the rule read forwards; the server
decides with the rule read backwards) and which did not receive it; `wrong` counts events
delivered to a socket whose user may not see the deal; `duplicates` a socket receiving an
event twice.
"""

import asyncio
import json
import os
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import close_old_connections
from django.utils import timezone

from bench import database
from bench.measure import logged_in_client, percentile
from bench.registry import scenario
from crm.models import Team, TeamMembership
from crm.permissions import visible_sales
from crm.roles import MANAGER_GROUP, REP_GROUP
from customers.models import Customer
from sales.models import Sale
from sales.services import sale_change_stage

TEAMS = 5
REPS_PER_TEAM = 9
SOCKETS_PER_USER = 10
DEALS_PER_REP = 4
MOVES = 200
MOVE_GAP_SECONDS = 0.04
SHARED_EVERY = 10  # one customer in ten is shared with a rep of the next team
PREFIX = "rtbench"
ROOT = Path(__file__).resolve().parents[2]
START_SECONDS = 60
DRAIN_SECONDS = 15  # after the last move, how long missing deliveries are waited for

TARGETS = {"p95_ms_max": 250, "lost_max": 0, "wrong_max": 0}


def _people() -> tuple[list, list]:
    """The bench's teams (created once): managers and reps, as lists of users."""
    User = get_user_model()
    reps_group, managers_group = (Group.objects.get(name=n) for n in (REP_GROUP, MANAGER_GROUP))
    managers, reps = [], []
    for number in range(TEAMS):
        team, _ = Team.objects.get_or_create(name=f"{PREFIX} team {number}")
        manager, _ = User.objects.get_or_create(
            username=f"{PREFIX}-manager-{number}", defaults={"email": f"m{number}@rt.example"}
        )
        manager.groups.add(managers_group)
        team.managers.add(manager)
        managers.append(manager)
        for index in range(REPS_PER_TEAM):
            rep, _ = User.objects.get_or_create(
                username=f"{PREFIX}-rep-{number}-{index}",
                defaults={"email": f"r{number}-{index}@rt.example"},
            )
            rep.groups.add(reps_group)
            TeamMembership.objects.get_or_create(user=rep, defaults={"team": team})
            reps.append(rep)
    return managers, reps


def _deals(reps: list) -> list[Sale]:
    """Fresh open deals (the last run's removed): DEALS_PER_REP per rep on their customers."""
    Customer.objects.filter(name__startswith=f"{PREFIX} customer").delete()
    sales = []
    for number, rep in enumerate(reps):
        for index in range(DEALS_PER_REP):
            customer = Customer.objects.create(
                name=f"{PREFIX} customer {number}-{index}",
                email=f"{PREFIX}-{number}-{index}@customers.example",
                owner=rep,
            )
            if (number * DEALS_PER_REP + index) % SHARED_EVERY == 0:
                customer.shared_with.add(reps[(number + REPS_PER_TEAM) % len(reps)])
            sales.append(
                Sale.objects.create(
                    title=f"{PREFIX} deal {number}-{index}",
                    customer=customer,
                    assigned_to=rep,
                    amount=Decimal("1000"),
                    status=Sale.Status.NEW,
                    stage_entered_at=timezone.now(),
                )
            )
    return sales


def _server(port: int, log: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "crm.settings",
        "DEBUG": "false",
        "SECRET_KEY": settings.SECRET_KEY,  # the sessions signed here must be read there
        "SECURE_COOKIES": "false",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "LOG_LEVEL": "WARNING",
    }
    with log.open("wb") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "crm.asgi:application", "--host", "127.0.0.1",
             "--port", str(port), "--ws", "websockets-sansio", "--log-level", "warning",
             "--no-access-log"],
            cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT,
        )  # fmt: skip


def _wait_until_serving(process: subprocess.Popen, url: str, log: Path) -> None:
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + START_SECONDS
    while True:
        try:
            urllib.request.urlopen(f"{url}/healthz", timeout=2)
            return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError as error:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"uvicorn did not start:\n{log.read_text()}") from error
            time.sleep(0.2)


async def _socket(url, cookie, index, received, opened):
    import websockets

    headers = {"Cookie": cookie, "Origin": "http://127.0.0.1"}
    async with websockets.connect(url, additional_headers=headers, max_queue=None) as ws:
        hello = json.loads(await ws.recv())
        if hello.get("type") != "hello":
            raise RuntimeError(f"socket {index}: {hello}")
        opened.append(index)
        async for raw in ws:
            now = time.perf_counter()
            message = json.loads(raw)
            if message.get("type") == "event" and message.get("topic") == "deal":
                received.append((index, message["deal"], message["id"], now))


def _move_all(deals: list[Sale], started: dict[int, float]) -> None:
    """The 200 moves, in a thread of its own (the sockets' event loop runs in the main one)."""
    try:
        for sale in deals:
            started[sale.pk] = time.perf_counter()
            sale_change_stage(actor=sale.assigned_to, sale=sale, to_status=Sale.Status.CONTACTED)
            time.sleep(MOVE_GAP_SECONDS)
    finally:
        close_old_connections()


async def _drive(url, cookies, deals, expected_total, received, started):
    opened: list[int] = []
    tasks = []
    for start in range(0, len(cookies), 50):  # open in waves, as pages load
        for index in range(start, min(start + 50, len(cookies))):
            tasks.append(asyncio.create_task(_socket(url, cookies[index], index, received, opened)))
        while len(opened) < min(start + 50, len(cookies)):
            failed = [task for task in tasks if task.done() and task.exception()]
            if failed:
                raise failed[0].exception()
            await asyncio.sleep(0.02)
    mover = asyncio.get_running_loop().run_in_executor(None, _move_all, deals, started)
    began = time.perf_counter()
    await mover
    moves_seconds = time.perf_counter() - began
    deadline = time.perf_counter() + DRAIN_SECONDS
    while len(received) < expected_total and time.perf_counter() < deadline:
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)  # anything arriving beyond what is expected is wrong or twice
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return len(opened), moves_seconds


@scenario("realtime_fanout", targets=TARGETS, order=90)
def realtime_fanout() -> dict:
    """500 websocket clients on one server process, 200 board moves: p95 delivery, lost, wrong."""
    database.ensure_database()
    managers, reps = _people()
    sales = _deals(reps)
    deals = sales[:MOVES]
    users = [*managers, *reps]
    # Who may see which of the moved deals, by the permission rule itself.
    ids = [sale.pk for sale in deals]
    visible = {
        user.pk: set(visible_sales(user).filter(pk__in=ids).values_list("pk", flat=True))
        for user in users
    }
    cookie_name = settings.SESSION_COOKIE_NAME
    sockets_of = []  # the user of each socket
    cookies = []
    for user in users:
        session = logged_in_client(user).cookies[cookie_name].value
        for _ in range(SOCKETS_PER_USER):
            sockets_of.append(user.pk)
            cookies.append(f"{cookie_name}={session}")
    expected = {
        (index, deal) for index, user_id in enumerate(sockets_of) for deal in visible[user_id]
    }
    port = 8700 + os.getpid() % 200
    log = Path(os.environ.get("TMPDIR", "/tmp")) / f"realtime_fanout_{os.getpid()}.log"
    process = _server(port, log)
    received: list[tuple[int, int, int, float]] = []
    started: dict[int, float] = {}
    try:
        _wait_until_serving(process, f"http://127.0.0.1:{port}", log)
        opened, moves_seconds = asyncio.run(
            _drive(f"ws://127.0.0.1:{port}/ws/", cookies, deals, len(expected), received, started)
        )
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
    seen: set[tuple[int, int]] = set()
    latencies, wrong, duplicates = [], 0, 0
    for index, deal, _event_id, at in received:
        if (index, deal) in seen:
            duplicates += 1
            continue
        seen.add((index, deal))
        if (index, deal) not in expected:
            wrong += 1
            continue
        latencies.append((at - started[deal]) * 1000)
    lost = len(expected - seen)
    managers_sockets = len(managers) * SOCKETS_PER_USER
    return {
        "n": MOVES,
        "seconds": round(moves_seconds, 3),
        "clients": opened,
        "rep_clients": opened - managers_sockets,
        "manager_clients": managers_sockets,
        "expected_deliveries": len(expected),
        "delivered": len(seen),
        "p50_ms": round(percentile(latencies, 50), 1) if latencies else None,
        "p95_ms": round(percentile(latencies, 95), 1) if latencies else None,
        "max_ms": round(max(latencies), 1) if latencies else None,
        "lost": lost,
        "wrong": wrong,
        "duplicates": duplicates,
    }
