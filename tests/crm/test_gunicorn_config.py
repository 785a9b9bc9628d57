"""The production server's settings are a file in the repo, which gunicorn accepts and the
Dockerfile and docker-compose use."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GUNICORN = str(Path(sys.executable).with_name("gunicorn"))


def _gunicorn(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "crm.settings", "DEBUG": "false",
           "SECRET_KEY": "check-only-" + "k" * 50, "GUNICORN_WORKERS": "3"}  # fmt: skip
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    command = [GUNICORN, "--config", "gunicorn.conf.py", *args, "crm.wsgi:application"]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_gunicorn_accepts_the_config_and_loads_the_app():
    result = _gunicorn("--check-config")
    assert result.returncode == 0, result.stderr[-2000:]


def test_the_config_recycles_workers_with_jitter_and_outlasts_the_statement_timeout():
    printed = _gunicorn("--print-config").stdout
    settings = dict(
        (key.strip(), value.strip())
        for key, _, value in (line.partition("=") for line in printed.splitlines())
    )
    assert settings["worker_class"] == "gthread" and settings["workers"] == "3"
    assert int(settings["max_requests"]) > 0 and int(settings["max_requests_jitter"]) > 0
    assert int(settings["timeout"]) > 5  # WEB_STATEMENT_TIMEOUT_SECONDS


def test_the_dockerfile_and_compose_run_with_it():
    assert "gunicorn.conf.py" in (ROOT / "Dockerfile").read_text()
    assert "gunicorn.conf.py" in (ROOT / "docker-compose.yml").read_text()
