"""PDF: checked from its raw bytes first, then parsed with pypdf, its pages counted (and
capped).

Refused: a file that does not end at its last `%%EOF` (data appended after it, such as a zip
holding a program, beyond trailing whitespace), a PDF that is also a zip, and a PDF whose
cross-reference table is broken. pypdf would rebuild such a table by searching the file for
objects, and so does every viewer, each in its own way: what we extract and what a customer
sees could differ, so we ask for the file to be saved again instead. A password-protected PDF
is accepted (its structure is checked like any other) and stored without text."""

import re
import zipfile

from documents.filetypes.common import PDF, Detected, max_pdf_pages, refuse

WHITESPACE = b"\x00\t\n\x0c\r "  # PDF's white-space characters (ISO 32000-1, 7.2.2)
# How far before the last %%EOF its `startxref` may be.
STARTXREF_WINDOW = 1024
# Incremental updates chain their cross-reference sections; a real file has a handful.
MAX_XREF_SECTIONS = 1000
_WS = rb"[\x00\t\n\x0c\r ]"
# Numbers of at most 10 digits (a 25 MB file needs 8): a hostile 5,000-digit number must not
# reach int(), which refuses it with a ValueError.
_NUMBER = rb"(\d{1,10})(?!\d)"
STARTXREF = re.compile(rb"startxref" + _WS + rb"+" + _NUMBER)
SUBSECTION = re.compile(_WS + rb"*" + _NUMBER + rb"[ \t]+" + _NUMBER + rb"[ \t]*(?:\r\n|\r|\n)?")
ENTRY = re.compile(_WS + rb"*(\d{10})[ \t]+(\d{5})[ \t]+([nf])")
OBJECT_HEADER = re.compile(_WS + rb"*" + _NUMBER + _WS + rb"+" + _NUMBER + _WS + rb"*obj")
PREV = re.compile(rb"/Prev" + _WS + rb"*" + _NUMBER)
XREF_STREAM_TYPE = re.compile(rb"/Type" + _WS + rb"*/XRef\b")
TRAILER = re.compile(_WS + rb"*trailer")
SAVE_AGAIN = "Open it and save (or print) it as a new PDF, then upload that."


def detect(stream) -> Detected:
    data = stream.read()
    stream.seek(0)
    _check_end(data)
    _check_not_a_zip(stream)
    _check_cross_references(data)
    return _parse(stream)


def _check_end(data: bytes) -> None:
    end = data.rfind(b"%%EOF")
    if end < 0:
        raise refuse(
            "This PDF is damaged: it has no end-of-file marker (%%EOF), so it was probably cut "
            "short. Upload the complete file."
        )
    extra = data[end + len(b"%%EOF") :].strip(WHITESPACE)
    if extra:
        raise refuse(
            f"This PDF has {len(extra):,} bytes of other data appended after its end "
            "(%%EOF), a way to hide a file inside a PDF; it was not stored. " + SAVE_AGAIN
        )


def _check_not_a_zip(stream) -> None:
    """A zip archive (or a .jar, .docx...) found from the end of the file, as every zip tool
    looks for it: the file is two things at once."""
    try:
        polyglot = zipfile.is_zipfile(stream)
    finally:
        stream.seek(0)
    if polyglot:
        raise refuse(
            "This PDF is also a zip archive (a file is hidden in it); it was not stored. "
            + SAVE_AGAIN
        )


def _broken(detail: str) -> Exception:
    return refuse(
        f"This PDF is damaged: its cross-reference table is broken ({detail}). A PDF viewer "
        "may repair it, but not necessarily as we would. " + SAVE_AGAIN
    )


def _check_cross_references(data: bytes) -> None:
    """Walk the cross-reference sections from the last `startxref`, as a reader does: each
    must be where it is said to be, and each entry of a classic table must point at the
    object it names. Cross-reference streams (PDF 1.5) are checked for their place only."""
    end = data.rfind(b"%%EOF")
    pointers = list(STARTXREF.finditer(data, max(0, end - STARTXREF_WINDOW), end))
    if not pointers:
        raise _broken("no startxref before the end")
    offset, seen = int(pointers[-1].group(1)), set()
    while offset is not None:
        if offset in seen or len(seen) >= MAX_XREF_SECTIONS:
            raise _broken("its sections point at each other in a loop")
        seen.add(offset)
        if offset >= len(data):
            raise _broken("a section lies past the end of the file")
        position = offset
        while position < len(data) and data[position] in WHITESPACE:
            position += 1
        if data.startswith(b"xref", position):
            offset = _check_table(data, position + len(b"xref"))
        elif (header := OBJECT_HEADER.match(data, position)) and XREF_STREAM_TYPE.search(
            data, header.end(), _dictionary_end(data, header.end())
        ):
            prev = PREV.search(data, header.end(), _dictionary_end(data, header.end()))
            offset = int(prev.group(1)) if prev else None
        else:
            raise _broken(f"no cross-reference section at byte {offset:,}")


def _check_table(data: bytes, position: int) -> int | None:
    """One classic `xref` table and its trailer; the trailer's /Prev (an older section)."""
    while True:
        subsection = SUBSECTION.match(data, position)
        if subsection is None:
            break
        first, count = int(subsection.group(1)), int(subsection.group(2))
        position = subsection.end()
        for number in range(first, first + count):
            entry = ENTRY.match(data, position)
            if entry is None:
                raise _broken(f"entry {number} is unreadable")
            position = entry.end()
            offset = int(entry.group(1))
            if entry.group(3) == b"f" or offset == 0:
                continue
            header = OBJECT_HEADER.match(data, offset)
            if header is None or int(header.group(1)) != number:
                raise _broken(f"object {number} is not where the table says")
    trailer = TRAILER.match(data, position)
    if trailer is None:
        raise _broken("the table has no trailer")
    prev = PREV.search(data, trailer.end(), _dictionary_end(data, trailer.end()))
    return int(prev.group(1)) if prev else None


def _dictionary_end(data: bytes, start: int) -> int:
    """Where the dictionary starting at `start` ends, near enough to look for a key in it:
    the next `stream`, `startxref` or `endobj`, within 64 KB."""
    limit = min(len(data), start + 64 * 1024)
    ends = [data.find(word, start, limit) for word in (b"stream", b"startxref", b"endobj")]
    return min((end for end in ends if end >= 0), default=limit)


def _parse(stream) -> Detected:
    from pypdf import PdfReader, apply_configuration
    from pypdf.errors import DependencyError, LimitReachedError

    try:
        # Counting pages loads every page object: cap them, or a 16 MB file of 99,000 tiny
        # pages takes half a gigabyte.
        with apply_configuration(page_tree_maximum_entries=max_pdf_pages()):
            reader = PdfReader(stream, strict=False)
            if reader.is_encrypted and not _opens_without_password(reader):
                # Pages, text, everything but the structure checked above is encrypted.
                return Detected(PDF)
            pages = len(reader.pages)
            if pages:
                reader.pages[0].mediabox  # noqa: B018 - touching the first page proves it parses
    except DependencyError:
        return Detected(PDF)  # an encryption pypdf cannot open here: like a password
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


def _opens_without_password(reader) -> bool:
    """A PDF with only an owner password (printing or copying restricted) opens with the
    empty user password; one with a user password does not."""
    from pypdf import PasswordType

    return reader.decrypt("") != PasswordType.NOT_DECRYPTED
