"""The test clock: `CRM_TEST_CLOCK=2027-01-01T00:05:00 pytest` runs the suite at that moment.

A naive moment is read in the configured TIME_ZONE (UTC by default). tests/conftest.py starts
the travel in `pytest_configure` (so every xdist worker and the live server's threads travel)
and takes every test back to the moment when it starts, the clock ticking on from there
(tick=True). The Celery processes a test starts travel too: they are started through this
module (`python -m tests.clock celery ...`) with the test's current moment in the variable,
so a worker, beat and the test agree on the time.
"""

import os
import sys
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import time_machine
from time_machine import escape_hatch

ENV = "CRM_TEST_CLOCK"
# For a process started by a test: the real Unix time at which the test's clock read
# CRM_TEST_CLOCK, so that the process, however long it takes to start, adds the real time
# passed since (else its clock would lag behind the test's by its start-up time).
SET_AT_ENV = "CRM_TEST_CLOCK_SET_AT"


def _real_time() -> float:
    return escape_hatch.time.time() if escape_hatch.is_travelling() else time.time()


def pinned_moment() -> datetime | None:
    """The moment CRM_TEST_CLOCK names (aware), or None when the clock is not pinned."""
    value = os.environ.get(ENV, "").strip()
    if not value:
        return None
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        from django.conf import settings

        moment = moment.replace(tzinfo=ZoneInfo(settings.TIME_ZONE))
    set_at = os.environ.get(SET_AT_ENV)
    if set_at:
        moment += timedelta(seconds=_real_time() - float(set_at))
    return moment


def travel(moment: datetime) -> time_machine.travel:
    """Travel to `moment` now, the clock ticking on from there; stop() comes back. (The
    clock is read at once: time-machine starts the ticking at the first reading.)"""
    traveller = time_machine.travel(moment, tick=True)
    traveller.start()
    time.time()
    return traveller


def command(program: str) -> list[str]:
    """The command that runs `program` (an executable beside this Python, e.g. celery) at
    the test's moment when the clock is pinned, as is otherwise."""
    if pinned_moment() is None:
        return [os.path.join(os.path.dirname(sys.executable), program)]
    return [sys.executable, "-m", "tests.clock", program]


def environ() -> dict[str, str]:
    """The variables for a process started now, so that it travels to this process's time."""
    if pinned_moment() is None:
        return {}
    from django.utils import timezone

    return {ENV: timezone.now().isoformat(), SET_AT_ENV: repr(_real_time())}


def _main() -> None:
    """`python -m tests.clock celery -A crm worker ...` (or `daphne ...`): travel, then run
    the program's entry point in this process (celery's pool children are forked and keep the
    travel)."""
    program, *arguments = sys.argv[1:]
    if program not in ENTRY_POINTS:
        raise SystemExit(f"tests.clock runs {', '.join(ENTRY_POINTS)} only, not {program!r}")
    moment = pinned_moment()
    if moment is not None:
        travel(moment)
    sys.argv = [program, *arguments]
    ENTRY_POINTS[program]()


def _celery() -> None:
    from celery.__main__ import main

    main()


def _daphne() -> None:
    from daphne.cli import CommandLineInterface

    CommandLineInterface.entrypoint()


# A server in another process must share the test's clock: channels_redis expires a group's
# members by the sender's clock, so a test ahead of the server would drop its sockets.
ENTRY_POINTS = {"celery": _celery, "daphne": _daphne}


if __name__ == "__main__":
    _main()
