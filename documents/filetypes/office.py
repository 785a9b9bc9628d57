"""Word, Excel and PowerPoint (OOXML zip packages): the zip's directory checked for bombs
and unsafe paths, the kind read from its parts. Macro-enabled files (.xlsm, .pptm, .docm, or
any package holding a VBA project or Excel 4.0 macro sheets) are refused: they run code."""

import re
import zipfile
import zlib

from documents.filetypes.common import ALLOWED_LABEL, DOCX, PPTX, XLSX, Detected, refuse

OFFICE_ROOTS = {"word/": DOCX, "xl/": XLSX, "ppt/": PPTX}
# A zip that expands past this, or by more than this ratio, is treated as a bomb.
ZIP_MAX_UNCOMPRESSED = 200 * 1024 * 1024
ZIP_MAX_RATIO = 100
ZIP_MAX_ENTRIES = 5000
# The parts that hold macros, and the content types that declare them.
MACRO_PARTS = re.compile(r"(?:^|/)(?:vbaProject\.bin|vbaData\.xml|(?:intl)?macrosheets/)", re.I)
MACRO_CONTENT_TYPES = (b"macroenabled", b"vbaproject", b"macrosheet")
CONTENT_TYPES_MAX_BYTES = 1024 * 1024


def detect(stream) -> Detected:
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
        _refuse_macros(archive, names)
        for root, mime_type in OFFICE_ROOTS.items():
            if any(name.startswith(root) for name in names):
                if any(".." in name or name.startswith("/") for name in names):
                    raise refuse("This document contains unsafe file paths.")
                return Detected(mime_type)
    raise refuse(
        f"This zip file is not a Word, Excel or PowerPoint file. Allowed: {ALLOWED_LABEL}."
    )


def _refuse_macros(archive: zipfile.ZipFile, names: set[str]) -> None:
    try:
        with archive.open("[Content_Types].xml") as part:
            content_types = part.read(CONTENT_TYPES_MAX_BYTES).lower()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError, zlib.error):
        raise refuse("This file looks like an Office document but is damaged.") from None
    if any(MACRO_PARTS.search(name) for name in names) or any(
        kind in content_types for kind in MACRO_CONTENT_TYPES
    ):
        raise refuse(
            "This Office file contains macros (a macro-enabled .xlsm, .pptm or .docm runs code "
            "when opened); it was not stored. Save it without macros (as .xlsx, .pptx or "
            ".docx) and upload that."
        )
