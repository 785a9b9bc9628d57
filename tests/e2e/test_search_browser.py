"""The header's search box in Chromium: press "/", type, arrow down, Enter.

Run with `pytest tests/e2e/test_search_browser.py -p no:xdist`.
"""

import re

import pytest
from playwright.sync_api import Page, expect

from tests.factories import CustomerFactory, SaleFactory
from tests.search.conftest import index

pytestmark = pytest.mark.browser


@pytest.fixture
def records(rep, other_rep, teams):
    customer = CustomerFactory(owner=rep, name="Heron Outfitters", lifecycle_stage="customer")
    sale = SaleFactory(customer=customer, assigned_to=rep, title="Heron Outfitters renewal")
    theirs = CustomerFactory(owner=other_rep, name="Heron Fisheries")
    index(customer, sale, theirs)
    return {"customer": customer, "sale": sale}


def test_slash_type_arrow_down_enter(page: Page, login, rep, records):
    login(rep)
    page.goto("/customers/")
    page.wait_for_function("window.htmx !== undefined")
    page.locator("main").click()  # focus on the page, not on a field
    page.keyboard.press("/")
    box = page.locator("#global-search")
    expect(box).to_be_focused()
    box.press_sequentially("heron out")
    dropdown = page.locator("#search-dropdown")
    expect(dropdown).to_be_visible()
    options = dropdown.locator("[data-search-option]")
    expect(options).to_have_count(3)  # the customer, the deal, "All results"
    expect(dropdown).not_to_contain_text("Fisheries")  # another rep's
    expect(dropdown.locator(".search-group-label")).to_have_count(2)  # Customers, Deals
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    second = options.nth(1)
    expect(second).to_have_attribute("aria-selected", "true")
    expect(options.nth(0)).to_have_attribute("aria-selected", "false")
    expect(box).to_have_attribute("aria-activedescendant", second.get_attribute("id"))
    target = second.get_attribute("href")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(re.escape(target) + "$"))


def test_ctrl_k_enter_opens_the_first_and_all_results(page: Page, login, rep, records):
    login(rep)
    page.goto("/sales/deals/")
    page.wait_for_function("window.htmx !== undefined")
    page.keyboard.press("Control+k")
    box = page.locator("#global-search")
    expect(box).to_be_focused()
    box.press_sequentially("heron")
    expect(page.locator("#search-dropdown [data-search-option]").first).to_be_visible()
    page.keyboard.press("Enter")
    expect(page).to_have_url(
        re.compile(rf"/customers/{records['customer'].pk}/$|/sales/deals/{records['sale'].pk}/$")
    )
    # "All results": the page with facets. The record's page must have wired its box first
    # (htmx and search.js load deferred): typing before that sends no request.
    page.wait_for_load_state("load")
    page.wait_for_function("window.htmx !== undefined")
    page.keyboard.press("/")
    expect(box).to_be_focused()
    box.press_sequentially("heron")
    page.locator("#search-dropdown .search-all").click()
    expect(page).to_have_url(re.compile(r"/search/\?q=heron$"))
    expect(page.locator("[data-facet-count=all]")).to_have_text("2")
    expect(page.locator(".search-hit")).to_have_count(2)
