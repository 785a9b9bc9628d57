"""Uploading several files in Chromium: each file gets its own type before it goes up, and
the lists beside the upload box (a deal's Documents panel, the documents page) show each new
document as its upload finishes, without a reload.

Celery is eager in the tests, so each upload is processed in its request, after commit.
"""

import pytest
from django.urls import reverse
from playwright.sync_api import Page, expect

from documents.models import Document
from tests.documents import samples
from tests.e2e.test_documents_browser import _file, media_root  # noqa: F401 (a fixture)
from tests.e2e.test_documents_browser import _progress_row as _row
from tests.factories import CustomerFactory, SaleFactory

pytestmark = pytest.mark.browser


def test_each_dropped_file_gets_its_own_type_and_the_deal_panel_lists_them(page: Page, login, rep):
    customer = CustomerFactory(owner=rep, name="Initech", company="Initech")
    sale = SaleFactory(customer=customer, assigned_to=rep, title="Initech rollout")
    login(rep)
    page.goto(reverse("sales:detail", args=[sale.pk]))
    panel = page.locator("[data-documents-panel]")
    expect(panel).to_contain_text("No documents yet.")
    form = panel.locator("form[data-upload]")

    form.locator("input[data-files]").set_input_files(
        [
            _file(
                "initech-proposal.pdf",
                samples.pdf_with_text("Initech, 40 seats"),
                "application/pdf",
            ),
            _file("meeting-notes.txt", samples.TXT, "text/plain"),
        ]
    )
    # Each file is listed with its own type, the panel's (proposal on a deal) to start with.
    proposal_type = _row(form, "initech-proposal.pdf").get_by_label("Type of initech-proposal.pdf")
    notes_type = _row(form, "meeting-notes.txt").get_by_label("Type of meeting-notes.txt")
    expect(proposal_type).to_have_value("proposal")
    expect(notes_type).to_have_value("proposal")
    notes_type.select_option("other")
    form.get_by_role("button", name="Upload").click()

    for name in ("initech-proposal.pdf", "meeting-notes.txt"):
        expect(_row(form, name).locator(".status a")).to_have_text("uploaded")
    assert dict(Document.objects.values_list("original_name", "document_type")) == {
        "initech-proposal.pdf": "proposal",
        "meeting-notes.txt": "other",
    }
    # The panel lists both, without a reload, and no longer says there are none.
    expect(panel.get_by_role("link", name="initech-proposal")).to_be_visible()
    expect(panel.get_by_role("link", name="meeting-notes")).to_be_visible()
    expect(panel).not_to_contain_text("No documents yet.")
    expect(
        panel.locator("[data-panel-documents] li").filter(has_text="meeting-notes")
    ).to_contain_text("Other")


def test_changing_the_type_for_all_keeps_a_type_chosen_for_one_file(page: Page, login, rep):
    login(rep)
    page.goto(reverse("documents:list"))
    form = page.locator("form[data-upload]")
    form.locator("input[data-files]").set_input_files(
        [
            _file("contract.pdf", samples.pdf_with_text("Contract"), "application/pdf"),
            _file("notes.txt", samples.TXT, "text/plain"),
        ]
    )
    _row(form, "notes.txt").get_by_label("Type of notes.txt").select_option("other")
    form.get_by_label("Type", exact=True).select_option("contract")
    expect(_row(form, "contract.pdf").get_by_label("Type of contract.pdf")).to_have_value(
        "contract"
    )
    expect(_row(form, "notes.txt").get_by_label("Type of notes.txt")).to_have_value("other")


def test_the_documents_page_lists_new_documents_as_their_uploads_finish(page: Page, login, rep):
    login(rep)
    page.goto(reverse("documents:list"))
    table = page.locator("[data-document-table]")
    expect(table).to_contain_text("No documents yet")
    form = page.locator("form[data-upload]")
    form.locator("input[data-files]").set_input_files(
        [_file("price-list.csv", samples.CSV, "text/csv")]
    )
    form.get_by_role("button", name="Upload").click()
    expect(_row(form, "price-list.csv").locator(".status a")).to_have_text("uploaded")
    expect(table.get_by_role("link", name="price-list")).to_be_visible()
    expect(table).not_to_contain_text("No documents yet")
    # A refused file changes nothing in the list.
    form.locator("input[data-files]").set_input_files(
        [_file("page.html", samples.HTML_PAGE, "text/html")]
    )
    form.get_by_role("button", name="Upload").click()
    expect(_row(form, "page.html").locator(".status")).to_contain_text("markup")
    expect(table.locator("tbody tr")).to_have_count(1)
