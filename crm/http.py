"""Small helpers shared by the views of every app."""

from collections.abc import Callable
from typing import Any

from django import forms
from django.utils.http import url_has_allowed_host_and_scheme

from crm.errors import ValidationFailed


def is_htmx(request) -> bool:
    return request.headers.get("HX-Request") == "true"


def add_service_error(form: forms.Form, error: ValidationFailed) -> None:
    """Show a service's domain error on the form field it names (or the whole form)."""
    field = error.field if error.field in form.fields else None
    form.add_error(field, error.message)


def submitted(request, form: forms.Form, save: Callable[[], Any]) -> tuple[bool, Any]:
    """(True, what `save` returned) once a POSTed form is valid and the service took it;
    (False, None) for a GET, an invalid form or the service's refusal, which is added to the
    form so that the page re-renders with it."""
    if request.method != "POST" or not form.is_valid():
        return False, None
    try:
        return True, save()
    except ValidationFailed as error:
        add_service_error(form, error)
        return False, None


def safe_next_url(request, default: str) -> str:
    """The posted `next` when it is a path on this site, else `default`: no open redirects,
    and nothing `redirect()` would take for a URL pattern's name (`next=abc`)."""
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    if candidate.startswith("/") and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return default


def querystring_without(request, *keys: str) -> str:
    params = request.GET.copy()
    for key in keys:
        params.pop(key, None)
    return params.urlencode()


def client_ip(request) -> str | None:
    """The client's address. Behind our own TLS proxy (BEHIND_TLS_PROXY) the first hop of
    X-Forwarded-For is the client; otherwise the header is the client's to forge."""
    from django.conf import settings
    from django.core.exceptions import ValidationError
    from django.core.validators import validate_ipv46_address

    candidate = request.META.get("REMOTE_ADDR")
    if getattr(settings, "BEHIND_TLS_PROXY", False):
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")[0].strip()
        candidate = forwarded or candidate
    try:
        validate_ipv46_address(candidate or "")
    except ValidationError:
        return None
    return candidate


FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value):
    """Text that a spreadsheet would run as a formula is prefixed with a quote (CSV injection);
    every CSV export writes its cells through this."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


MAX_JSON_DEPTH = 20


def json_for_storage(value, *, depth: int = 0):
    """`value` (parsed JSON) ready for a jsonb column: NUL characters, which PostgreSQL
    refuses in jsonb text, are dropped from every string and key. ValueError when it nests
    deeper than MAX_JSON_DEPTH (nobody's tracking details need more)."""
    if depth > MAX_JSON_DEPTH:
        raise ValueError(f"nested deeper than {MAX_JSON_DEPTH} levels")
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {
            str(key).replace("\x00", ""): json_for_storage(item, depth=depth + 1)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [json_for_storage(item, depth=depth + 1) for item in value]
    return value


def looks_like_id(value) -> bool:
    """ASCII digits that fit a bigint: what a database id from a query string or form can be
    ("²".isdigit() is true too, and the database refuses it, and anything past 18 digits)."""
    text = str(value)
    return text.isascii() and text.isdigit() and len(text) < 19
