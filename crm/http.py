"""Small helpers shared by the views of every app."""

from django import forms

from crm.errors import ValidationFailed


def is_htmx(request) -> bool:
    return request.headers.get("HX-Request") == "true"


def add_service_error(form: forms.Form, error: ValidationFailed) -> None:
    """Show a service's domain error on the form field it names (or the whole form)."""
    field = error.field if error.field in form.fields else None
    form.add_error(field, error.message)


def querystring_without(request, *keys: str) -> str:
    params = request.GET.copy()
    for key in keys:
        params.pop(key, None)
    return params.urlencode()
