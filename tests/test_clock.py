"""The test clock (tests/clock.py): CRM_TEST_CLOCK read in TIME_ZONE, and the moment handed
to a process the test starts, which must not lag behind the test by its start-up time."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import time_machine
from django.utils import timezone

from tests import clock


def test_no_variable_no_pinned_clock(monkeypatch):
    monkeypatch.delenv(clock.ENV, raising=False)
    assert clock.pinned_moment() is None
    assert clock.environ() == {}


def test_a_naive_moment_is_read_in_the_time_zone(monkeypatch, settings):
    settings.TIME_ZONE = "Europe/Berlin"
    monkeypatch.setenv(clock.ENV, "2027-01-01T00:05:00")
    monkeypatch.delenv(clock.SET_AT_ENV, raising=False)
    assert clock.pinned_moment() == datetime(2027, 1, 1, 0, 5, tzinfo=ZoneInfo("Europe/Berlin"))
    monkeypatch.setenv(clock.ENV, "2027-01-01T00:05:00+00:00")
    assert clock.pinned_moment() == datetime(2027, 1, 1, 0, 5, tzinfo=UTC)


def test_a_started_process_gets_the_moment_plus_the_real_time_since(monkeypatch):
    moment = datetime(2026, 12, 31, 23, 55, tzinfo=UTC)
    monkeypatch.setenv(clock.ENV, moment.isoformat())
    with time_machine.travel(moment, tick=False):
        handed = clock.environ()
    assert handed[clock.ENV] == moment.isoformat()

    # The process reads it 2.5 s (real time) later: its clock starts 2.5 s after the moment.
    monkeypatch.setenv(clock.ENV, handed[clock.ENV])
    monkeypatch.setenv(clock.SET_AT_ENV, repr(float(handed[clock.SET_AT_ENV]) - 2.5))
    started = clock.pinned_moment()
    assert timedelta(seconds=2.5) <= started - moment < timedelta(seconds=10)


def test_travel_ticks_from_the_moment_at_once():
    moment = datetime(2027, 2, 28, 23, 55, tzinfo=UTC)
    traveller = clock.travel(moment)
    try:
        now = timezone.now()
        assert moment <= now < moment + timedelta(seconds=5)
    finally:
        traveller.stop()


def test_processes_run_through_the_clock_only_when_it_is_pinned(monkeypatch):
    monkeypatch.delenv(clock.ENV, raising=False)
    assert clock.command("celery")[-1].endswith("/celery")
    monkeypatch.setenv(clock.ENV, "2027-03-01T00:05:00+00:00")
    assert clock.command("celery")[1:] == ["-m", "tests.clock", "celery"]
    assert clock.command("daphne")[1:] == ["-m", "tests.clock", "daphne"]
    assert set(clock.ENTRY_POINTS) == {"celery", "daphne"}
