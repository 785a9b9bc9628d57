"""After upload, in a worker: text for search, a preview and the page count. A file that
cannot be processed is marked so with the reason; the worker never crashes on it."""

import io
import logging

from django.core.files.base import ContentFile
from django.db import transaction

from documents import filetypes
from documents.models import Document

logger = logging.getLogger(__name__)

MAX_TEXT_CHARS = 1_000_000  # enough to search; a 2,000-page PDF must not fill the database
PREVIEW_TEXT_CHARS = 2_000
THUMBNAIL_SIZE = (480, 480)


def document_process(*, document_id: int) -> str:
    document = Document.objects.filter(pk=document_id).first()
    if document is None:
        return "gone"
    if document.processing_status == Document.Processing.DONE:
        return "already done"
    try:
        result = _extract(document)
    except Exception as error:  # noqa: BLE001 - any parser failure is recorded, not raised
        logger.warning("Document %s could not be processed: %s", document_id, error)
        Document.objects.filter(pk=document_id).update(
            processing_status=Document.Processing.FAILED,
            processing_error=f"{error.__class__.__name__}: {error}"[:1000],
        )
        return "failed"
    with transaction.atomic():
        document = Document.objects.select_for_update().filter(pk=document_id).first()
        if document is None:  # deleted while we read it
            return "gone"
        if document.processing_status == Document.Processing.DONE:  # a duplicate delivery won
            return "already done"
        document.extracted_text = result["text"][:MAX_TEXT_CHARS].replace("\x00", "")
        document.preview_text = result["text"][:PREVIEW_TEXT_CHARS].replace("\x00", "")
        document.page_count = result.get("pages", document.page_count)
        document.processing_note = result.get("note", "")
        fields = ["extracted_text", "preview_text", "page_count", "processing_status",
                  "processing_error", "processing_note"]  # fmt: skip
        if result.get("thumbnail"):
            document.preview_image.save("preview.png", ContentFile(result["thumbnail"]), save=False)
            fields.append("preview_image")
        document.processing_status = Document.Processing.DONE
        document.processing_error = ""
        document.save(update_fields=fields)
    return "done"


def _extract(document: Document) -> dict:
    with document.file.open("rb") as stream:
        kind = document.mime_type
        if kind == filetypes.PDF:
            return _pdf(stream)
        if kind == filetypes.DOCX:
            return _docx(stream)
        if kind in (filetypes.TXT, filetypes.CSV):
            # Stored as UTF-8 (documents.filetypes.text); a byte-order mark is not text.
            return {"text": stream.read(MAX_TEXT_CHARS * 4).decode("utf-8-sig", "replace")}
        if kind in (filetypes.PNG, filetypes.JPEG):
            return {"text": "", "thumbnail": _thumbnail(stream)}
        return {"text": ""}  # XLSX, PPTX: stored and downloadable, no text extracted yet


PASSWORD_PROTECTED = "password-protected: no text extracted"


def _pdf(stream) -> dict:
    from pypdf import PasswordType, PdfReader, apply_configuration
    from pypdf.errors import DependencyError

    with apply_configuration(page_tree_maximum_entries=filetypes.max_pdf_pages()):
        reader = PdfReader(stream, strict=False)
        if reader.is_encrypted:
            # Only an owner password (printing or copying restricted): opens with none.
            try:
                opened = reader.decrypt("") != PasswordType.NOT_DECRYPTED
            except DependencyError:  # an encryption pypdf cannot open here
                opened = False
            if not opened:
                return {"text": "", "note": PASSWORD_PROTECTED}
        parts, size = [], 0
        # Page by page, stopping at the cap: memory stays flat however long the PDF is.
        for page in reader.pages:
            text = page.extract_text() or ""
            parts.append(text)
            size += len(text)
            if size >= MAX_TEXT_CHARS:
                break
        return {"text": "\n".join(parts), "pages": len(reader.pages)}


def _docx(stream) -> dict:
    """The paragraphs' text, streamed from word/document.xml (python-docx would build the
    whole tree: a 25 MB DOCX holds 110 MB of XML and took 500 MB of memory)."""
    import zipfile

    from lxml import etree

    namespace = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
    parts, size = [], 0
    with zipfile.ZipFile(stream) as archive, archive.open("word/document.xml") as xml:
        for _, element in etree.iterparse(xml, events=("end",), tag=f"{namespace}p",
                                          resolve_entities=False, no_network=True):  # fmt: skip
            text = "".join(node.text or "" for node in element.iter(f"{namespace}t"))
            parts.append(text)
            size += len(text)
            element.clear()
            if size >= MAX_TEXT_CHARS:
                break
    return {"text": "\n".join(parts)}


def _thumbnail(stream) -> bytes:
    from PIL import Image

    with Image.open(stream) as image:
        image.draft("RGB", THUMBNAIL_SIZE)  # JPEG: decode at a reduced size, far less memory
        image.thumbnail(THUMBNAIL_SIZE)
        output = io.BytesIO()
        image.convert("RGB").save(output, format="PNG")
        return output.getvalue()
