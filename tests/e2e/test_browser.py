"""End-to-end tests in Chromium (Playwright) against the live server.

Run with `pytest tests/e2e -p no:xdist`. Users and records are made with the factories; the
browser signs in through the login form (first two tests) or with a session cookie.
"""

import re

import pytest
from playwright.sync_api import Page, expect

from customers.models import Customer
from sales.models import Sale, SaleActivity, StageChange, Task
from tests.factories import (
    PASSWORD,
    CustomerFactory,
    SaleFactory,
    StageChangeFactory,
    TaskFactory,
)

pytestmark = pytest.mark.browser


def _mark_document(page: Page) -> None:
    """Tag the current document; a full page load would drop the tag."""
    page.evaluate("window.__e2eSamePage = true")


def _assert_same_document(page: Page) -> None:
    assert page.evaluate("window.__e2eSamePage === true"), "the page was reloaded (not htmx)"


def _wait_for_htmx(page: Page) -> None:
    page.wait_for_function("window.htmx !== undefined")


@pytest.fixture
def my_deal(rep):
    customer = CustomerFactory(owner=rep, name="Globex Corporation", company="Globex")
    sale = SaleFactory(customer=customer, assigned_to=rep, title="Globex renewal")
    StageChangeFactory(sale=sale, to_status=Sale.Status.NEW, changed_by=rep)
    return sale


def test_rep_signs_in_creates_customer_and_deal_and_moves_it_to_proposal(page: Page, rep):
    page.goto("/accounts/login/")
    page.fill("#id_username", "rep")
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/$"))
    expect(page.locator("header.topbar")).to_be_visible()

    # A customer, through the form.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Customers").click()
    page.get_by_role("link", name="New customer").click()
    expect(page).to_have_url(re.compile(r"/customers/new/$"))
    expect(page.locator("#id_owner")).to_have_value(str(rep.pk))
    page.fill("#id_name", "Acme Robotics")
    page.fill("#id_email", "Buyer@Acme-Robotics.example")
    page.get_by_role("button", name="Save").click()

    customer = Customer.objects.get(email="buyer@acme-robotics.example")
    assert customer.name == "Acme Robotics"
    assert customer.owner == rep
    expect(page).to_have_url(re.compile(rf"/customers/{customer.pk}/$"))
    expect(page.locator("h1")).to_have_text("Acme Robotics")
    # The deals panel arrives through htmx after the page loads.
    expect(page.locator("#customer-panel")).to_contain_text("No deals yet.")

    # A deal, from the customer page's link.
    page.get_by_role("link", name="New deal").click()
    expect(page).to_have_url(re.compile(rf"/sales/deals/new/\?customer={customer.pk}$"))
    expect(page.locator("#id_customer")).to_have_value(str(customer.pk))
    expect(page.locator("#id_assigned_to")).to_have_value(str(rep.pk))
    expect(page.locator("#id_currency")).to_have_value("USD")
    page.fill("#id_title", "Acme pilot")
    page.fill("#id_amount", "12500.00")
    page.select_option("#id_status", "NEW")
    page.fill("#id_expected_close_date", "2031-03-31")
    page.get_by_role("button", name="Save").click()

    sale = Sale.objects.get(title="Acme pilot")
    assert sale.customer == customer
    assert sale.status == Sale.Status.NEW
    expect(page).to_have_url(re.compile(rf"/sales/deals/{sale.pk}/$"))
    expect(page.locator("[data-stage]")).to_have_text("New")
    expect(page.locator("[data-stage-history] li[data-stage-change]")).to_have_count(1)

    # Move it to PROPOSAL.
    page.get_by_role("link", name="Change stage").click()
    expect(page).to_have_url(re.compile(rf"/sales/deals/{sale.pk}/stage/$"))
    page.select_option("#id_to_status", "PROPOSAL")
    page.fill("#id_reason", "Proposal sent by email")
    page.get_by_role("button", name="Move deal").click()

    expect(page).to_have_url(re.compile(rf"/sales/deals/{sale.pk}/$"))
    expect(page.locator(".messages")).to_contain_text("Deal moved to Proposal.")
    expect(page.locator("[data-stage]")).to_have_text("Proposal")
    history = page.locator("[data-stage-history]")
    expect(history.locator("li[data-stage-change]")).to_have_count(2)
    expect(history.locator('li[data-stage-change="NEW"]')).to_have_count(1)
    proposal = history.locator('li[data-stage-change="PROPOSAL"]')
    expect(proposal).to_have_count(1)
    expect(proposal).to_contain_text("New → Proposal")
    expect(proposal).to_contain_text("Proposal sent by email")

    sale.refresh_from_db()
    assert sale.status == Sale.Status.PROPOSAL
    assert list(sale.stage_changes.order_by("changed_at").values_list("to_status", flat=True)) == [
        "NEW",
        "PROPOSAL",
    ]


def test_wrong_password_shows_error_and_stays_on_login_page(page: Page, rep):
    page.goto("/accounts/login/")
    page.fill("#id_username", "rep")
    page.fill("#id_password", "not-the-password")
    page.get_by_role("button", name="Sign in").click()

    expect(page.locator(".form-errors[role=alert]")).to_contain_text(
        "Please enter a correct username and password"
    )
    expect(page).to_have_url(re.compile(r"/accounts/login/$"))
    expect(page.locator("header.topbar")).to_have_count(0)

    # Still signed out: a protected page sends the browser back to the login form.
    page.goto("/customers/")
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/customers/$"))


