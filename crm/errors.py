"""Domain errors raised by services; views turn them into form errors or 4xx answers.

Where a view does not catch them, they become responses in one place: PermissionDenied is
Django's own (so Django answers 403 with the site's 403 page), and
`crm.middleware.DomainErrorMiddleware` answers 400 for ValidationFailed."""

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied


class CrmError(Exception):
    """Base of every error a service raises on purpose."""


class ValidationFailed(CrmError):
    """Input that breaks a business rule. `field` names the form field when there is one."""

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


class PermissionDenied(CrmError, DjangoPermissionDenied):
    """The acting user may not do this to this record (a 403 wherever it is not caught)."""


class TooLarge(ValidationFailed):
    """An upload over its size limit (the API answers 413; forms show it on the field)."""
