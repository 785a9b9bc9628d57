"""Logging filters (wired in settings.LOGGING)."""

import logging


class ClientErrorsWithoutTraceback(logging.Filter):
    """Django logs a refused request (403, 404) with the exception's traceback; for a
    client's mistake one line says it all, and the tracebacks hid the real errors. Server
    errors (5xx) keep theirs."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "django.request" and getattr(record, "status_code", 500) < 500:
            record.exc_info = None
            record.exc_text = None
        return True
