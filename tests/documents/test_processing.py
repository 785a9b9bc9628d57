"""documents.processing (run by the process_document task after commit): text, preview,
page count; a file that cannot be processed is marked failed with the reason."""

import io
import logging

import pytest
from django.urls import reverse
from PIL import Image

from documents import processing
from documents.models import Document
from documents.tasks import process_document
from tests.documents import samples

pytestmark = pytest.mark.django_db


def test_pdf_text_preview_and_page_count(rep, make_document):
    document = make_document(
        rep, "offer.pdf", samples.pdf_with_text("Proposal for ACME", "Price: 1000 EUR")
    )
    assert document.processing_status == Document.Processing.DONE
    assert document.processing_error == ""
    assert document.page_count == 2
    assert "Proposal for ACME" in document.extracted_text
    assert "Price: 1000 EUR" in document.extracted_text
    assert document.preview_text.startswith("Proposal for ACME")  # first page's text
    assert not document.preview_image


def test_a_pypdf_blank_pdf_is_processed_with_no_text(rep, make_document):
    document = make_document(rep, "blank.pdf", samples.pdf_blank(pages=3))
    assert document.processing_status == Document.Processing.DONE
    assert document.page_count == 3
    assert document.extracted_text.strip() == ""


@pytest.mark.parametrize("name", samples.REAL_PDFS)
def test_pdfs_of_real_producers_are_processed(rep, make_document, name):
    document = make_document(rep, name, samples.file(name))
    assert document.processing_status == Document.Processing.DONE, document.processing_error
    assert "Quarterly proposal for Initech" in document.extracted_text
    assert document.processing_note == ""


def test_a_password_protected_pdf_is_stored_without_text(rep, rep_client, make_document):
    content = samples.file("qpdf-aes256-password.pdf")
    document = make_document(rep, "locked.pdf", content)
    assert document.processing_status == Document.Processing.DONE
    assert document.processing_note == "password-protected: no text extracted"
    assert (document.extracted_text, document.page_count) == ("", None)
    page = rep_client.get(reverse("documents:detail", args=[document.pk])).content.decode()
    assert "Password-protected: no text extracted" in page
    assert "could not be processed" not in page
    download = rep_client.get(reverse("documents:download", args=[document.pk]))
    assert b"".join(download.streaming_content) == content


def test_docx_text(rep, make_document):
    document = make_document(
        rep, "c.docx", samples.docx("Master services agreement", "Term: 12 months")
    )
    assert document.processing_status == Document.Processing.DONE
    assert document.extracted_text == "Master services agreement\nTerm: 12 months"


@pytest.mark.parametrize(
    "name,content", [("notes.txt", samples.TXT), ("contacts.csv", samples.CSV)]
)
def test_text_and_csv_text(rep, make_document, name, content):
    document = make_document(rep, name, content)
    assert document.processing_status == Document.Processing.DONE
    assert document.extracted_text == content.decode()
    assert document.preview_text == content.decode()


def test_docx_headers_and_footers_are_text_too(rep, make_document):
    document = make_document(rep, "c.docx", samples.docx_with_header_and_footer())
    assert document.processing_status == Document.Processing.DONE, document.processing_error
    assert document.extracted_text == (
        "ACME Corp confidential\nMaster services agreement\nContract 2041, page footer"
    )


def test_xlsx_text_sheet_by_sheet(rep, make_document):
    document = make_document(rep, "prices.xlsx", samples.xlsx_workbook())
    assert document.processing_status == Document.Processing.DONE, document.processing_error
    assert document.extracted_text == (
        "Prices\nProduct\tSeats\tPrice\nInitech rollout\t40\t12.5\nDiscount approved\n"
        "Contacts\nAda Lovelace\tada@example.com\t2026-03-01 00:00:00"
    )
    assert document.preview_text.startswith("Prices\nProduct")


def test_a_minimal_xlsx_has_its_text_extracted(rep, make_document):
    document = make_document(rep, "prices.xlsx", samples.xlsx())
    assert document.processing_status == Document.Processing.DONE, document.processing_error
    assert document.extracted_text == "Sheet1\nPrice"


