"""Plain text and CSV: UTF-8, told apart by csv.Sniffer."""

import csv
import io

from documents.filetypes.common import ALLOWED_LABEL, CSV, TXT, Detected, refuse

TEXT_SNIFF_BYTES = 64 * 1024


def detect(stream) -> Detected:
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
