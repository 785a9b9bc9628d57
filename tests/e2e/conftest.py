"""Fixtures for the browser tests: one Chromium per module, a fresh context and page per test.

The app runs in pytest-django's `live_server` (a thread of this process, against the test
database). Playwright's sync API runs an event loop in the main thread, so Django's
"no ORM calls from async context" guard must be turned off for the data the tests create.
"""

import os
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TIMEOUT_MS = 10_000
EXPECT_TIMEOUT_MS = 5_000


@pytest.fixture(scope="module")
def browser():
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(
            f"Chromium is required for the browser tests but {CHROMIUM} is missing or not "
            "executable. Install Debian's `chromium` package (`playwright install` is not "
            "available here).",
            pytrace=False,
        )
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def browser_context_args() -> dict:
    """Options of each test's browser context (a viewport, JavaScript off); a module
    overrides this fixture to run its tests on another device."""
    return {}


@pytest.fixture
def page(browser, live_server, transactional_db, browser_context_args):
    """A page in a fresh context; the test fails on a JavaScript error, anything the
    Content-Security-Policy blocked, or a 5xx response."""
    context = browser.new_context(base_url=live_server.url, **browser_context_args)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"JavaScript error: {error}"))
    # What the Content-Security-Policy blocked (an inline script or handler, a stray source).
    page.on(
        "console",
        lambda message: (
            problems.append(f"Blocked: {message.text}")
            if message.type == "error" and "Content Security Policy" in message.text
            else None
        ),
    )
    page.on(
        "response",
        lambda response: (
            problems.append(f"HTTP {response.status} from {response.request.method} {response.url}")
            if response.status >= 500
            else None
        ),
    )
    in_flight: set = set()
    page.on("request", lambda request: in_flight.add(request))
    page.on("requestfinished", lambda request: in_flight.discard(request))
    page.on("requestfailed", lambda request: in_flight.discard(request))
    yield page
    requests_finish(page, in_flight)
    context.close()
    assert not problems, "\n".join(problems)


def requests_finish(page, in_flight: set) -> None:
    """Wait for the page's requests still in flight (a debounced search the test did not
    wait for): the live server would be running their SQL while the test database is
    flushed, and the two deadlock (the flush's TRUNCATE against the request's locks)."""
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while in_flight and time.monotonic() < deadline:
        page.wait_for_timeout(50)  # lets Playwright deliver the "requestfinished" events


@pytest.fixture
def login(page, live_server):
    """Sign a user in without the login form: put a real session cookie into the context."""

    def _login(user):
        client = Client()
        client.force_login(user)
        session_cookie = client.cookies[settings.SESSION_COOKIE_NAME]
        page.context.add_cookies(
            [
                {
                    "name": settings.SESSION_COOKIE_NAME,
                    "value": session_cookie.value,
                    "url": live_server.url,
                    "httpOnly": True,
                }
            ]
        )
        return page

    return _login
