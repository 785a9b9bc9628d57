"""documents.filetypes: the type comes from the bytes, never from the name or the browser."""

import io
import re
import zipfile

import pytest

from crm.errors import ValidationFailed
from documents import filetypes
from tests.documents import samples


def _detect(content: bytes) -> filetypes.Detected:
    return filetypes.detect(io.BytesIO(content))


@pytest.mark.parametrize("name", sorted(samples.ALLOWED))
def test_every_allowed_type_is_recognised_from_its_content(name):
    build, mime_type = samples.ALLOWED[name]
    assert _detect(build()).mime_type == mime_type


@pytest.mark.parametrize("name", sorted(samples.ALLOWED))
def test_the_name_and_the_claimed_type_do_not_matter(name):
    build, mime_type = samples.ALLOWED[name]
    upload = samples.upload("whatever.exe", build(), content_type="application/x-msdownload")
    assert filetypes.detect(upload).mime_type == mime_type


def test_pdf_page_count_is_read():
    assert _detect(samples.pdf_with_text("one", "two", "three")).page_count == 3
    assert _detect(samples.pdf_blank(pages=2)).page_count == 2


def test_the_stream_is_left_at_the_start():
    stream = io.BytesIO(samples.pdf_with_text("Hello"))
    stream.seek(17)
    filetypes.detect(stream)
    assert stream.tell() == 0
    stream = io.BytesIO(samples.BINARY)
    with pytest.raises(ValidationFailed):
        filetypes.detect(stream)
    assert stream.tell() == 0


def test_text_and_csv_are_told_apart():
    assert _detect(b"a,b,c\n1,2,3\n4,5,6\n").mime_type == filetypes.CSV
    assert _detect(b"a;b\n1;2\n").mime_type == filetypes.CSV
    assert _detect(b"Just one line, with a comma.\n").mime_type == filetypes.TXT
    assert _detect("Grüße aus Köln\n".encode()).mime_type == filetypes.TXT


