"""A runaway statement in a web request: PostgreSQL cancels it at the web's statement
timeout and the user gets a page that says so (503), not a dead worker or a bare 500."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection
from django.urls import reverse

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def a_slow_statement_first():
    """PostgreSQL itself cancels a 2 s sleep at a 50 ms statement_timeout before the view's
    first query of customers: the real QueryCanceled, as a runaway query would raise."""
    state = {"done": False}

    def slow(execute, sql, params, many, context):
        if not state["done"] and "customers_customer" in sql:
            state["done"] = True
            context["cursor"].execute("SELECT pg_sleep(2)")
        return execute(sql, params, many, context)

    with connection.cursor() as cursor:
        cursor.execute("SET statement_timeout = 50")
    try:
        with connection.execute_wrapper(slow):
            yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET statement_timeout")


# Requests run in autocommit as in production (no test transaction around them), so the
# cancelled statement leaves the connection usable for the error page.
@pytest.mark.django_db(transaction=True)
def test_a_cancelled_statement_answers_a_503_page(rep_client, a_slow_statement_first):
    response = rep_client.get(reverse("customers:list"))
    assert response.status_code == 503
    assert b"This page took too long" in response.content


@pytest.mark.django_db(transaction=True)
def test_an_htmx_request_gets_a_json_error(rep_client, a_slow_statement_first):
    response = rep_client.get(reverse("customers:list"), headers={"HX-Request": "true"})
    assert response.status_code == 503 and "error" in response.json()


def _database_options(**env) -> str:
    code = (
        "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'crm.settings');"
        "import crm.wsgi; from django.conf import settings;"
        "print(settings.DATABASES['default'].get('OPTIONS', {}).get('options', ''))"
    )
    environment = {**os.environ, "DEBUG": "true", "DJANGO_SETTINGS_MODULE": "crm.settings",
                   **env}  # fmt: skip
    environment.pop("STATEMENT_TIMEOUT_SECONDS", None)
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=environment,
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.strip()


def test_the_web_process_sets_the_timeout_from_the_environment():
    assert _database_options() == "-c jit=off -c statement_timeout=5000"
    assert (
        _database_options(WEB_STATEMENT_TIMEOUT_SECONDS="2.5")
        == "-c jit=off -c statement_timeout=2500"
    )
