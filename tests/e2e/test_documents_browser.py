"""Document uploads in Chromium: several files at once with a progress row each, a refused
file's reason in its row, and the documents panel of a deal page (loaded by htmx).

Celery is eager in the tests, so each upload is processed in its request, after commit.
"""

import re

import pytest
from django.urls import reverse
from playwright.sync_api import Page, expect

from documents.models import Document
from tests.documents import samples
from tests.factories import CustomerFactory, SaleFactory

pytestmark = pytest.mark.browser

PDF = "application/pdf"


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    """Stored files go to a fresh directory; the live server runs in this process."""
    root = tmp_path / "media"
    root.mkdir()
    settings.MEDIA_ROOT = str(root)
    return root


def _file(name: str, content: bytes, mime_type: str) -> dict:
    return {"name": name, "mimeType": mime_type, "buffer": content}


def _progress_row(form, name: str):
    return form.locator("[data-progress] li").filter(
        has=form.page.locator(".name", has_text=re.compile(rf"^{re.escape(name)}$"))
    )


def test_rep_uploads_two_files_and_sees_each_ones_progress_and_a_refused_file(
    page: Page, login, rep
):
    login(rep)
    page.goto(reverse("documents:list"))
    form = page.locator("form[data-upload]")
    expect(form).to_have_count(1)

    form.locator("input[data-files]").set_input_files(
        [
            _file("proposal.pdf", samples.pdf_with_text("Proposal for Initech", "Page two"), PDF),
            _file("logo.png", samples.png(size=(900, 600)), "image/png"),
        ]
    )
    form.get_by_role("button", name="Upload").click()

    rows = form.locator("[data-progress] li")
    expect(rows).to_have_count(2)
    for name in ("proposal.pdf", "logo.png"):
        row = _progress_row(form, name)
        expect(row.locator(".status a")).to_have_text("uploaded")
        expect(row.locator("progress")).to_have_attribute("value", "100")
        expect(row).not_to_have_class(re.compile(r"\berror\b"))

    pdf = Document.objects.get(original_name="proposal.pdf")
    png = Document.objects.get(original_name="logo.png")
    expect(_progress_row(form, "proposal.pdf").locator(".status a")).to_have_attribute(
        "href", pdf.get_absolute_url()
    )
    expect(_progress_row(form, "logo.png").locator(".status a")).to_have_attribute(
        "href", png.get_absolute_url()
    )
    assert (pdf.mime_type, pdf.uploaded_by, pdf.version) == (PDF, rep, 1)
    assert png.mime_type == "image/png"
    # Processed after commit (eager Celery in the tests): text, page count, thumbnail.
    assert pdf.processing_status == Document.Processing.DONE, pdf.processing_error
    assert pdf.page_count == 2
    assert "Proposal for Initech" in pdf.extracted_text
    assert png.processing_status == Document.Processing.DONE, png.processing_error
    assert png.preview_image

    # A program renamed to .pdf (and claimed as a PDF by the browser): its row says why.
    form.locator("input[data-files]").set_input_files(
        [_file("invoice.pdf", samples.EXECUTABLE, PDF)]
    )
    form.get_by_role("button", name="Upload").click()
    refused = _progress_row(form, "invoice.pdf")
    expect(refused).to_have_class(re.compile(r"\berror\b"))
    expect(refused.locator(".status")).to_contain_text("This is a program, not a document")
    expect(refused.locator(".status a")).to_have_count(0)
    assert not Document.objects.filter(original_name="invoice.pdf").exists()
    assert Document.objects.count() == 2

    # The uploaded link leads to the document's page.
    _progress_row(form, "proposal.pdf").get_by_role("link", name="uploaded").click()
    expect(page).to_have_url(re.compile(rf"/documents/{pdf.pk}/$"))
    expect(page.locator("h1")).to_contain_text("proposal")


def test_rep_uploads_a_proposal_from_the_deal_page_panel(page: Page, login, rep):
    customer = CustomerFactory(owner=rep, name="Initech", company="Initech")
    sale = SaleFactory(customer=customer, assigned_to=rep, title="Initech rollout")
    login(rep)
    page.goto(reverse("sales:detail", args=[sale.pk]))

    panel = page.locator("[data-documents-panel]")  # arrives through htmx after the load
    expect(panel).to_contain_text("No documents yet.")
    form = panel.locator("form[data-upload]")
    # On a deal the panel proposes the proposal type.
    expect(form.locator("select[name=document_type]")).to_have_value("proposal")

    form.locator("input[data-files]").set_input_files(
        [_file("initech-proposal.pdf", samples.pdf_with_text("Initech proposal, 40 seats"), PDF)]
    )
    form.get_by_role("button", name="Upload").click()
    row = _progress_row(form, "initech-proposal.pdf")
    expect(row.locator(".status a")).to_have_text("uploaded")

    document = Document.objects.get(original_name="initech-proposal.pdf")
    assert (document.sale, document.customer) == (sale, customer)
    assert document.document_type == Document.Type.PROPOSAL
    assert document.processing_status == Document.Processing.DONE, document.processing_error
    assert "Initech proposal" in document.extracted_text

    page.reload()
    panel = page.locator("[data-documents-panel]")
    link = panel.get_by_role("link", name="initech-proposal")
    expect(link).to_have_attribute("href", document.get_absolute_url())
    expect(panel).to_contain_text("Proposal")
    expect(panel).not_to_contain_text("No documents yet.")
