"""Domain errors raised by services; views turn them into form errors or 4xx answers."""


class CrmError(Exception):
    """Base of every error a service raises on purpose."""


class ValidationFailed(CrmError):
    """Input that breaks a business rule. `field` names the form field when there is one."""

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


class PermissionDenied(CrmError):
    """The acting user may not do this to this record."""
