"""Every API error is JSON of one shape: {"detail": "...", "code": "...", "errors": {...}}
(`errors`, field -> messages, only for 400). Domain errors from the services become 4xx here:
ValidationFailed 400 on its field, StageConflict 409, TooLarge 413, PermissionDenied 403."""

from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from crm.errors import TooLarge, ValidationFailed
from sales.services import StageConflict

NON_FIELD = "non_field_errors"


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The record changed meanwhile."
    default_code = "conflict"


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request is too large."
    default_code = "too_large"


def _as_drf(exc):
    """A domain or Django error as the DRF exception it answers as."""
    if isinstance(exc, StageConflict):
        return Conflict(exc.message, code="stage_conflict")
    if isinstance(exc, TooLarge):
        return PayloadTooLarge(exc.message)
    if isinstance(exc, ValidationFailed):
        return exceptions.ValidationError({exc.field or NON_FIELD: [exc.message]})
    if isinstance(exc, RequestDataTooBig):
        return PayloadTooLarge()
    if isinstance(exc, Http404):
        return exceptions.NotFound()
    if isinstance(exc, DjangoPermissionDenied):
        message = str(exc) or exceptions.PermissionDenied.default_detail
        return exceptions.PermissionDenied(message)
    return exc


def _errors(detail) -> dict:
    if isinstance(detail, dict):
        return {key: _messages(value) for key, value in detail.items()}
    return {NON_FIELD: _messages(detail)}


def _messages(value) -> list:
    if isinstance(value, list):
        flat = []
        for item in value:
            flat.extend(_messages(item) if isinstance(item, list | dict) else [str(item)])
        return flat
    if isinstance(value, dict):
        return [f"{key}: {message}" for key, item in value.items() for message in _messages(item)]
    return [str(value)]


def exception_handler(exc, context):
    exc = _as_drf(exc)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # a bug: Django's 500 (tests fail on it)
    if isinstance(exc, exceptions.ValidationError):
        body = {"detail": "Invalid input.", "code": "invalid", "errors": _errors(exc.detail)}
    else:
        detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
        code = exc.get_codes() if isinstance(exc, exceptions.APIException) else "error"
        body = {"detail": str(detail), "code": code if isinstance(code, str) else "error"}
    response.data = body
    set_rollback()
    return response


@csrf_exempt  # it changes nothing; a POST there is a 404, not a CSRF page
@login_not_required
def json_not_found(request, *args, **kwargs):
    """Any other path under /api/: a JSON 404, not the site's HTML page."""
    return JsonResponse({"detail": "Not found.", "code": "not_found"}, status=404)


def error_response(status_code: int, detail: str, code: str) -> Response:
    return Response({"detail": detail, "code": code}, status=status_code)
