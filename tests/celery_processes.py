"""Real Celery processes (workers and beat) against Redis and the test database, not eager
mode: what the `real_worker` fixture of tests/conftest.py hands a test.

Every process reads the settings module the test names (crm.test_settings by default) plus
one line: a default queue of the test's own, so tasks queued by the processes themselves
(and by beat) stay away from any other test's worker sharing the Redis database, e.g. under
`pytest -n 2`. Their output goes to a log per process, shown when one fails to start or
dies. At a pinned test clock (tests/clock.py) they travel to the test's moment.
"""

import json
import os
import signal
import subprocess
import time
import uuid
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.db import connection

from crm.celery import app
from tests import clock

START_SECONDS = 40


class CeleryProcesses:
    """Workers and beat on a queue of their own; every one is stopped by stop_all()."""

    def __init__(self, tmp_path: Path, env: dict[str, str] | None = None):
        env = dict(env or {})
        base_settings = env.pop("DJANGO_SETTINGS_MODULE", "crm.test_settings")
        self.queue = f"test-{uuid.uuid4().hex[:8]}"
        self.tmp_path = tmp_path
        self.processes: list[tuple[str, subprocess.Popen, Path]] = []
        self.redis = redis.Redis.from_url(settings.REDIS_URL)
        (tmp_path / "real_worker_settings.py").write_text(
            f"from {base_settings} import *  # noqa: F403\n"
            f"CELERY_TASK_DEFAULT_QUEUE = {self.queue!r}\n"
        )
        db = connection.settings_dict
        password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
        pythonpath = [str(tmp_path), str(settings.BASE_DIR), os.environ.get("PYTHONPATH", "")]
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "real_worker_settings",
            "PYTHONPATH": os.pathsep.join(p for p in pythonpath if p),
            "DATABASE_URL": (
                f"postgres://{db['USER']}{password}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
            ),
            "REDIS_URL": settings.REDIS_URL,
            **env,
        }

    # Processes

    def _start(self, label: str, args: list[str]) -> subprocess.Popen:
        log = self.tmp_path / f"{label}.log"
        with log.open("wb") as output:
            process = subprocess.Popen(
                [*clock.command("celery"), "-A", "crm", *args],
                cwd=settings.BASE_DIR,
                env={**self.env, **clock.environ()},
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: pool children die with it
            )
        self.processes.append((label, process, log))
        return process

    def worker(
        self, *, pool: str = "prefork", concurrency: int = 2
    ) -> tuple[str, subprocess.Popen]:
        """Start a worker on the queue and wait until it answers; (name, process). The solo
        pool runs tasks in the worker process itself, one at a time."""
        label = f"worker{len(self.processes) + 1}"
        name = f"{self.queue}-{label}@localhost"
        pool_args = ["--pool=solo"] if pool == "solo" else [f"--concurrency={concurrency}"]
        process = self._start(
            label,
            ["worker", "-Q", self.queue, "-n", name, *pool_args,
             "--without-gossip", "--without-mingle", "--loglevel=WARNING"],
        )  # fmt: skip
        deadline = time.monotonic() + START_SECONDS
        while not app.control.ping(destination=[name], timeout=0.5):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"Celery worker did not start.\n{self.logs()}")
        return name, process

    @property
    def workers(self) -> list[subprocess.Popen]:
        return [process for label, process, _ in self.processes if label.startswith("worker")]

    def beat(self) -> subprocess.Popen:
        return self._start(
            "beat",
            ["beat", "--scheduler", "django_celery_beat.schedulers:DatabaseScheduler",
             "--max-interval", "1", "--schedule", str(self.tmp_path / "beat-schedule"),
             "--loglevel=WARNING"],
        )  # fmt: skip

    @staticmethod
    def kill(process: subprocess.Popen) -> None:
        """SIGKILL the process and its pool children: no warm shutdown, no message restored."""
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    @staticmethod
    def stop(process: subprocess.Popen) -> None:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with suppress(subprocess.TimeoutExpired):
            process.wait(timeout=8)
        CeleryProcesses.kill(process)  # the group: children outliving their parent too

    def stop_all(self) -> None:
        for _, process, _ in self.processes:
            self.stop(process)
        self._forget_queue()

    def check_alive(self, *processes: subprocess.Popen) -> None:
        for process in processes:
            if process.poll() is not None:
                pytest.fail(f"A Celery process exited ({process.returncode}).\n{self.logs()}")

    def logs(self) -> str:
        return "\n".join(
            f"--- {label} ---\n{log.read_text(errors='replace')[-4000:]}"
            for label, _, log in self.processes
        )

    # The queue in Redis

    @contextmanager
    def routed(self):
        """Tasks queued by this process go to the queue instead of running eagerly."""
        eager, queue = app.conf.task_always_eager, app.conf.task_default_queue
        app.conf.task_always_eager = False
        app.conf.task_default_queue = self.queue
        try:
            yield
        finally:
            app.conf.task_always_eager, app.conf.task_default_queue = eager, queue

    def _unacked(self) -> dict[bytes, list]:
        """Messages taken from the queue and not acknowledged yet (tasks are acks_late: the
        ones running, reserved or waiting for their countdown, or whose worker died)."""
        unacked = {}
        for tag, raw in self.redis.hgetall("unacked").items():
            message, exchange, routing_key = json.loads(raw)
            if self.queue in (exchange, routing_key):
                unacked[tag] = message
        return unacked

    def idle(self) -> bool:
        return not self.redis.llen(self.queue) and not self._unacked()

    def redeliver_unacked(self) -> list[str]:
        """What Redis does once the visibility timeout (1 h) has passed: put the unacked
        messages of a dead worker back on the queue. The task names redelivered."""
        names = []
        for tag, message in self._unacked().items():
            message["headers"]["redelivered"] = True
            message["properties"]["delivery_info"]["redelivered"] = True
            self.redis.pipeline().hdel("unacked", tag).zrem("unacked_index", tag).lpush(
                self.queue, json.dumps(message)
            ).execute()
            names.append(message["headers"]["task"])
        return names

    def _forget_queue(self) -> None:
        for tag in self._unacked():
            self.redis.pipeline().hdel("unacked", tag).zrem("unacked_index", tag).execute()
        self.redis.delete(
            self.queue, f"_kombu.binding.{self.queue}", f"_kombu.binding_permanent.{self.queue}"
        )
        self.redis.close()
