"""Documents processed by a real Celery worker process on Redis (not eager mode), sharing
MEDIA_ROOT with the test: the worker reads the stored upload and writes the preview there."""

import time
from pathlib import Path
from unittest import mock

import pytest
from celery.result import EagerResult

from documents import services
from documents.models import Document
from documents.tasks import process_document
from tests.documents import samples
from tests.factories import RepFactory

pytestmark = pytest.mark.worker


@pytest.fixture
def shared_media_root(settings, tmp_path) -> Path:
    """One MEDIA_ROOT for the test process and the worker (which reads it from the env)."""
    root = tmp_path / "shared-media"
    root.mkdir()
    settings.MEDIA_ROOT = str(root)
    return root


@pytest.fixture
def real_worker_env(shared_media_root):
    return {"MEDIA_ROOT": str(shared_media_root)}


@pytest.fixture
def to_worker(real_worker):
    """A worker (solo pool) started, eager mode off, and the service's
    `process_document.delay(id)` (sent after commit) routed to the worker's queue; yields the
    sends as (document id, AsyncResult)."""
    real_worker.worker(pool="solo")
    sent = []

    def delay(document_id):
        result = process_document.apply_async(args=[document_id])
        sent.append((document_id, result))
        return result

    with real_worker.routed(), mock.patch.object(process_document, "delay", side_effect=delay):
        yield sent


def _wait_processed(*documents: Document, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    pending = {document.pk for document in documents}
    while pending:
        assert time.monotonic() < deadline, f"the worker never processed {sorted(pending)}"
        time.sleep(0.2)
        pending &= set(
            Document.objects.filter(
                pk__in=pending, processing_status=Document.Processing.PENDING
            ).values_list("pk", flat=True)
        )
    for document in documents:
        document.refresh_from_db()


def test_worker_extracts_text_and_page_count_of_an_uploaded_pdf(to_worker, shared_media_root):
    rep = RepFactory(username="worker_docs_rep")
    pages = ["Proposal for ACME Robotics", "Pricing: 12 seats", "Signed by both parties"]
    # The service's on_commit is what sends the task: no one calls the worker directly.
    pdf = services.document_upload(
        actor=rep, upload=samples.upload("proposal.pdf", samples.pdf_with_text(*pages)),
        document_type=Document.Type.PROPOSAL, ip="10.0.0.7",
    )  # fmt: skip
    png = services.document_upload(
        actor=rep, upload=samples.upload("logo.png", samples.png(size=(1600, 1000)))
    )

    assert [document_id for document_id, _ in to_worker] == [pdf.pk, png.pk]
    assert not any(isinstance(result, EagerResult) for _, result in to_worker)
    _wait_processed(pdf, png)

    assert pdf.processing_status == Document.Processing.DONE, pdf.processing_error
    assert pdf.page_count == 3
    for text in pages:
        assert text in pdf.extracted_text
    assert pdf.preview_text.startswith("Proposal for ACME Robotics")
    assert pdf.processing_error == ""

    # The worker wrote the thumbnail into the shared MEDIA_ROOT, next to the upload.
    assert png.processing_status == Document.Processing.DONE, png.processing_error
    assert png.preview_image
    thumbnail = Path(png.preview_image.path)
    assert thumbnail.is_file() and thumbnail.is_relative_to(shared_media_root)
    from PIL import Image

    with Image.open(thumbnail) as image:
        assert max(image.size) <= 480
    assert Path(png.file.path).is_relative_to(shared_media_root)


def test_worker_records_a_failure_and_keeps_processing(real_worker, to_worker):
    [process] = real_worker.workers
    rep = RepFactory(username="worker_docs_rep2")
    with mock.patch.object(process_document, "delay"):  # both are sent below, in order
        lost = services.document_upload(
            actor=rep, upload=samples.upload("lost.pdf", samples.pdf_with_text("Gone"))
        )
        kept = services.document_upload(
            actor=rep, upload=samples.upload("kept.pdf", samples.pdf_with_text("Still here"))
        )
    lost.file.storage.delete(lost.file.name)  # the stored file vanished before processing

    process_document.delay(lost.pk)
    process_document.delay(kept.pk)
    _wait_processed(lost, kept)

    assert lost.processing_status == Document.Processing.FAILED
    assert "FileNotFoundError" in lost.processing_error
    assert kept.processing_status == Document.Processing.DONE, kept.processing_error
    assert "Still here" in kept.extracted_text
    assert kept.page_count == 1
    assert process.poll() is None, "the worker crashed on the failing document"
