"""After upload, in a worker: text for search, a preview and the page count. A file that
cannot be processed is marked so with the reason; the worker never crashes on it."""

import io
import logging
import re
import warnings
import zipfile

from django.core.files.base import ContentFile
from django.db import transaction

from crm.reactions import Event, react
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
        react(Event.RECORDS_CHANGED, model="document", ids=[document.pk])  # text searchable
    return "done"


def _extract(document: Document) -> dict:
    with document.file.open("rb") as stream:
        kind = document.mime_type
        if kind == filetypes.PDF:
            return _pdf(stream)
        if kind == filetypes.DOCX:
            return _docx(stream)
        if kind == filetypes.XLSX:
            return _xlsx(stream)
        if kind == filetypes.PPTX:
            return _pptx(stream)
        if kind in (filetypes.TXT, filetypes.CSV):
            # Stored as UTF-8 (documents.filetypes.text); a byte-order mark is not text.
            return {"text": stream.read(MAX_TEXT_CHARS * 4).decode("utf-8-sig", "replace")}
        if kind in (filetypes.PNG, filetypes.JPEG):
            return {"text": "", "thumbnail": _thumbnail(stream)}
        return {"text": ""}


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


WORD = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
DRAWING = "{http://schemas.openxmlformats.org/drawingml/2006/main}"
PRESENTATION = "{http://schemas.openxmlformats.org/presentationml/2006/main}"
RELATIONSHIP = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
PACKAGE_RELATIONSHIP = "{http://schemas.openxmlformats.org/package/2006/relationships}"


class _Text:
    """Text gathered part by part up to MAX_TEXT_CHARS: `full` says when to stop reading."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.size = 0

    def add(self, line: str) -> None:
        self.lines.append(line)
        self.size += len(line) + 1

    @property
    def full(self) -> bool:
        return self.size >= MAX_TEXT_CHARS

    def result(self) -> dict:
        return {"text": "\n".join(self.lines)}


def _paragraphs(archive: zipfile.ZipFile, part: str, paragraph: str, run_text: str,
                text: _Text, *, skip_empty: bool = False) -> None:  # fmt: skip
    """Each paragraph of one XML part as a line, streamed (python-docx or python-pptx would
    build the whole tree: a 25 MB DOCX holds 110 MB of XML and took 500 MB of memory)."""
    from lxml import etree

    with archive.open(part) as xml:
        for _, element in etree.iterparse(xml, events=("end",), tag=paragraph,
                                          resolve_entities=False, no_network=True):  # fmt: skip
            line = "".join(node.text or "" for node in element.iter(run_text))
            element.clear()
            if line or not skip_empty:
                text.add(line)
            if text.full:
                return


def _numbered(names, pattern: str) -> list[str]:
    """The parts matching `pattern` (with one number in it), in their numbers' order."""
    found = [(int(match[1]), name) for name in names if (match := re.fullmatch(pattern, name))]
    return [name for _, name in sorted(found)]


def _docx(stream) -> dict:
    """Headers, the body, then footers: the order of a printed page."""
    text = _Text()
    with zipfile.ZipFile(stream) as archive:
        names = archive.namelist()
        parts = [
            *((name, True) for name in _numbered(names, r"word/header(\d*)\.xml")),
            ("word/document.xml", False),
            *((name, True) for name in _numbered(names, r"word/footer(\d*)\.xml")),
        ]
        for part, skip_empty in parts:
            if not text.full:
                _paragraphs(archive, part, f"{WORD}p", f"{WORD}t", text, skip_empty=skip_empty)
    return text.result()


def _pptx(stream) -> dict:
    """Each slide's paragraphs then its speaker notes, slide by slide in the presentation's
    order."""
    text = _Text()
    with zipfile.ZipFile(stream) as archive:
        names = set(archive.namelist())
        for part in _slide_parts(archive):
            if text.full:
                break
            _paragraphs(archive, part, f"{DRAWING}p", f"{DRAWING}t", text, skip_empty=True)
            notes = _notes_part(archive, part, names)
            if notes and not text.full:
                _notes_paragraphs(archive, notes, text)
    return text.result()


NOTES_SLIDE = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/notesSlide"


