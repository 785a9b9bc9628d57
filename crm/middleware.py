"""Domain errors that reach the top of a request become answers here, not in each view."""

import logging

from django.db import OperationalError
from django.http import HttpResponseBadRequest, JsonResponse
from django.shortcuts import render
from django.utils.cache import patch_cache_control

from crm.errors import ValidationFailed
from crm.http import is_htmx

logger = logging.getLogger("django.request")


def _wants_json(request) -> bool:
    """htmx, a client asking for JSON, or the JSON API (/api/) gets its errors as JSON."""
    return (
        is_htmx(request)
        or "application/json" in request.headers.get("Accept", "")
        or request.path.startswith("/api/")
    )


def _statement_timed_out(exception: Exception) -> bool:
    """PostgreSQL cancelled the statement at its statement_timeout (crm/settings.py)."""
    if not isinstance(exception, OperationalError):
        return False
    try:
        from psycopg.errors import QueryCanceled
    except ImportError:  # SQLite only: no statement timeout there
        return False
    return isinstance(exception.__cause__, QueryCanceled)


class DomainErrorMiddleware:
    """A service's ValidationFailed that no view turned into a form error answers 400 with
    its message (JSON for API and htmx callers); a statement PostgreSQL cancelled at the
    web's statement timeout answers 503 with a page that says so. PermissionDenied needs
    nothing here: it is Django's own, which answers 403."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if _statement_timed_out(exception):
            logger.error("Statement timeout on %s: %s", request.path, exception)
            if _wants_json(request):
                return JsonResponse({"error": "This took too long and was stopped."}, status=503)
            return render(request, "503.html", status=503)
        if not isinstance(exception, ValidationFailed):
            return None
        logger.warning("Bad request (%s): %s", exception.message, request.path)
        if _wants_json(request):
            return JsonResponse({"error": exception.message}, status=400)
        return HttpResponseBadRequest(exception.message, content_type="text/plain")


class PrivatePagesMiddleware:
    """What a signed-in user is shown is theirs: no shared cache (a proxy, a shared
    computer's browser cache) may keep it. Pages that set their own Cache-Control keep it."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and not response.has_header("Cache-Control"):
            patch_cache_control(response, private=True, no_store=True)
        return response


class NulCharacterMiddleware:
    """A NUL character can be in no text PostgreSQL stores or compares, and no one types
    it: a query string or form field carrying one answers 400, before any view passes it to
    a query (where it would fail as a 500). JSON bodies are cleaned where they are stored."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if (
            "\x00" in request.path
            or _has_nul(request.GET)
            or (
                request.method == "POST"
                and request.content_type == "application/x-www-form-urlencoded"
                and _has_nul(request.POST)
            )
        ):
            message = "The request contains a NUL character, which is never valid here."
            if request.path.startswith("/api/"):  # the API's error shape (api.errors)
                return JsonResponse({"detail": message, "code": "invalid"}, status=400)
            if _wants_json(request):
                return JsonResponse({"error": message}, status=400)
            return HttpResponseBadRequest(message, content_type="text/plain")
        return self.get_response(request)


def _has_nul(query) -> bool:
    return any("\x00" in key or any("\x00" in value for value in values)
               for key, values in query.lists())  # fmt: skip
