"""gunicorn's settings for production (the Dockerfile and docker-compose run with them).

The Dockerfile and docker-compose serve the ASGI application (crm.asgi: pages and the
websockets of notifications and the live board) with uvicorn's gunicorn worker
(GUNICORN_WORKER_CLASS=uvicorn_worker.UvicornWorker); Django runs each page's view in a
thread of its own there. Without that variable: sync workers with a few threads each for
the WSGI application (crm.wsgi, pages only): most of a request's time is waiting on
PostgreSQL, so threads let a 2-core machine overlap requests without the memory of more
processes. Every number can be changed from the environment."""

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