def test_customer_search_filters_table_through_htmx(page: Page, login, rep):
    CustomerFactory(owner=rep, name="Zebra Logistics", company="Stripes Ltd")
    CustomerFactory(owner=rep, name="Aardvark Foods", company="Burrow Inc")
    login(rep)
    page.goto("/customers/")
    _wait_for_htmx(page)
    rows = page.locator("#customer-table tbody tr")
    expect(rows).to_have_count(2)
    _mark_document(page)

    with page.expect_response(
        lambda r: "/customers/?" in r.url and r.request.headers.get("hx-request") == "true"
    ) as response_info:
        page.locator("#id_q").press_sequentially("zebr")
    assert response_info.value.ok

    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Zebra Logistics")
    expect(page.locator("#customer-table")).not_to_contain_text("Aardvark Foods")
    expect(page).to_have_url(re.compile(r"/customers/\?(.*&)?q=zebr(&|$)"))
    expect(page.locator("h1")).to_have_text("Customers")  # the page around the table stays
    _assert_same_document(page)


def test_completing_a_task_marks_its_row_done_through_htmx(page: Page, login, rep):
    task = TaskFactory(assigned_to=rep, title="Send the contract draft")
    other = TaskFactory(assigned_to=rep, title="Book the demo room")
    login(rep)
    page.goto("/sales/tasks/")
    _wait_for_htmx(page)
    row = page.locator(f"#task-{task.pk}")
    expect(row).not_to_have_class(re.compile(r"\btask-done\b"))
    _mark_document(page)

    row.locator("[data-task-toggle]").click()

    expect(row).to_have_class(re.compile(r"\btask-done\b"))
    expect(row.locator("[data-task-toggle]")).to_have_text("↺ Reopen")
    expect(page.locator(f"#task-{task.pk}")).to_have_count(1)  # swapped in place, not added
    expect(page.locator(f"#task-{other.pk}")).not_to_have_class(re.compile(r"\btask-done\b"))
    _assert_same_document(page)
    task.refresh_from_db()
    assert task.completed_at is not None
    assert Task.objects.get(pk=other.pk).completed_at is None


def test_logging_an_activity_shows_it_without_reload(page: Page, login, rep, my_deal):
    login(rep)
    page.goto(f"/sales/deals/{my_deal.pk}/")
    _wait_for_htmx(page)
    activities = page.locator("#activities")
    expect(activities).to_contain_text("No activities logged yet.")
    _mark_document(page)

    activities.locator("#id_kind").select_option("meeting")
    activities.locator("#id_text").fill("Walked the buyer through the pricing sheet.")
    activities.get_by_role("button", name="Log activity").click()

    entry = activities.locator(".timeline li").filter(
        has_text="Walked the buyer through the pricing sheet."
    )
    expect(entry).to_have_count(1)
    expect(entry).to_contain_text("Meeting")
    expect(activities).not_to_contain_text("No activities logged yet.")
    expect(activities.locator("#id_text")).to_have_value("")  # a fresh form for the next one
    _assert_same_document(page)
    activity = SaleActivity.objects.get(sale=my_deal)
    assert activity.kind == SaleActivity.Kind.MEETING
    assert activity.user == rep


def test_an_empty_activity_shows_its_error_in_place(page: Page, login, rep, my_deal):
    login(rep)
    page.goto(f"/sales/deals/{my_deal.pk}/")
    _wait_for_htmx(page)
    activities = page.locator("#activities")
    _mark_document(page)

    activities.get_by_role("button", name="Log activity").click()

    expect(activities.locator(".field.has-error .error")).to_have_text("This field is required.")
    _assert_same_document(page)
    assert not SaleActivity.objects.exists()


def test_moving_a_deal_to_lost_without_reason_is_refused(page: Page, login, rep, my_deal):
    login(rep)
    page.goto(f"/sales/deals/{my_deal.pk}/stage/")
    page.select_option("#id_to_status", "LOST")
    expect(page.locator("#id_closed_on")).not_to_have_value("")
    page.fill("#id_lost_reason", "")
    page.get_by_role("button", name="Move deal").click()

    field = page.locator(".field.has-error", has=page.locator("#id_lost_reason"))
    expect(field.locator(".error")).to_have_text("Say why the deal was lost.")
    expect(page).to_have_url(re.compile(rf"/sales/deals/{my_deal.pk}/stage/$"))
    expect(page.locator("#id_to_status")).to_have_value("LOST")  # the choice is kept

    my_deal.refresh_from_db()
    assert my_deal.status == Sale.Status.NEW
    assert my_deal.closed_at is None
    assert not StageChange.objects.filter(sale=my_deal, to_status="LOST").exists()

    page.goto(f"/sales/deals/{my_deal.pk}/")
    expect(page.locator("[data-stage]")).to_have_text("New")
    expect(page.locator('[data-stage-history] li[data-stage-change="LOST"]')).to_have_count(0)


def test_new_deal_finds_its_customer_by_search(page: Page, login, rep):
    CustomerFactory(owner=rep, name="Quasar Optics", company="Quasar")
    CustomerFactory(owner=rep, name="Other Person", company="Elsewhere")
    login(rep)
    page.goto("/sales/deals/new/")
    _wait_for_htmx(page)
    expect(page.locator("#id_customer option")).to_have_count(1)  # only the placeholder

    page.locator("[data-customer-search]").fill("quasar")
    expect(page.locator("#id_customer option")).to_have_count(1)
    expect(page.locator("#id_customer option")).to_contain_text("Quasar Optics")
    page.fill("#id_title", "Telescope lenses")
    page.fill("#id_amount", "2500")
    page.get_by_role("button", name="Save").click()

    expect(page.locator("h1")).to_have_text("Telescope lenses")
    assert Sale.objects.get(title="Telescope lenses").customer.name == "Quasar Optics"
