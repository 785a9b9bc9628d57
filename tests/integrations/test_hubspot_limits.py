"""HubSpot's limits: the 10,000-result search cap with many records on one timestamp, 429
and 5xx retried with backoff, and the rolling 10-second window kept."""

from datetime import UTC, datetime, timedelta

import pytest

from customers.models import Customer
from integrations.models import SyncRun
from integrations.providers.hubspot import HubSpotProvider
from integrations.services.runs import sync_run_execute, sync_start
from tests.integrations.conftest import HUBSPOT_TOKEN

pytestmark = pytest.mark.django_db


def provider() -> HubSpotProvider:
    from integrations.mapping import DEFAULT_FIELD_MAPS, DEFAULT_STAGE_MAPS

    return HubSpotProvider(
        secrets={"access_token": HUBSPOT_TOKEN},
        field_map=DEFAULT_FIELD_MAPS["hubspot"],
        stage_map=DEFAULT_STAGE_MAPS["hubspot"],
    )


def test_a_window_past_the_search_cap_is_split_and_every_record_comes_once(
    fake_hubspot, monkeypatch
):
    monkeypatch.setattr("integrations.clients.hubspot.SEARCHES_PER_SECOND", 200)
    fake_hubspot.search_per_second = 200
    moment = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    # 12,345 contacts changed in the same millisecond: paging by time alone would loop, and
    # paging past the 10,000th result answers 400.
    fake_hubspot.put_many(
        "contacts", [{"email": f"c{i}@same.example"} for i in range(12_345)], at=moment
    )
    fake_hubspot.put("contacts", {"email": "late@x.example"}, at=moment + timedelta(hours=1))
    hubspot, seen, cursor, pages = provider(), [], None, 0
    start, end = int(moment.timestamp() * 1000) - 1, int(moment.timestamp() * 1000) + 1
    while True:
        page = hubspot.changed_page("contacts", start_ms=start, end_ms=end, cursor=cursor)
        seen += [record.id for record in page.records]
        pages += 1
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert len(seen) == len(set(seen)) == 12_345
    assert pages == 62  # 12,345 / 200, rounded up: the split costs no extra page
    assert fake_hubspot.calls("/search") == 62


def test_429_and_5xx_are_retried_with_backoff(hubspot_connection, fake_hubspot, settings):
    settings.SYNC_RETRY_BASE_SECONDS = 0.1
    fake_hubspot.put("contacts", {"email": "a@b.example", "firstname": "A"})
    fake_hubspot.fail_next(429, count=2, path="/crm/v3/objects/contacts")
    fake_hubspot.fail_next(503, count=1, path="/crm/v3/objects/deals")
    run = sync_run_execute(run_id=sync_start(connection=hubspot_connection).pk)
    assert run.status == SyncRun.Status.SUCCEEDED, run.error
    assert Customer.objects.filter(email="a@b.example").count() == 1
    contact_pages = [t for m, p, t in fake_hubspot.requests if p == "/crm/v3/objects/contacts"]
    assert len(contact_pages) == 3
    # HubSpot's 429 names a 10-second window: wait a tenth of it, then twice the base more.
    assert contact_pages[1] - contact_pages[0] >= 1.0
    assert contact_pages[2] - contact_pages[1] >= 1.0
    assert run.api_calls == len(fake_hubspot.requests)


def test_a_4xx_fails_the_run_with_hubspots_message(hubspot_connection, fake_hubspot):
    fake_hubspot.access_token = "another-token"
    try:
        run = sync_run_execute(run_id=sync_start(connection=hubspot_connection).pk)
    finally:
        fake_hubspot.access_token = HUBSPOT_TOKEN
    assert run.status == SyncRun.Status.FAILED
    assert "Authentication credentials not found" in run.error
    assert HUBSPOT_TOKEN not in run.error


def test_the_rate_limiter_stays_under_the_rolling_window(hubspot_connection, fake_hubspot):
    fake_hubspot.rate_limit = 8  # per 10 s; the client learns it from the first answer
    fake_hubspot.put_many(
        "contacts", [{"email": f"w{i}@window.example"} for i in range(850)], at=datetime.now(UTC)
    )
    run = sync_run_execute(run_id=sync_start(connection=hubspot_connection).pk)
    assert run.status == SyncRun.Status.SUCCEEDED, run.error
    assert Customer.objects.count() == 850
    assert fake_hubspot.refused_429 == 0
    windowed = [t for _, p, t in fake_hubspot.requests if not p.endswith("/search")]
    assert len(windowed) > 8
    busiest = max(sum(1 for u in windowed if t <= u < t + 10) for t in windowed)
    assert busiest <= 8


def test_a_worker_whose_run_was_taken_over_writes_nothing_more(
    hubspot_connection, fake_hubspot, monkeypatch
):
    from integrations.providers.hubspot import HubSpotProvider

    monkeypatch.setattr("integrations.services.engine.FIRST_IMPORT_PAGES_PER_STEP", 1)
    fake_hubspot.put_many(
        "contacts", [{"email": f"t{i}@over.example"} for i in range(250)], at=datetime.now(UTC)
    )
    run = sync_start(connection=hubspot_connection)
    first_page, pages = HubSpotProvider.first_page, []

    def taken_over_after_one_page(self, remote_type, cursor):
        if remote_type == "contacts":
            pages.append(cursor)
            if len(pages) == 2:  # another worker claims the run meanwhile
                SyncRun.objects.filter(pk=run.pk).update(lease_token="another-worker")
        return first_page(self, remote_type, cursor)

    monkeypatch.setattr(HubSpotProvider, "first_page", taken_over_after_one_page)
    assert sync_run_execute(run_id=run.pk) is None
    assert Customer.objects.count() == 100  # the second page was rolled back
    run.refresh_from_db()
    # Left to its new holder: not failed, not finished, its position at the first page.
    assert run.status == SyncRun.Status.RUNNING
    assert run.position["phase"] == "first:contacts" and run.position["cursor"] == pages[1]
