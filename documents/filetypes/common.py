"""What every file check shares: the accepted types, what detection answers, and how a
file is refused."""

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

ALLOWED_LABEL = "PDF, Word (DOCX), Excel (XLSX), PowerPoint (PPTX), PNG, JPEG, text or CSV"


@dataclass(frozen=True)
class Detected:
    mime_type: str
    page_count: int | None = None
    # What to store instead of the upload's bytes: a UTF-16 text re-encoded as UTF-8.
    utf8: bytes | None = None


def refuse(reason: str) -> ValidationFailed:
    return ValidationFailed(reason, field="file")


def max_pdf_pages() -> int:
    from django.conf import settings

    return settings.DOCUMENT_MAX_PDF_PAGES
