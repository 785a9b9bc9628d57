"""What a file is, decided from its bytes (magic numbers, then a parse), never from its name
or the browser's claim. Anything not on the list, renamed executables, corrupt PDFs and zip
bombs are refused with a reason. One module per family: `pdf`, `office`, `images`, `text`."""

from documents.filetypes import images, office, pdf, text
from documents.filetypes.common import (
    ALLOWED_LABEL,
    CSV,
    DOCX,
    JPEG,
    PDF,
    PNG,
    PPTX,
    TXT,
    XLSX,
    Detected,
    max_pdf_pages,
    refuse,
)

__all__ = ["ALLOWED_LABEL", "CSV", "DOCX", "JPEG", "PDF", "PNG", "PPTX", "TXT", "XLSX",
           "Detected", "detect", "max_pdf_pages", "refuse"]  # fmt: skip


def detect(stream) -> Detected:
    """The file's type from its content; ValidationFailed with a reason otherwise. `stream`
    is a seekable binary file (Django's UploadedFile); it is left at position 0."""
    stream.seek(0)
    head = stream.read(64)
    stream.seek(0)
    try:
        if head.startswith(b"%PDF-"):
            return pdf.detect(stream)
        if head.startswith(b"\x89PNG\r\n\x1a\n"):
            return images.detect(stream, PNG, "PNG")
        if head.startswith(b"\xff\xd8\xff"):
            return images.detect(stream, JPEG, "JPEG")
        if head.startswith(b"PK\x03\x04"):
            return office.detect(stream)
        # Windows (MZ with the NUL bytes of its header: a text starting "MZ" is still text),
        # Linux and macOS programs.
        if (head.startswith(b"MZ") and b"\x00" in head) or head.startswith(
            (b"\x7fELF", b"\xca\xfe\xba\xbe", b"\xcf\xfa\xed\xfe", b"\xce\xfa\xed\xfe")
        ):
            raise refuse("This is a program, not a document; it was not stored.")
        return text.detect(stream)
    finally:
        stream.seek(0)
