"""Every page on a phone (390 x 844, Chromium's mobile emulation): nothing scrolls sideways,
the header's navigation is folded behind a Menu button that opens it, and a list's filters
are folded behind a Filters button (issue 15).

The pages come from the URL resolver, like tests/test_fuzz_urls.py: a route without
parameters, or whose parameters are ids of the world built here, is visited when it answers
a GET with a whole HTML page (POST-only actions, htmx partials, CSV, images and JSON are
left out by that answer), so a new page is covered without editing this file.

"No horizontal scroll" is `document.documentElement.scrollWidth` against the layout
viewport's width (`clientWidth`, 390). `window.innerWidth` is not the yardstick here: on a
phone, Chromium zooms out to show a page that overflows, and `innerWidth` then grows with
the overflow (a 500 px page reports 500).
"""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone
from playwright.sync_api import Page, expect

from customers import csv_import
from customers.models import Customer, CustomerNote
from documents import services as documents
from documents.models import Document
from sales.models import Sale, SaleActivity
from tests.documents import samples
from tests.factories import (
    CustomerFactory,
    SaleActivityFactory,
    SaleFactory,
    StageChangeFactory,
    TagFactory,
    TaskFactory,
)
from tests.url_walk import campaign_records, id_for, routes

pytestmark = pytest.mark.browser

PHONE = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 3,
    "is_mobile": True,
    "has_touch": True,
}
# Not walked: Django's admin, signing in and out (the login page has a test of its own),
# the public token pages (their tokens are not ids of the world) and the API's docs (Swagger
# UI and Redoc: pages of their own for developers, outside the site's layout).
SKIPPED_NAMES = {"logout", "login"}
SKIPPED_PREFIXES = ("admin/", "t/", "u/", "d/", "webhooks/", "api/docs/")
# The main pages: each must be among those walked (so a broken id cannot drop one silently).
MAIN_PAGES = {
    "home", "customers:list", "customers:detail", "customers:create", "customers:edit",
    "customers:import_upload", "leads:list", "leads:detail",
    "sales:list", "sales:detail", "sales:create", "sales:pipeline", "sales:forecast",
    "sales:my_tasks", "documents:list", "documents:detail", "campaigns:campaign_list",
    "campaigns:sequence_list", "campaigns:sequence_detail", "campaigns:draft_list",
    "password_change",
}  # fmt: skip
# The rep's own import (its uploader's alone).
REP_PAGES = {"customers:import_mapping", "customers:import_report"}
# Pages that need a query string (without one they answer 404).
QUERIES = {"analytics:deals": "?metric=open"}
# Pages only a manager may open.
MANAGER_PAGES = {
    "analytics:dashboard", "analytics:deals", "leads:rules", "sales:pipeline_settings",
    "campaigns:campaign_new", "campaigns:campaign_detail", "campaigns:template_list",
    "campaigns:template_edit", "campaigns:segment_list", "campaigns:segment_edit",
    "campaigns:sequence_edit", "campaigns:outbox",
}  # fmt: skip
# List pages whose filters must fold behind the Filters button.
FILTERED_PAGES = {
    "customers:list", "leads:list", "sales:list", "sales:pipeline", "sales:forecast",
    "documents:list", "campaigns:campaign_list", "campaigns:draft_list", "analytics:dashboard",
}  # fmt: skip

LONG_EMAIL = "procurement.and.vendor.management.department@a-very-long-company-domain.example"
LONG_WORD = "Supercalifragilisticexpialidocious-Enterprise-Procurement-Framework-Agreement"


@pytest.fixture
def browser_context_args():
    return PHONE


def _walked_routes() -> list[tuple[str, str]]:
    return [
        (route, name)
        for route, name in routes()
        if name
        and name.split(":")[-1] not in SKIPPED_NAMES
        and not route.startswith(SKIPPED_PREFIXES)
        and not route.startswith("^")
    ]


