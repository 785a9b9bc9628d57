"""What a file is, decided from its bytes (magic numbers, then a parse), never from its name
or the browser's claim. Anything not on the list, renamed executables, corrupt PDFs and zip
bombs are refused with a reason."""

import csv
import io
import zipfile
from dataclasses import dataclass

from crm.errors import ValidationFailed

PDF = "application/pdf"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
PNG = "image/png"
JPEG = "image/jpeg"
TXT = "text/plain"
CSV = "text/csv"

OFFICE_ROOTS = {"word/": DOCX, "xl/": XLSX, "ppt/": PPTX}
# A zip that expands past this, or by more than this ratio, is treated as a bomb.
ZIP_MAX_UNCOMPRESSED = 200 * 1024 * 1024
ZIP_MAX_RATIO = 100
ZIP_MAX_ENTRIES = 5000
IMAGE_MAX_PIXELS = 50_000_000
TEXT_SNIFF_BYTES = 64 * 1024

ALLOWED_LABEL = "PDF, Word (DOCX), Excel (XLSX), PowerPoint (PPTX), PNG, JPEG, text or CSV"


@dataclass(frozen=True)
class Detected:
    mime_type: str
    page_count: int | None = None


def refuse(reason: str) -> ValidationFailed:
    return ValidationFailed(reason, field="file")


def detect(stream) -> Detected:
    """The file's type from its content; ValidationFailed with a reason otherwise. `stream`
    is a seekable binary file (Django's UploadedFile); it is left at position 0."""
    stream.seek(0)
    head = stream.read(64)
    stream.seek(0)
    try:
        if head.startswith(b"%PDF-"):
            return _pdf(stream)
        if head.startswith(b"\x89PNG\r\n\x1a\n"):
            return _image(stream, PNG, "PNG")
        if head.startswith(b"\xff\xd8\xff"):
            return _image(stream, JPEG, "JPEG")
        if head.startswith(b"PK\x03\x04"):
            return _office(stream)
        # Windows (MZ with the NUL bytes of its header: a text starting "MZ" is still text),
        # Linux and macOS programs.
        if (head.startswith(b"MZ") and b"\x00" in head) or head.startswith(
            (b"\x7fELF", b"\xca\xfe\xba\xbe", b"\xcf\xfa\xed\xfe", b"\xce\xfa\xed\xfe")
        ):
            raise refuse("This is a program, not a document; it was not stored.")
        return _text(stream)
    finally:
        stream.seek(0)


def _pdf(stream) -> Detected:
    from pypdf import PdfReader, apply_configuration
    from pypdf.errors import LimitReachedError

    try:
        # Counting pages loads every page object: cap them, or a 16 MB file of 99,000 tiny
        # pages takes half a gigabyte.
        with apply_configuration(page_tree_maximum_entries=max_pdf_pages()):
            reader = PdfReader(stream, strict=False)
            pages = len(reader.pages)
            if pages:
                reader.pages[0].mediabox  # noqa: B018 - touching the first page proves it parses
    except LimitReachedError as error:
        if "page tree" in str(error):
            raise refuse(f"This PDF has more than {max_pdf_pages():,} pages.") from None
        raise refuse("This PDF is too large to read safely (LimitReachedError).") from None
    except Exception as error:  # noqa: BLE001 - pypdf raises many types on hostile input
        # (PdfReadError, LimitReachedError, RecursionError, IndexError...): all mean "damaged".
        raise refuse(
            f"This PDF is damaged and cannot be read ({error.__class__.__name__})."
        ) from None
    if pages == 0:
        raise refuse("This PDF has no pages.")
    return Detected(PDF, page_count=pages)


def max_pdf_pages() -> int:
    from django.conf import settings

    return settings.DOCUMENT_MAX_PDF_PAGES


def _image(stream, mime_type: str, label: str) -> Detected:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(stream) as image:
            if image.width * image.height > IMAGE_MAX_PIXELS:
                raise refuse(f"This image is too large ({image.width}×{image.height} pixels).")
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise refuse(f"This {label} image is damaged ({error.__class__.__name__}).") from None
    except Image.DecompressionBombError:
        raise refuse("This image is too large to open safely.") from None
    return Detected(mime_type)


def _office(stream) -> Detected:
    try:
        archive = zipfile.ZipFile(stream)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError):
        raise refuse("This file looks like an Office document but is damaged.") from None
    with archive:
        entries = archive.infolist()
        if len(entries) > ZIP_MAX_ENTRIES:
            raise refuse("This file has too many parts to be a document (a zip bomb?).")
        expanded = sum(entry.file_size for entry in entries)
        packed = sum(entry.compress_size for entry in entries) or 1
        if expanded > ZIP_MAX_UNCOMPRESSED or expanded / packed > ZIP_MAX_RATIO:
            raise refuse(
                "This file expands to far more than its size (a zip bomb?); it was not stored."
            )
        names = {entry.filename for entry in entries}
        if "[Content_Types].xml" not in names:
            raise refuse(f"This zip file is not an Office document. Allowed: {ALLOWED_LABEL}.")
        for root, mime_type in OFFICE_ROOTS.items():
            if any(name.startswith(root) for name in names):
                if any(".." in name or name.startswith("/") for name in names):
                    raise refuse("This document contains unsafe file paths.")
                return Detected(mime_type)
    raise refuse(
        f"This zip file is not a Word, Excel or PowerPoint file. Allowed: {ALLOWED_LABEL}."
    )


def _text(stream) -> Detected:
    sample = stream.read(TEXT_SNIFF_BYTES)
    if not sample:
        raise refuse("The file is empty.")
    if b"\x00" in sample:
        raise refuse(f"This file type is not allowed. Allowed: {ALLOWED_LABEL}.")
    try:
        text = sample.decode("utf-8")
    except UnicodeDecodeError as error:
        if error.start < len(sample) - 4:  # not just a character cut at the sample's end
            raise refuse(
                f"This file is neither UTF-8 text nor an allowed type. Allowed: {ALLOWED_LABEL}."
            ) from None
        text = sample[: error.start].decode("utf-8")
    return Detected(CSV if _looks_like_csv(text) else TXT)


def _looks_like_csv(text: str) -> bool:
    lines = [line for line in text.splitlines()[:20] if line.strip()]
    if len(lines) < 2:
        return False
    try:
        dialect = csv.Sniffer().sniff("\n".join(lines), delimiters=",;\t")
    except csv.Error:
        return False
    widths = {len(row) for row in csv.reader(io.StringIO("\n".join(lines)), dialect)}
    return len(widths) == 1 and widths.pop() > 1
