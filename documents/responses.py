"""The HTTP answer that hands out a stored document, shared by the pages and the JSON API."""

from django.http import FileResponse

from documents.models import Document


def document_file_response(document: Document) -> FileResponse:
    """The file as an attachment under its safe download name (the detected type's extension),
    never sniffed or rendered by the browser as a page of this site."""
    response = FileResponse(
        document.file.open("rb"),
        as_attachment=True,
        filename=document.download_name,
        content_type=document.mime_type,
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response