def test_pptx_text_slide_by_slide_in_the_presentations_order(rep, make_document):
    document = make_document(rep, "deck.pptx", samples.pptx_with_slides())
    assert document.processing_status == Document.Processing.DONE, document.processing_error
    assert document.extracted_text == (
        "Initech rollout\nProposal for ACME\nPricing\n40 seats at 12.50 EUR"
    )


def test_pptx_speaker_notes_follow_their_slides_text(rep, make_document):
    document = make_document(rep, "deck.pptx", samples.pptx_with_slides(notes=True))
    assert document.processing_status == Document.Processing.DONE, document.processing_error
    # The notes body only: not the notes page's slide number.
    assert document.extracted_text == (
        "Initech rollout\nProposal for ACME\nMention the pilot\nAsk for Q3\n"
        "Pricing\n40 seats at 12.50 EUR"
    )


def test_a_pptx_without_slides_has_no_text(rep, make_document):
    document = make_document(rep, "deck.pptx", samples.pptx())
    assert document.processing_status == Document.Processing.DONE, document.processing_error
    assert document.extracted_text == ""


@pytest.mark.parametrize(
    "name,build",
    [
        ("prices.xlsx", samples.xlsx_workbook),
        ("deck.pptx", samples.pptx_with_slides),
        ("c.docx", samples.docx_with_header_and_footer),
    ],
)
def test_office_text_is_capped_while_it_is_read(rep, make_document, monkeypatch, name, build):
    """The reader stops at the cap (not reads everything and cuts it afterwards)."""
    document = make_document(rep, name, build(), process=False)
    whole = processing._extract(document)["text"]
    monkeypatch.setattr(processing, "MAX_TEXT_CHARS", 20)
    capped = processing._extract(document)["text"]
    assert 20 <= len(capped) < len(whole)
    assert whole.startswith(capped)


@pytest.mark.parametrize("name,build", [("logo.png", samples.png), ("photo.jpg", samples.jpeg)])
def test_images_get_a_thumbnail(rep, media_root, make_document, name, build):
    document = make_document(rep, name, build(size=(1600, 900)))
    assert document.processing_status == Document.Processing.DONE
    assert document.preview_image
    assert document.preview_image.path.startswith(str(media_root))
    with Image.open(document.preview_image.path) as thumbnail:
        assert thumbnail.format == "PNG"
        assert thumbnail.width <= processing.THUMBNAIL_SIZE[0]
        assert thumbnail.height <= processing.THUMBNAIL_SIZE[1]
        assert thumbnail.width == 480  # aspect ratio kept


def test_a_transparent_png_thumbnail(rep, make_document):
    output = io.BytesIO()
    Image.new("RGBA", (64, 64), (0, 0, 0, 0)).save(output, format="PNG")
    document = make_document(rep, "t.png", output.getvalue())
    assert document.processing_status == Document.Processing.DONE
    assert document.preview_image


def test_the_thumbnail_is_served_only_to_those_who_may_see_it(
    client, rep, other_rep, manager, make_document
):
    document = make_document(rep, "logo.png", samples.png())
    url = reverse("documents:preview", args=[document.pk])
    client.force_login(rep)
    response = client.get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert b"".join(response.streaming_content).startswith(b"\x89PNG")
    client.force_login(manager)
    assert client.get(url).status_code == 200
    client.force_login(other_rep)
    assert client.get(url).status_code == 404
    client.logout()
    assert client.get(url).status_code == 302


def test_no_preview_is_a_404(rep_client, rep, make_document):
    document = make_document(rep, "n.txt", samples.TXT)
    assert rep_client.get(reverse("documents:preview", args=[document.pk])).status_code == 404


def _corrupt(document: Document, content: bytes) -> None:
    with open(document.file.path, "wb") as stored:
        stored.write(content)


