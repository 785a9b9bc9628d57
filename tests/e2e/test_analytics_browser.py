"""The executive dashboard in Chromium: Chart.js draws every chart, a filter redraws them in
place (htmx), a chart downloads as PNG, and filters with no data show notes, not blank
axes."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from analytics.selectors.periods import month_start
from tests.factories import CustomerFactory, SaleFactory

pytestmark = pytest.mark.browser

CHARTS = ["revenue", "stages", "funnel", "trend", "reps"]


def _deals(rep):
    """Three won deals, each created and won within one of the previous months (so that
    month has a velocity whatever today's date: built from the month boundaries), two of
    them closed in the default 90-day period, and an open deal."""
    customer = CustomerFactory(owner=rep)
    now = timezone.now()
    for months_back, amount in ((1, "1200"), (2, "800"), (5, "500")):
        start = month_start(now, months_back)
        SaleFactory(customer=customer, assigned_to=rep, status="WON", amount=Decimal(amount),
                    created_at=start + timedelta(days=2),
                    closed_at=start + timedelta(days=12))  # fmt: skip
    SaleFactory(customer=customer, assigned_to=rep, status="PROPOSAL", amount=Decimal("3000"))


def _expect_drawn(page, names=CHARTS):
    """Every chart drawn by Chart.js (analytics.js marks a canvas it is done with)."""
    for name in names:
        canvas = page.locator(f"canvas[data-chart={name}]")
        expect(canvas).to_have_attribute("data-ready", "drawn")
        expect(canvas).to_be_visible()
        assert canvas.bounding_box()["width"] > 100, name


def test_charts_draw_and_a_filter_redraws_them_in_place(page, login, manager, rep, teams):
    _deals(rep)
    login(manager)
    page.goto("/analytics/")
    _expect_drawn(page)
    page.evaluate("window.__e2eSamePage = true")
    page.select_option("select[name=period]", "365")
    expect(page.get_by_text("deals created in the last 365 days")).to_be_visible()
    _expect_drawn(page)  # the swapped-in canvases, drawn again
    assert page.evaluate("window.__e2eSamePage === true"), "the page was reloaded (not htmx)"
    assert "period=365" in page.url
    with page.expect_download() as download:
        page.locator("[data-png=revenue]").click()
    assert download.value.suggested_filename == "revenue.png"


def test_filters_without_data_show_notes_instead_of_empty_charts(
    page, login, manager, rep, teammate, teams
):
    _deals(rep)
    login(manager)
    page.goto(f"/analytics/?rep={teammate.pk}")  # a rep of the team with no deals
    expect(page.locator("canvas[data-chart=stages]")).to_have_attribute("data-ready", "empty")
    expect(page.locator("canvas[data-chart=stages]")).to_be_hidden()
    expect(page.locator("[data-png=stages]")).to_be_hidden()  # nothing to download
    expect(page.locator(".chart-empty").first).to_be_visible()
    expect(page.get_by_text("No open deals.").first).to_be_visible()
    page.select_option("select[name=rep]", "")  # back to everyone: the charts return
    _expect_drawn(page, ["stages"])