def _notes_part(archive: zipfile.ZipFile, slide: str, names: set[str]) -> str | None:
    """The notes slide a slide's relationships name (ppt/slides/_rels/slideN.xml.rels)."""
    import posixpath

    from lxml import etree

    folder, name = posixpath.split(slide)
    rels = f"{folder}/_rels/{name}.rels"
    if rels not in names:
        return None
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
    try:
        with archive.open(rels) as xml:
            tree = etree.parse(xml, parser)
    except etree.XMLSyntaxError:
        return None
    for relationship in tree.iter(f"{PACKAGE_RELATIONSHIP}Relationship"):
        if relationship.get("Type") == NOTES_SLIDE:
            target = relationship.get("Target", "")
            part = target.lstrip("/") if target.startswith("/") else f"{folder}/{target}"
            part = posixpath.normpath(part)
            return part if part in names else None
    return None


def _notes_paragraphs(archive: zipfile.ZipFile, part: str, text: _Text) -> None:
    """The paragraphs of a notes slide's body placeholder (what PowerPoint shows as the
    notes), streamed; not its slide image or slide number placeholders."""
    from lxml import etree

    placeholder = f"{PRESENTATION}nvSpPr/{PRESENTATION}nvPr/{PRESENTATION}ph"
    with archive.open(part) as xml:
        for _, shape in etree.iterparse(xml, events=("end",), tag=f"{PRESENTATION}sp",
                                        resolve_entities=False, no_network=True):  # fmt: skip
            ph = shape.find(placeholder)
            if ph is not None and ph.get("type") == "body":
                for paragraph in shape.iter(f"{DRAWING}p"):
                    line = "".join(node.text or "" for node in paragraph.iter(f"{DRAWING}t"))
                    if line:
                        text.add(line)
                    if text.full:
                        return
            shape.clear()


def _slide_parts(archive: zipfile.ZipFile) -> list[str]:
    """The slides as ppt/presentation.xml lists them (its relationships name their parts);
    by their file numbers when that list cannot be read."""
    import posixpath

    from lxml import etree

    names = set(archive.namelist())
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
    try:
        with archive.open("ppt/_rels/presentation.xml.rels") as xml:
            targets = {
                relationship.get("Id"): relationship.get("Target", "")
                for relationship in etree.parse(xml, parser).iter(
                    f"{PACKAGE_RELATIONSHIP}Relationship"
                )
            }
        with archive.open("ppt/presentation.xml") as xml:
            ids = [
                slide.get(f"{RELATIONSHIP}id")
                for slide in etree.parse(xml, parser).iter(f"{PRESENTATION}sldId")
            ]
    except (KeyError, etree.XMLSyntaxError):
        ids, targets = [], {}
    parts = []
    for relationship_id in ids:
        target = targets.get(relationship_id, "")
        part = target.lstrip("/") if target.startswith("/") else f"ppt/{target}"
        part = posixpath.normpath(part)
        if part in names and part not in parts:
            parts.append(part)
    return parts or _numbered(names, r"ppt/slides/slide(\d+)\.xml")


def _xlsx(stream) -> dict:
    """Each sheet's name, then its rows (the cells' values, tab-separated), read with
    openpyxl in read-only mode: rows are streamed, never the whole workbook in memory."""
    from openpyxl import load_workbook

    text = _Text()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # openpyxl warns about styles and extensions it skips
        workbook = load_workbook(stream, read_only=True, data_only=True)
        try:
            for sheet in workbook.worksheets:
                if text.full:
                    break
                text.add(sheet.title)
                # Its declared size may be a lie (A1:XFD1048576): read the rows there are.
                sheet.reset_dimensions()
                for row in sheet.iter_rows(values_only=True):
                    cells = [str(value) for value in row if value is not None and value != ""]
                    if cells:
                        text.add("\t".join(cells))
                    if text.full:
                        break
        finally:
            workbook.close()
    return text.result()


def _thumbnail(stream) -> bytes:
    from PIL import Image

    with Image.open(stream) as image:
        image.draft("RGB", THUMBNAIL_SIZE)  # JPEG: decode at a reduced size, far less memory
        image.thumbnail(THUMBNAIL_SIZE)
        output = io.BytesIO()
        image.convert("RGB").save(output, format="PNG")
        return output.getvalue()
