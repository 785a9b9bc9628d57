"""gunicorn's settings for production (the Dockerfile and docker-compose run with them).

The pages (crm.wsgi) run on sync workers with a few threads each: most of a request's time
is waiting on PostgreSQL, so threads let a 2-core machine overlap requests without the
memory of more processes. The websocket service (docker-compose's `realtime`, crm.asgi) runs
the same settings with GUNICORN_WORKER_CLASS=uvicorn_worker.UvicornWorker; pages are not
served there, because an ASGI server runs all of a process's sync views on one thread.
Every number can be changed from the environment."""

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", multiprocessing.cpu_count() + 1))
threads = int(os.environ.get("GUNICORN_THREADS", 4))
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "gthread")
# Longer than the web's statement timeout (WEB_STATEMENT_TIMEOUT_SECONDS, 5 s), so a slow
# page ends with its own "took too long" answer, not a killed worker.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", 30))
graceful_timeout = 30
keepalive = 5
# Recycle workers now and then (memory growth in long-lived processes), never all at once.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", 2000))
max_requests_jitter = int(os.environ.get("GUNICORN_MAX_REQUESTS_JITTER", 200))
accesslog = "-"
errorlog = "-"