@pytest.mark.parametrize(
    "name,build",
    [
        ("offer.pdf", lambda: samples.pdf_with_text("x")),
        ("contract.docx", lambda: samples.docx("x")),
        ("logo.png", samples.png),
        ("photo.jpg", samples.jpeg),
    ],
)
def test_a_file_damaged_after_upload_is_marked_failed_with_the_reason(
    rep, make_document, django_capture_on_commit_callbacks, caplog, name, build
):
    document = make_document(rep, name, build(), process=False)
    _corrupt(document, b"this is not the file it was\x00\x01" * 10)

    with caplog.at_level(logging.WARNING, logger="documents.processing"):
        process_document.delay(document.pk)  # eager in tests: an escaping error would raise

    document.refresh_from_db()
    assert document.processing_status == Document.Processing.FAILED
    assert document.processing_error  # the reason: the parser's error
    assert ":" in document.processing_error
    assert document.extracted_text == ""
    assert f"Document {document.pk} could not be processed" in caplog.text


def test_a_missing_file_is_marked_failed(rep, make_document):
    document = make_document(rep, "n.txt", samples.TXT, process=False)
    document.file.storage.delete(document.file.name)
    assert processing.document_process(document_id=document.pk) == "failed"
    document.refresh_from_db()
    assert document.processing_status == Document.Processing.FAILED
    assert "FileNotFoundError" in document.processing_error


def test_a_failed_document_is_shown_as_such(rep_client, rep, make_document):
    document = make_document(rep, "offer.pdf", samples.pdf_with_text("x"), process=False)
    _corrupt(document, b"garbage")
    processing.document_process(document_id=document.pk)
    page = rep_client.get(reverse("documents:detail", args=[document.pk])).content.decode()
    assert "could not be processed" in page
    assert rep_client.get(reverse("documents:download", args=[document.pk])).status_code == 200


def test_processing_is_idempotent_and_tolerates_a_deleted_document(rep, make_document):
    document = make_document(rep, "n.txt", samples.TXT)
    assert processing.document_process(document_id=document.pk) == "already done"
    assert processing.document_process(document_id=999_999_999) == "gone"


def test_a_failed_document_can_be_processed_again(rep, make_document):
    document = make_document(rep, "n.txt", samples.TXT, process=False)
    original = document.file.read()
    document.file.close()
    document.file.storage.delete(document.file.name)
    processing.document_process(document_id=document.pk)
    with open(document.file.path, "wb") as restored:
        restored.write(original)
    assert processing.document_process(document_id=document.pk) == "done"
    document.refresh_from_db()
    assert document.processing_status == Document.Processing.DONE
    assert document.processing_error == ""


def test_processing_runs_after_commit_not_before(rep, django_capture_on_commit_callbacks):
    from documents import services

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        document = services.document_upload(actor=rep, upload=samples.upload("n.txt", samples.TXT))
    document.refresh_from_db()
    assert document.processing_status == Document.Processing.PENDING
    for callback in callbacks:
        callback()
    document.refresh_from_db()
    assert document.processing_status == Document.Processing.DONE


def test_extracted_text_is_capped(rep, make_document, monkeypatch):
    monkeypatch.setattr(processing, "MAX_TEXT_CHARS", 10)
    monkeypatch.setattr(processing, "PREVIEW_TEXT_CHARS", 5)
    document = make_document(rep, "n.txt", b"abcdefghijklmnopqrstuvwxyz\n")
    assert document.extracted_text == "abcdefghij"
    assert document.preview_text == "abcde"


def test_the_task_has_a_stable_name_and_takes_an_id():
    assert process_document.name == "documents.process_document"
    assert process_document.time_limit and process_document.soft_time_limit


def test_processing_saves_only_its_own_fields(rep, make_document, monkeypatch):
    """A title changed while the worker read the file is not overwritten by the worker."""
    document = make_document(rep, "n.txt", samples.TXT, process=False)
    real_extract = processing._extract

    def extract_while_someone_edits(doc):
        result = real_extract(doc)
        Document.objects.filter(pk=doc.pk).update(title="Renamed meanwhile")
        return result

    monkeypatch.setattr(processing, "_extract", extract_while_someone_edits)
    processing.document_process(document_id=document.pk)
    document.refresh_from_db()
    assert document.title == "Renamed meanwhile"
    assert document.processing_status == Document.Processing.DONE
