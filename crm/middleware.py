"""Domain errors that reach the top of a request become answers here, not in each view."""

import logging

from django.http import HttpResponseBadRequest, JsonResponse

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
