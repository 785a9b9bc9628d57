"""The production shape, started on this machine for a load test: collectstatic, gunicorn (the
pages), the websocket service and one Celery worker, as README.md "Production" runs them,
against a given database and Redis.

`production_stack(...)` is a context manager yielding the base URL and the process groups; on
the way out (an error included) it stops every process it started, by process group, so
gunicorn's and Celery's children go too.
"""

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

WEB_WORKERS = 3  # issue 14: the load test's web tier is three gunicorn workers
CELERY_CONCURRENCY = 2  # docker-compose.yml's worker
REALTIME_WORKERS = 2  # docker-compose.yml's realtime service
READY_TIMEOUT_SECONDS = 90
STOP_TIMEOUT_SECONDS = 20
# The bench runner's own settings, which the servers must not inherit.
RUNNER_ONLY = ("DEBUG", "DJANGO_ALLOW_ASYNC_UNSAFE", "STATEMENT_TIMEOUT_SECONDS", "LOG_LEVEL")


@contextmanager
def exit_on_termination() -> Iterator[None]:
    """SIGTERM and SIGHUP raise SystemExit meanwhile (Python's default is to die on the spot),
    so the `finally` blocks stop the servers even when the bench itself is told to stop.
    Ctrl-C raises KeyboardInterrupt already; the servers run in sessions of their own, so the
    terminal's signal reaches only the bench, which stops them."""

    def terminate(signum, _frame):
        raise SystemExit(128 + signum)

    previous = {sig: signal.signal(sig, terminate) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_environment(*, database_url: str, redis_url: str, work_dir: Path) -> dict[str, str]:
    """Production settings (DEBUG off, a fresh SECRET_KEY) for plain HTTP on 127.0.0.1."""
    env = {key: value for key, value in os.environ.items() if key not in RUNNER_ONLY}
    env.update(
        DJANGO_SETTINGS_MODULE="crm.settings",
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(50),
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        ALLOWED_HOSTS="127.0.0.1",
        SECURE_COOKIES="false",  # plain http on the loopback; behind TLS they are on
        STATIC_ROOT=str(work_dir / "static"),
        MEDIA_ROOT=str(work_dir / "media"),
        PYTHONUNBUFFERED="1",
    )
    return env


def gunicorn_command(app_dir: Path, port: int) -> tuple[list[str], dict[str, str]]:
    """gunicorn with the project's gunicorn.conf.py and GUNICORN_WORKERS=3, serving the pages
    as the tree's Dockerfile does: over WSGI on threads, or on uvicorn's workers for a tree
    whose Dockerfile served crm.asgi (between issue 19 and the websocket service); a tree
    from before gunicorn.conf.py (issue 14) runs its Dockerfile's command line."""
    if (app_dir / "gunicorn.conf.py").exists():
        command = [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py"]
        env = {"GUNICORN_BIND": f"127.0.0.1:{port}", "GUNICORN_WORKERS": str(WEB_WORKERS)}
        if "crm.asgi:application" in (app_dir / "Dockerfile").read_text():
            env["GUNICORN_WORKER_CLASS"] = "uvicorn_worker.UvicornWorker"
            return [*command, "crm.asgi:application"], env
        return [*command, "crm.wsgi:application"], env
    command = [sys.executable, "-m", "gunicorn", "crm.wsgi:application"]
    command += ["--bind", f"127.0.0.1:{port}", "--workers", str(WEB_WORKERS)]
    return [*command, "--access-logfile", "-"], {}


def realtime_command(app_dir: Path, port: int) -> tuple[list[str], dict[str, str]] | None:
    """The websocket service of docker-compose.yml (gunicorn's uvicorn workers on crm.asgi),
    with the address the pages are given; None for a tree without one."""
    compose = app_dir / "docker-compose.yml"
    if not compose.exists() or "\n  realtime:\n" not in compose.read_text():
        return None
    command = [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py"]
    env = {
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_WORKERS": str(REALTIME_WORKERS),
        "GUNICORN_WORKER_CLASS": "uvicorn_worker.UvicornWorker",
    }
    return [*command, "crm.asgi:application"], env


def _start(command: list[str], *, cwd: Path, env: dict, log: Path) -> subprocess.Popen:
    with log.open("ab") as out:
        # A session of its own: stop() signals the whole group (gunicorn's and Celery's
        # children), and nothing outside it.
        return subprocess.Popen(
            command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def stop(process: subprocess.Popen) -> None:
    """SIGTERM to the process group (gunicorn and Celery shut down gracefully), then SIGKILL
    to what is left after STOP_TIMEOUT_SECONDS."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        with suppress(subprocess.TimeoutExpired):
            process.wait(timeout=STOP_TIMEOUT_SECONDS)
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # any child the leader left behind
    process.wait()


def _health(url: str) -> dict | None:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=5) as response:
            return json.loads(response.read())
    except (OSError, ValueError):
        return None


def _wait_ready(url: str, processes: dict[str, subprocess.Popen], logs: Path) -> None:
    """Until /healthz says "ok": database and Redis answer and the worker replies to a ping."""
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    report = None
    while time.monotonic() < deadline:
        for name, process in processes.items():
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}; see {logs}.")
        report = _health(url)
        if report and report.get("status") == "ok":
            return
        time.sleep(1)
    raise RuntimeError(f"{url}/healthz was not ok after {READY_TIMEOUT_SECONDS} s: {report}")


@dataclass(frozen=True)
class Stack:
    url: str
    # Name -> process group (its leader's pid) of gunicorn and the Celery worker, whose CPU
    # time bench.load.cpu reads.
    process_groups: dict[str, int]


@contextmanager
def production_stack(
    *, app_dir: Path, database_url: str, redis_url: str, work_dir: Path
) -> Iterator[Stack]:
    """collectstatic, then gunicorn (3 workers) and one Celery worker from `app_dir`, with
    their logs in `work_dir`; yields them once /healthz is ok, stops them after."""
    env = server_environment(database_url=database_url, redis_url=redis_url, work_dir=work_dir)
    manage = [sys.executable, "manage.py"]
    subprocess.run(
        [*manage, "collectstatic", "--noinput", "--verbosity", "0"],
        cwd=app_dir,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    port = free_port()
    web_command, web_env = gunicorn_command(app_dir, port)
    worker_command = [sys.executable, "-m", "celery", "-A", "crm", "worker", "--loglevel=INFO"]
    worker_command += [f"--concurrency={CELERY_CONCURRENCY}", f"--hostname=web_load_{port}@%h"]
    services = [("gunicorn", web_command, web_env), ("celery worker", worker_command, {})]
    realtime_port = free_port()
    realtime = realtime_command(app_dir, realtime_port)
    if realtime is not None:
        env["REALTIME_URL"] = f"ws://127.0.0.1:{realtime_port}/ws/"
        services.append(("realtime", *realtime))
    url = f"http://127.0.0.1:{port}"
    with ExitStack() as stack:
        processes = {}
        for name, command, extra in services:
            log = work_dir / f"{name.replace(' ', '_')}.log"
            processes[name] = _start(command, cwd=app_dir, env={**env, **extra}, log=log)
            stack.callback(stop, processes[name])
        _wait_ready(url, processes, work_dir)
        yield Stack(url=url, process_groups={n: p.pid for n, p in processes.items()})
