"""Refused requests log one line; server errors keep their traceback."""

import logging
import sys

from crm.logfilters import ClientErrorsWithoutTraceback


def _record(status_code):
    try:
        raise PermissionError("nope")
    except PermissionError:
        exc_info = sys.exc_info()
    record = logging.LogRecord("django.request", logging.WARNING, __file__, 1, "Forbidden",
                               None, exc_info)  # fmt: skip
    record.status_code = status_code
    return record


def test_a_403_is_logged_without_its_traceback():
    record = _record(403)
    assert ClientErrorsWithoutTraceback().filter(record)
    assert record.exc_info is None
    assert "Traceback" not in logging.Formatter().format(record)


def test_a_500_keeps_its_traceback():
    record = _record(500)
    assert ClientErrorsWithoutTraceback().filter(record)
    assert "Traceback" in logging.Formatter().format(record)


def test_the_filter_is_on_the_console_handler(settings):
    assert "client_errors" in settings.LOGGING["handlers"]["console"]["filters"]