def test_utf8_cut_at_the_end_of_the_sniffed_sample_is_still_text():
    text = ("é" * (filetypes.text.TEXT_SNIFF_BYTES // 2 + 10)).encode()
    # 64 KiB sample ends in the middle of a two-byte character.
    assert _detect(b"x" + text).mime_type == filetypes.TXT


def test_a_text_that_starts_with_mz_is_text_not_a_program():
    assert _detect(b"MZ Holdings quarterly notes\nAll fine.\n").mime_type == filetypes.TXT


def _refusal(content: bytes) -> str:
    with pytest.raises(ValidationFailed) as caught:
        _detect(content)
    assert caught.value.field == "file"
    return caught.value.message


def test_random_binary_is_refused():
    assert "not allowed" in _refusal(samples.BINARY)


def test_a_windows_program_is_refused():
    assert "program" in _refusal(samples.EXECUTABLE)


@pytest.mark.parametrize(
    "head", [b"\x7fELF\x02\x01\x01\x00", b"\xcf\xfa\xed\xfe\x07\x00\x00\x01"], ids=["elf", "macho"]
)
def test_other_programs_are_refused(head):
    assert "program" in _refusal(head + b"\x00" * 200)


def test_latin1_text_is_refused_with_a_reason():
    assert "UTF-8" in _refusal("Prix: 10 € — très cher, déjà payé, à bientôt\n".encode("cp1252"))


def test_an_empty_file_is_refused():
    assert "empty" in _refusal(b"")


def test_a_corrupt_pdf_is_refused():
    assert "damaged" in _refusal(samples.CORRUPT_PDF)


@pytest.mark.parametrize("cut", [20, 200, 400])
def test_a_truncated_pdf_is_refused(cut):
    assert "damaged" in _refusal(samples.pdf_with_text("Hello")[:cut])


def test_a_pdf_without_pages_is_refused():
    from pypdf import PdfWriter

    output = io.BytesIO()
    PdfWriter().write(output)
    assert "no pages" in _refusal(output.getvalue())


def test_any_parser_error_is_a_refusal(monkeypatch):
    """Whatever pypdf raises on hostile input (LimitReachedError, RecursionError...) is a
    refusal with a reason, never an exception escaping to the view."""
    from pypdf.errors import LimitReachedError

    def explode(*args, **kwargs):
        raise LimitReachedError("Declared size exceeds allowed limit")

    monkeypatch.setattr("pypdf.PdfReader", explode)
    assert "(LimitReachedError)" in _refusal(samples.pdf_with_text("Hello"))
    monkeypatch.setattr("pypdf.PdfReader", lambda *a, **k: (_ for _ in ()).throw(RecursionError))
    assert "(RecursionError)" in _refusal(samples.pdf_with_text("Hello"))


def test_a_damaged_png_is_refused():
    data = bytearray(samples.png(size=(40, 40)))
    data[40:60] = b"\x00" * 20
    assert "damaged" in _refusal(bytes(data))


def test_a_jpeg_header_on_garbage_is_refused():
    assert "damaged" in _refusal(b"\xff\xd8\xff\xe0" + b"garbage" * 50)


def test_an_image_with_too_many_pixels_is_refused(monkeypatch):
    monkeypatch.setattr(filetypes.images, "IMAGE_MAX_PIXELS", 100)
    assert "too large" in _refusal(samples.png(size=(20, 20)))


def test_a_docx_zip_bomb_is_refused():
    bomb = samples.zip_bomb(megabytes=300)
    assert len(bomb) < 2 * 1024 * 1024  # 300 MB of zeros, deflated
    assert "zip bomb" in _refusal(bomb)


def test_a_small_zip_expanding_past_the_ratio_is_refused():
    assert "zip bomb" in _refusal(samples.zip_bomb(megabytes=5))


def test_a_zip_declaring_a_huge_size_is_refused():
    assert "zip bomb" in _refusal(samples.zip_declaring_huge_size())


def test_a_zip_with_too_many_entries_is_refused(monkeypatch):
    monkeypatch.setattr(filetypes.office, "ZIP_MAX_ENTRIES", 3)
    assert "too many parts" in _refusal(samples.docx("x"))


def _zip(names: dict[str, str]) -> bytes:
    output = io.BytesIO()
    with zipfile.ZipFile(output, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in names.items():
            archive.writestr(name, text)
    return output.getvalue()


def test_a_plain_zip_is_not_an_office_document():
    assert "not an Office document" in _refusal(_zip({"readme.txt": "hi", "word/x.xml": "<x/>"}))


def test_an_office_package_of_an_unknown_kind_is_refused():
    assert "not a Word, Excel or PowerPoint" in _refusal(
        _zip({"[Content_Types].xml": "<Types/>", "visio/document.xml": "<x/>"})
    )


def test_an_office_package_with_traversal_paths_is_refused():
    data = _zip(
        {"[Content_Types].xml": "<Types/>", "word/document.xml": "<w/>", "../../evil.sh": "rm"}
    )
    assert "unsafe file paths" in _refusal(data)


def test_a_truncated_zip_is_refused():
    assert "damaged" in _refusal(samples.docx("hello")[:100])


def test_a_pdf_with_more_pages_than_allowed_is_refused_before_it_eats_memory(settings):
    from pypdf import PdfWriter

    settings.DOCUMENT_MAX_PDF_PAGES = 5
    writer = PdfWriter()
    for _ in range(8):
        writer.add_blank_page(width=72, height=72)
    output = io.BytesIO()
    writer.write(output)
    assert "more than 5 pages" in _refusal(output.getvalue())


# Markup is refused: a browser would run it if it ever rendered the file as a page -----------


@pytest.mark.parametrize(
    "content",
    [
        samples.SVG_WITH_SCRIPT,
        samples.SVG_ONLOAD,
        samples.HTML_PAGE,
        samples.HTML_FRAGMENT,
        samples.XML_WITH_SCRIPT,
        samples.PLAIN_XML,
        b"\xef\xbb\xbf" + samples.HTML_PAGE,
    ],
    ids=["svg script", "svg onload", "html page", "html fragment", "xml script", "xml", "bom"],
)
def test_markup_is_refused_with_the_reason(content):
    reason = _refusal(content)
    assert "markup" in reason and "HTML" in reason and "not stored" in reason


def test_markup_hidden_far_into_a_text_is_refused():
    assert "<script" in _refusal(samples.NOTES_HIDING_A_SCRIPT)


def test_markup_in_utf16_is_refused():
    assert "markup" in _refusal(samples.utf16(samples.HTML_PAGE.decode()))


def test_text_that_only_mentions_markup_is_text():
    assert _detect(samples.TEXT_ABOUT_MARKUP).mime_type == filetypes.TXT


# Encodings: UTF-8 (with or without a byte-order mark) and UTF-16 --------------------------


@pytest.mark.parametrize("byteorder", ["le", "be"])
def test_utf16_text_is_accepted_and_converted_to_utf8(byteorder):
    detected = _detect(samples.utf16("Grüße aus Köln\nBesprechung am Montag\n", byteorder))
    assert detected.mime_type == filetypes.TXT
    assert detected.utf8 == "\ufeffGrüße aus Köln\nBesprechung am Montag\n".encode()


@pytest.mark.parametrize("byteorder", ["le", "be"])
def test_utf16_without_a_byte_order_mark_is_recognised_by_its_nul_bytes(byteorder):
    text = "Grüße aus Köln\nBesprechung am Montag, 14 Uhr\n"
    detected = _detect(samples.utf16_without_bom(text, byteorder))
    assert detected.mime_type == filetypes.TXT
    assert detected.utf8 == "\ufeff".encode() + text.encode()


def test_a_utf16_csv_without_a_byte_order_mark_is_a_csv():
    csv_text = "name,email\nAda,ada@example.com\nGrace,g@example.com\n"
    detected = _detect(samples.utf16_without_bom(csv_text))
    assert detected.mime_type == filetypes.CSV
    assert detected.utf8.decode("utf-8-sig") == csv_text


def test_markup_in_utf16_without_a_byte_order_mark_is_refused():
    assert "markup" in _refusal(samples.utf16_without_bom(samples.HTML_PAGE.decode()))


@pytest.mark.parametrize(
    "content",
    [samples.ALTERNATING_NULS, b"ab\x00\x00cd\x00\x00" * 50, b"A\x00B\x00\x00\x00C\x00" * 50],
    ids=["control characters", "nul pairs", "a nul character"],
)
def test_binary_data_with_a_nul_pattern_is_not_taken_for_utf16(content):
    assert "not allowed" in _refusal(content)


def test_a_utf16_csv_is_a_csv():
    detected = _detect(samples.utf16("name\temail\nAda\tada@example.com\nGrace\tg@example.com\n"))
    assert detected.mime_type == filetypes.CSV
    assert detected.utf8.decode("utf-8-sig").startswith("name\temail\n")


def test_utf8_with_a_byte_order_mark_is_kept_as_it_is():
    detected = _detect(b"\xef\xbb\xbf" + samples.CSV)
    assert detected.mime_type == filetypes.CSV
    assert detected.utf8 is None  # already UTF-8: stored byte for byte


def test_damaged_utf16_is_refused():
    lone_surrogate = b"\xff\xfeA\x00\x00\xd8B\x00"
    assert "UTF-16" in _refusal(lone_surrogate)


def test_a_latin1_character_past_the_sniffed_sample_is_refused():
    assert "UTF-8" in _refusal(b"notes\n" * 20_000 + "déjà vu\n".encode("cp1252"))


# PDFs: real producers accepted; appended data, polyglots and broken tables refused ---------


@pytest.mark.parametrize("name", samples.REAL_PDFS)
def test_pdfs_of_real_producers_are_accepted(name):
    detected = _detect(samples.file(name))
    assert detected.mime_type == filetypes.PDF
    assert detected.page_count in (1, 2)


def test_an_incrementally_updated_pdf_is_accepted():
    assert _detect(samples.pdf_updated_incrementally()).page_count == 1


def test_whitespace_after_the_end_of_a_pdf_is_fine():
    assert _detect(samples.pdf_with_trailing_whitespace()).mime_type == filetypes.PDF


def test_a_pdf_with_a_zip_appended_after_its_end_is_refused():
    reason = _refusal(samples.pdf_with_appended_zip())
    assert "appended after its end (%%EOF)" in reason and "not stored" in reason


def test_a_pdf_that_is_also_a_zip_is_refused():
    assert "also a zip archive" in _refusal(samples.pdf_with_appended_zip_and_a_new_end())


@pytest.mark.parametrize(
    "build",
    [samples.pdf_with_shifted_xref, samples.pdf_with_wrong_startxref, samples.pdf_without_xref],
    ids=["shifted offsets", "wrong startxref", "no table"],
)
def test_a_pdf_with_a_broken_cross_reference_table_is_refused(build):
    import pypdf

    assert len(pypdf.PdfReader(io.BytesIO(build())).pages) == 1  # pypdf would repair it
    reason = _refusal(build())
    assert "damaged: its cross-reference table is broken" in reason
    assert "save (or print) it as a new PDF" in reason


def test_a_pdf_cut_short_has_no_end_marker():
    pdf = samples.pdf_with_text("Hello")
    assert "no end-of-file marker" in _refusal(pdf[: len(pdf) - 10])


def test_a_password_protected_pdf_is_accepted_without_a_page_count():
    detected = _detect(samples.file("qpdf-aes256-password.pdf"))
    assert detected == filetypes.Detected(filetypes.PDF, page_count=None)


def test_a_password_protected_pdf_is_still_checked_for_appended_data():
    content = samples.file("qpdf-aes256-password.pdf") + b"PK\x03\x04 and more"
    assert "appended after its end" in _refusal(content)


# Office files with macros are refused ------------------------------------------------------


@pytest.mark.parametrize(
    "build",
    [
        samples.xlsm,
        samples.pptm,
        samples.xlsx_hiding_a_vba_project,
        samples.xlsx_with_an_excel4_macro_sheet,
    ],
    ids=["xlsm", "pptm", "vba project in an xlsx", "excel 4 macro sheet"],
)
def test_an_office_file_with_macros_is_refused(build):
    reason = _refusal(build())
    assert "contains macros" in reason and "not stored" in reason
    assert "without macros" in reason


@pytest.mark.parametrize(
    "change",
    [
        lambda pdf: re.sub(rb"startxref\n\d+", b"startxref\n" + b"9" * 5000, pdf),
        lambda pdf: pdf.replace(b"xref\n0 ", b"xref\n" + b"1" * 5000 + b" "),
        lambda pdf: re.sub(rb"startxref\n\d+", b"startxref\n99999999", pdf),
    ],
    ids=["huge startxref", "huge subsection", "startxref past the end"],
)
def test_absurd_numbers_in_a_pdf_are_a_refusal_not_an_error(change):
    assert "cross-reference table is broken" in _refusal(change(samples.pdf_with_text("x")))
