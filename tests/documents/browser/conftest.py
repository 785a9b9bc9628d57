"""The browser tests' fixtures (a Chromium per module, a page per test that fails on any
JavaScript error, blocked script or 5xx, and a login) are those of tests/e2e."""

from tests.e2e.conftest import browser, login, page  # noqa: F401
