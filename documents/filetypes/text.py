"""Plain text and CSV: UTF-8 (a byte-order mark allowed) or UTF-16/UTF-32 with their
byte-order mark (Notepad's "Unicode", Excel's "Unicode text"), or UTF-16 without the mark,
recognised by the NUL byte in every other place that Latin-script text has; all but UTF-8 is
stored re-encoded as UTF-8. The whole file is decoded, so a bad byte far in is found too.
Markup (HTML, SVG, XML) is refused: a browser runs its scripts if the file is ever rendered as
a page."""

import codecs
import csv
import io
import re

from documents.filetypes.common import ALLOWED_LABEL, CSV, TXT, Detected, refuse

TEXT_SNIFF_BYTES = 64 * 1024
CHUNK_BYTES = 1024 * 1024
# Checked before the UTF-16 ones: a UTF-32 little-endian mark starts like a UTF-16 one.
BYTE_ORDER_MARKS = [
    (codecs.BOM_UTF32_LE, "utf-32-le", "UTF-32"),
    (codecs.BOM_UTF32_BE, "utf-32-be", "UTF-32"),
    (codecs.BOM_UTF8, "utf-8", "UTF-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le", "UTF-16"),
    (codecs.BOM_UTF16_BE, "utf-16-be", "UTF-16"),
]
# A file that starts as markup: an XML declaration or processing instruction, a doctype, a
# comment, or one of the tags browsers sniff as HTML (WHATWG MIME Sniffing, 7.1) or SVG.
MARKUP_START = re.compile(
    r"\A\s*<(?:\?xml|!doctype|!--|(?:html|head|body|script|iframe|svg|math|h1|div|font|table|a"
    r"|style|title|b|br|p|img|object|embed|meta|link|base|form|frameset)[\s/>])",
    re.IGNORECASE,
)
# Anywhere in the file: elements that run or load something, with or without a namespace
# prefix (the pattern starts with "<", which keeps the search fast), and the XHTML and SVG
# namespaces.
ACTIVE_MARKUP = re.compile(
    r"<\s*(?:[\w.-]+:)?(?:script|iframe|frame|frameset|object|embed|applet|svg|html|body|meta"
    r"|base)[\s/>]|<\?xml-stylesheet",
    re.IGNORECASE,
)
ACTIVE_NAMESPACES = ("http://www.w3.org/1999/xhtml", "http://www.w3.org/2000/svg")
# UTF-16 without a mark: at least this share of the sniffed byte pairs has a NUL on one side
# (Latin-script text: "A" is 41 00 little-endian), and nearly none on the other.
UTF16_NUL_SHARE = 0.5
UTF16_OTHER_SIDE_NUL_SHARE = 0.05
# Control characters that text has; any other one in a guessed UTF-16 text means binary data.
TEXT_CONTROLS = frozenset("\t\n\r\f\v")
MARKUP_OVERLAP = 64  # characters kept between chunks so a match across their edge is found


def detect(stream) -> Detected:
    head = stream.read(4)
    if not head:
        raise refuse("The file is empty.")
    mark, encoding, label = next(
        (entry for entry in BYTE_ORDER_MARKS if head.startswith(entry[0])), (b"", "utf-8", "")
    )
    stream.seek(len(mark))
    if not mark:
        head = stream.read(TEXT_SNIFF_BYTES)
        if b"\x00" in head:
            encoding = _utf16_without_mark(head)
            label = "UTF-16"
    stream.seek(len(mark))
    sample, utf8 = _decode(stream, encoding, label)
    if (
        not mark
        and encoding != "utf-8"
        and any(ord(char) < 32 and char not in TEXT_CONTROLS for char in sample)
    ):
        raise refuse(f"This file type is not allowed. Allowed: {ALLOWED_LABEL}.")
    kind = CSV if _looks_like_csv(sample) else TXT
    return Detected(kind, utf8=None if encoding == "utf-8" else codecs.BOM_UTF8 + utf8)


def _utf16_without_mark(head: bytes) -> str:
    """The UTF-16 byte order whose pattern of NUL bytes `head` has; refuses other NULs."""
    pairs = len(head) // 2
    even_nuls = head[0 : pairs * 2 : 2].count(0)
    odd_nuls = head[1 : pairs * 2 : 2].count(0)
    for nuls, other, encoding in [(odd_nuls, even_nuls, "utf-16-le"),
                                  (even_nuls, odd_nuls, "utf-16-be")]:  # fmt: skip
        if nuls >= UTF16_NUL_SHARE * pairs > 0 and other <= UTF16_OTHER_SIDE_NUL_SHARE * pairs:
            return encoding
    raise refuse(f"This file type is not allowed. Allowed: {ALLOWED_LABEL}.")


def _decode(stream, encoding: str, label: str) -> tuple[str, bytes]:
    """The text's first TEXT_SNIFF_BYTES characters and, for an encoding other than UTF-8,
    the whole text as UTF-8; refuses undecodable text, NUL characters and markup."""
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    sample, tail, utf8 = "", "", io.BytesIO()
    position = 0
    while True:
        chunk = stream.read(CHUNK_BYTES)
        try:
            text = decoder.decode(chunk, final=not chunk)
        except UnicodeDecodeError:
            if label:
                raise refuse(f"This {label} text is damaged (it cannot be decoded).") from None
            raise refuse(
                f"This file is neither UTF-8 text nor an allowed type. Allowed: {ALLOWED_LABEL}."
            ) from None
        if "\x00" in text:
            raise refuse(f"This file type is not allowed. Allowed: {ALLOWED_LABEL}.")
        found = (position == 0 and MARKUP_START.match(text)) or ACTIVE_MARKUP.search(tail + text)
        if found:
            raise _markup(found.group(0).strip())
        namespace = next((name for name in ACTIVE_NAMESPACES if name in tail + text), None)
        if namespace:
            raise _markup(namespace)
        if len(sample) < TEXT_SNIFF_BYTES:
            sample += text[: TEXT_SNIFF_BYTES - len(sample)]
        if encoding != "utf-8":
            utf8.write(text.encode("utf-8"))
        tail = text[-MARKUP_OVERLAP:]
        position += len(text)
        if not chunk:
            break
    if position == 0:
        raise refuse("The file is empty.")
    return sample, utf8.getvalue()


def _markup(found: str) -> Exception:
    return refuse(
        f"This file is markup (HTML, SVG or XML: “{found[:40]}”), which a browser runs as a "
        "web page; it was not stored. Upload it as PDF or as plain text."
    )


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
