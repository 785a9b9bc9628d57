import pytest


@pytest.fixture(autouse=True)
def async_safety_as_in_production(monkeypatch):
    """The browser tests allow synchronous queries on the event loop for this whole process
    (tests/e2e/conftest.py); daphne does not, and a consumer that queries there fails. A
    full run hid such a query (a role read after a session recheck) until these tests took
    the allowance away."""
    monkeypatch.delenv("DJANGO_ALLOW_ASYNC_UNSAFE", raising=False)
