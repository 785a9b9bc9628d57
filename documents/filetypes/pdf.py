"""PDF: parsed with pypdf, its pages counted (and capped)."""

from documents.filetypes.common import PDF, Detected, max_pdf_pages, refuse


def detect(stream) -> Detected:
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
