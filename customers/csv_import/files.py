"""An import's file: decoded and stored in pieces as it is uploaded, and read back as rows
one piece at a time, so memory stays flat whatever the file's size.

Text is kept decoded (UTF-8, with or without a BOM, else Windows-1252), with every line end
as "\\n". Pieces are cut anywhere, even inside a quoted cell: the reader joins them again.
"""

import codecs
import csv
import io
from collections.abc import Iterable, Iterator

from crm.errors import ValidationFailed
from customers.models import CustomerImport, CustomerImportChunk

READ_BYTES = 1024 * 1024
SNIFF_CHARS = 8192
DELIMITERS = ",;\t"
ENCODINGS = ("utf-8", "cp1252")


def _byte_pieces(uploaded_file) -> Iterator[bytes]:
    # Not UploadedFile.chunks(): an in-memory upload gives itself whole there.
    uploaded_file.seek(0)
    while piece := uploaded_file.read(READ_BYTES):
        yield piece


def _binary_refusal() -> ValidationFailed:
    return ValidationFailed("This file is not a CSV file (it contains binary data).", field="file")


def detect_encoding(uploaded_file) -> str:
    """UTF-8 when the whole file decodes as UTF-8, else Windows-1252 (Excel's "CSV" on
    Windows); a NUL byte means it is no text file at all."""
    for encoding in ENCODINGS:
        decoder = codecs.getincrementaldecoder(encoding)()
        try:
            for piece in _byte_pieces(uploaded_file):
                if b"\x00" in piece:
                    raise _binary_refusal()
                decoder.decode(piece)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            continue
        return encoding
    raise ValidationFailed(
        "This file is not a readable CSV file: save it as UTF-8 CSV and try again.",
        field="file",
    )


def decoded_pieces(uploaded_file, encoding: str) -> Iterator[str]:
    """The upload's text, a piece at a time, without a BOM and with "\\n" line ends."""
    codec = "utf-8-sig" if encoding == "utf-8" else encoding
    decoder = io.IncrementalNewlineDecoder(codecs.getincrementaldecoder(codec)(), translate=True)
    for piece in _byte_pieces(uploaded_file):
        text = decoder.decode(piece)
        if text:
            yield text
    tail = decoder.decode(b"", final=True)
    if tail:
        yield tail


def stored(pieces: Iterable[str], customer_import: CustomerImport) -> Iterator[str]:
    """Pass the pieces on, saving each as the import's next chunk first."""
    for position, text in enumerate(pieces):
        CustomerImportChunk.objects.create(
            customer_import=customer_import, position=position, text=text
        )
        yield text


def stored_pieces(customer_import: CustomerImport) -> Iterator[str]:
    """The import's text, a piece at a time (one query per piece, one piece in memory)."""
    chunks = CustomerImportChunk.objects.filter(customer_import=customer_import)
    positions = list(chunks.order_by("position").values_list("position", flat=True))
    if not positions:  # uploaded before the chunks existed
        if customer_import.content:
            yield customer_import.content
        return
    for position in positions:
        yield chunks.values_list("text", flat=True).get(position=position)


def sniff_delimiter(sample: str) -> str:
    try:
        return csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
    except csv.Error:
        return ","


def _lines(pieces: Iterable[str]) -> Iterator[str]:
    pending = ""
    for piece in pieces:
        *complete, pending = (pending + piece).split("\n")
        for line in complete:
            yield line + "\n"
    if pending:
        yield pending


def read_rows(pieces: Iterable[str], delimiter: str = "") -> tuple[str, Iterator[list[str]]]:
    """(the delimiter, the rows, header first, blank rows left out), read lazily; a file
    that is not valid CSV raises ValidationFailed when the reader gets there."""
    pieces = iter(pieces)
    first = next(pieces, "")
    if not delimiter:
        delimiter = sniff_delimiter(first[:SNIFF_CHARS])

    def all_pieces() -> Iterator[str]:
        if first:
            yield first
        yield from pieces

    def rows() -> Iterator[list[str]]:
        reader = csv.reader(_lines(all_pieces()), csv.excel, delimiter=delimiter)
        try:
            for row in reader:
                if any(cell.strip() for cell in row):
                    yield row
        except csv.Error as exc:
            raise ValidationFailed(
                f"This file is not valid CSV (line {reader.line_num}): {exc}.", field="file"
            ) from exc

    return delimiter, rows()


def import_rows(customer_import: CustomerImport) -> Iterator[list[str]]:
    """The stored file's rows, header first."""
    _, rows = read_rows(stored_pieces(customer_import), customer_import.delimiter)
    return rows


class PieceWriter:
    """Rows written as CSV into an import's chunks, a piece at a time."""

    def __init__(self, customer_import: CustomerImport, *, piece_chars: int = 1_000_000):
        self.customer_import = customer_import
        self.piece_chars = piece_chars
        self.buffer = io.StringIO()
        self.writer = csv.writer(self.buffer, lineterminator="\n")
        self.position = 0

    def writerow(self, row: list[str]) -> None:
        self.writer.writerow(row)
        if self.buffer.tell() >= self.piece_chars:
            self.flush()

    def flush(self) -> None:
        text = self.buffer.getvalue()
        if text:
            CustomerImportChunk.objects.create(
                customer_import=self.customer_import, position=self.position, text=text
            )
            self.position += 1
        self.buffer.seek(0)
        self.buffer.truncate()
