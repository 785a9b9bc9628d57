"""Domain errors that reach the top of a request become answers here, not in each view."""

import logging

from django.http import HttpResponseBadRequest, JsonResponse
from django.utils.cache import patch_cache_control

from crm.errors import ValidationFailed
from crm.http import is_htmx

logger = logging.getLogger("django.request")


class DomainErrorMiddleware:
    """A service's ValidationFailed that no view turned into a form error answers 400 with
    its message (JSON for API and htmx callers). PermissionDenied needs nothing here: it is
    Django's own, which answers 403."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not isinstance(exception, ValidationFailed):
            return None
        logger.warning("Bad request (%s): %s", exception.message, request.path)
        wants_json = is_htmx(request) or "application/json" in request.headers.get("Accept", "")
        if wants_json:
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
