"""Production settings: Django's deployment checks pass as the README runs it (behind the
TLS proxy), and signed-in pages are never kept by a shared cache."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection
from django.urls import reverse

ROOT = Path(__file__).resolve().parents[2]


def _check_deploy(**env) -> subprocess.CompletedProcess:
    # The browser tests set DJANGO_ALLOW_ASYNC_UNSAFE in this process; production does not.
    inherited = {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    environment = {
        **inherited,
        "DJANGO_SETTINGS_MODULE": "crm.settings",
        "SECRET_KEY": "a-long-random-production-key-" + "x7Qp2Lm9Zr4Tb8Wc" * 3,
        "DEBUG": "false",
        "ALLOWED_HOSTS": "crm.example.com",
        **env,
    }
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_check_deploy_is_clean_behind_the_tls_proxy():
    result = _check_deploy(BEHIND_TLS_PROXY="true")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_https_only_settings_come_from_the_environment():
    result = _check_deploy(BEHIND_TLS_PROXY="true", SECURE_HSTS_SECONDS="0")
    assert result.returncode != 0 and "security.W004" in result.stderr + result.stdout


def test_signed_in_pages_are_private_and_not_stored(rep_client):
    response = rep_client.get(reverse("customers:list"))
    assert response.status_code == 200
    cache_control = response["Cache-Control"]
    assert "private" in cache_control and "no-store" in cache_control


def test_a_page_with_its_own_cache_control_keeps_it(client):
    response = client.get(reverse("login"))
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.django_db
def test_the_asgi_application_takes_its_connections_from_a_pool_of_bounded_size():
    """Under ASGI each request's view runs in a new thread; with a connection kept per
    thread 50 users exhausted PostgreSQL's connections (a third of the requests failed)."""
    script = (
        "import crm.asgi, threading\n"
        "from django.db import connection, connections\n"
        "options = connection.settings_dict['OPTIONS']\n"
        "print(options['pool']['max_size'], connection.settings_dict['CONN_MAX_AGE'])\n"
        "def query():\n"
        "    with connection.cursor() as cursor: cursor.execute('SELECT 1')\n"
        "    connections.close_all()\n"
        "threads = [threading.Thread(target=query) for _ in range(30)]\n"
        "[t.start() for t in threads]; [t.join() for t in threads]\n"
        "print(connection.pool.get_stats()['pool_size'])\n"
    )
    inherited = {k: v for k, v in os.environ.items() if k != "DATABASE_POOL_MAX_SIZE"}
    db = connection.settings_dict  # the test database, which exists while this test runs
    inherited["DATABASE_URL"] = (
        f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**inherited, "DJANGO_SETTINGS_MODULE": "crm.settings", "SECRET_KEY": "x" * 50},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    max_size, conn_max_age, pool_size = result.stdout.split()
    assert (max_size, conn_max_age) == ("10", "0")
    assert int(pool_size) <= 10  # 30 threads, at most 10 connections


def test_a_websocket_service_elsewhere_is_allowed_by_the_content_security_policy():
    script = (
        "from django.conf import settings\n"
        "print(' '.join(settings.CONTENT_SECURITY_POLICY['DIRECTIVES']['connect-src']))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "crm.settings", "SECRET_KEY": "x" * 50,
             "REALTIME_URL": "wss://live.crm.example.com:8001/ws/"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["'self'", "wss://live.crm.example.com:8001"]