@pytest.fixture
def world(rep, manager, teams, settings, tmp_path):
    """Records with the long values real data has (a long email, an unbroken word, a sha256),
    reachable by `rep` and `manager`: {route prefix: id} for the walk."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    tag = TagFactory(name="enterprise-renewal-2026")
    customer = CustomerFactory(
        owner=rep, name="Maximiliane Featherstonehaugh-Wolfeschlegelsteinhausen",
        email=LONG_EMAIL, company=f"{LONG_WORD} GmbH", job_title="Head of Procurement",
        phone="+49 30 1234567890", website="https://www.a-very-long-company-domain.example/about",
        address="Friedrichstraße 123, 10117 Berlin", notes=LONG_WORD * 2, tags=[tag],
        lifecycle_stage=Customer.LifecycleStage.LEAD,
    )  # fmt: skip
    CustomerNote.objects.create(customer=customer, author=rep, text=f"Called {LONG_EMAIL}")
    sale = SaleFactory(
        customer=customer, assigned_to=rep, title=f"{LONG_WORD} renewal",
        amount=Decimal("1850000.00"), status=Sale.Status.PROPOSAL,
    )  # fmt: skip
    StageChangeFactory(sale=sale, to_status=Sale.Status.PROPOSAL, changed_by=rep)
    SaleActivityFactory(sale=sale, user=rep, kind=SaleActivity.Kind.NOTE, text=LONG_WORD * 3)
    task = TaskFactory(
        assigned_to=rep, sale=sale, title=f"Send {LONG_WORD} to {LONG_EMAIL}",
        due_at=timezone.now() - timedelta(days=2),
    )  # fmt: skip
    for index in range(3):
        SaleFactory(customer=CustomerFactory(owner=rep), assigned_to=rep, title=f"Deal {index}")
    finished_import = csv_import.customer_import_upload(
        actor=rep, duplicate_mode="skip", uploaded_file=SimpleUploadedFile(
            "export.csv", f"name,email,last_contact_date\nGood,good@x.example,2024-01-01\n"
                          f"{LONG_WORD},{LONG_EMAIL}@,{LONG_WORD}\n".encode()),
    )  # fmt: skip
    csv_import.customer_import_run(
        actor=rep, customer_import=finished_import, duplicate_mode="skip",
        mapping=finished_import.column_mapping,
    )  # fmt: skip
    document = documents.document_upload(
        actor=rep, upload=samples.upload(f"{LONG_WORD}.pdf", samples.pdf_with_text("Proposal")),
        sale=sale, document_type=Document.Type.PROPOSAL,
    )  # fmt: skip
    return {
        **campaign_records(
            rep=rep,
            manager=manager,
            customer=customer,
            text=LONG_WORD,
            email=LONG_EMAIL,
            import_file=(
                "contacts-exported-from-another-crm-2026-12-05.csv",
                f"name,email,company\nA,{LONG_EMAIL},{LONG_WORD}\n",
                ["name", "email", "company"],
            ),
        ),
        "customers/": customer.pk,
        "sales/deals/": sale.pk,
        "sales/tasks/": task.pk,
        "sales/customers/": customer.pk,
        "leads/": customer.pk,
        "documents/panel/": sale.pk,
        "documents/": document.pk,
        "": customer.pk,
        # By URL name where one prefix names two records.
        "customers:import_report": finished_import.pk,
        "customers:import_rejected_csv": finished_import.pk,
        "customers:import_retry": finished_import.pk,
    }


def _path(route: str, name: str, ids: dict) -> str:
    real_id = ids.get(name) or id_for(route, ids)
    strings = {"status": "NEW", "kind": "sale", "position": "1", "action": "send"}

    def replace(match: re.Match) -> str:
        converter, name = match.group(1), match.group(2)
        if name == "position":
            return "1"
        return str(real_id) if converter == "int" else strings.get(name, "x")

    return "/" + re.sub(r"<(\w+):(\w+)>", replace, route) + QUERIES.get(name, "")


def _pages(user, ids: dict) -> dict[str, str]:
    """{url name: path} of the routes that answer `user`'s GET with a whole HTML page."""
    client = Client()
    client.force_login(user)
    pages = {}
    for route, name in _walked_routes():
        path = _path(route, name, ids)
        response = client.get(path)
        if (
            response.status_code == 200
            and response.get("Content-Type", "").startswith("text/html")
            and b"<html" in response.content[:500]
        ):
            pages[name] = path
    return pages


# What sticks out past the viewport's right edge (not clipped by a scrolling box): the
# innermost such elements, for the failure message.
OVERFLOWING = """() => {
  const width = document.documentElement.clientWidth;
  const clipped = (el) => {
    if (["absolute", "fixed"].includes(getComputedStyle(el).position)) return false;
    for (let box = el.parentElement; box && box !== document.body; box = box.parentElement) {
      if (getComputedStyle(box).overflowX !== "visible") return true;
    }
    return false;
  };
  const out = [...document.querySelectorAll("body *")].filter((el) => {
    const box = el.getBoundingClientRect();
    return box.width > 0 && box.right > width + 0.5 && !clipped(el);
  });
  const innermost = out.filter((el) => !out.some((other) => other !== el && el.contains(other)));
  return innermost.slice(0, 5).map((el) => {
    const classes = typeof el.className === "string" && el.className.trim()
      ? "." + el.className.trim().split(/\\s+/).join(".") : "";
    const name = el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") + classes;
    return `${name} to ${Math.round(el.getBoundingClientRect().right)} px`;
  });
}"""


def _overflow(page: Page) -> str | None:
    """None when the page fits the phone's width, else what sticks out."""
    scroll_width, width = page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert width == 390
    if scroll_width <= width:
        return None
    return f"{scroll_width} px wide: {', '.join(page.evaluate(OVERFLOWING))}"


def _open(page: Page, path: str) -> None:
    page.goto(path)
    page.wait_for_load_state("networkidle")  # htmx panels loaded on "load" are in


def _check_menu(page: Page) -> str | None:
    """The navigation is folded behind the Menu button, which opens it (still no overflow)."""
    header = page.locator("header.topbar")
    nav = header.get_by_role("navigation", name="Main")
    toggle = header.get_by_role("button", name="Menu")
    if nav.is_visible() or not toggle.is_visible():
        return "the navigation is not folded behind a Menu button"
    expect(toggle).to_have_attribute("aria-expanded", "false")
    toggle.click()
    expect(nav).to_be_visible()
    expect(nav.get_by_role("link", name="Customers")).to_be_visible()
    expect(header.get_by_role("button", name="Log out")).to_be_visible()
    expect(toggle).to_have_attribute("aria-expanded", "true")
    problem = _overflow(page)
    toggle.click()
    expect(nav).to_be_hidden()
    return f"with the menu open, {problem}" if problem else None


def _check_filters(page: Page) -> list[str]:
    """Every folding filter form shows only its Filters button until that is pressed (a
    filter of one or two fields inside a card does not fold)."""
    problems = []
    forms = page.locator("form.filters[data-fold]")
    for index in range(forms.count()):
        form = forms.nth(index)
        toggle = form.get_by_role("button", name=re.compile(r"^Filters"))
        fields = form.locator("input:not([type=hidden]), select")
        if toggle.count() != 1 or not toggle.is_visible() or fields.first.is_visible():
            problems.append(f"filter form {index + 1} is not folded behind a Filters button")
            continue
        toggle.click()
        expect(fields.first).to_be_visible()
        expect(toggle).to_have_attribute("aria-expanded", "true")
        if problem := _overflow(page):
            problems.append(f"with filter form {index + 1} open, {problem}")
        toggle.click()
        expect(fields.first).to_be_hidden()
    return problems


def _walk(page: Page, pages: dict[str, str]) -> list[str]:
    failures = []
    for name, path in sorted(pages.items()):
        _open(page, path)
        problems = [_overflow(page), _check_menu(page), *_check_filters(page)]
        if name in FILTERED_PAGES and page.locator("form.filters[data-fold]").count() == 0:
            problems.append("no folding filter form")
        failures += [f"{name} {path}: {problem}" for problem in problems if problem]
    return failures


@pytest.mark.parametrize("role", ["rep", "manager"])
def test_every_page_fits_a_phone_with_the_menu_and_filters_folded(
    page: Page, login, role, rep, manager, world
):
    user = {"rep": rep, "manager": manager}[role]
    pages = _pages(user, world)
    expected = MAIN_PAGES | (MANAGER_PAGES if role == "manager" else REP_PAGES)
    assert expected <= pages.keys(), f"not walked: {sorted(expected - pages.keys())}"

    login(user)
    failures = _walk(page, pages)

    assert not failures, "\n".join(failures)


def test_the_folded_filters_say_how_many_are_set_and_escape_folds_them(
    page: Page, login, rep, world
):
    login(rep)
    _open(page, "/customers/?lifecycle_stage=lead&q=Feather")
    form = page.locator("form.filters[data-fold]")
    toggle = form.get_by_role("button", name=re.compile(r"^Filters"))
    expect(toggle).to_have_text(re.compile(r"^Filters \(2 set\)"))
    toggle.click()
    form.locator("#id_lifecycle_stage").focus()
    page.keyboard.press("Escape")
    expect(form.locator("#id_lifecycle_stage")).to_be_hidden()
    expect(toggle).to_be_focused()
    expect(toggle).to_have_attribute("aria-expanded", "false")

    # A filter changed by htmx (the address pushed, no reload) is counted too.
    toggle.click()
    form.locator("#id_region").select_option("emea")
    expect(page).to_have_url(re.compile(r"region=emea"))
    expect(toggle).to_have_text(re.compile(r"^Filters \(3 set\)"))


def test_the_public_pages_fit_a_phone(page: Page, world):
    """What a visitor opens without signing in: the login page, the unsubscribe page of an
    email (a customer with a long address, on a phone more often than not) and a share link
    that is no longer valid."""
    from campaigns.tokens import unsubscribe_token

    _open(page, "/accounts/login/")
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    assert _overflow(page) is None

    _open(page, f"/u/{unsubscribe_token(world['customers/'])}/")
    expect(page.locator("main")).to_contain_text(LONG_EMAIL)
    assert _overflow(page) is None
    page.locator("main form button[type=submit]").click()
    expect(page.locator("main")).to_contain_text("unsubscribed")
    assert _overflow(page) is None

    _open(page, "/d/not-a-token/")
    assert _overflow(page) is None


@pytest.mark.parametrize("browser_context_args", [{**PHONE, "java_script_enabled": False}])
def test_without_javascript_the_navigation_and_filters_show_on_a_phone(
    page: Page, login, rep, world
):
    """The folding needs JavaScript to unfold, so without it nothing is folded."""
    login(rep)
    _open(page, "/customers/")
    header = page.locator("header.topbar")
    expect(
        header.get_by_role("navigation", name="Main").get_by_role("link", name="Leads")
    ).to_be_visible()
    expect(header.get_by_role("button", name="Menu")).to_be_hidden()
    filters = page.locator("form.filters")
    expect(filters.get_by_role("button", name=re.compile(r"^Filters"))).to_be_hidden()
    expect(filters.locator("select").first).to_be_visible()
    assert _overflow(page) is None
