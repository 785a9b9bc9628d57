#!/usr/bin/env bash
# Web server, Celery worker and beat scheduler together; Ctrl-C stops all three. The web
# server is daphne's runserver (daphne is first in INSTALLED_APPS): pages and websockets.
set -euo pipefail
PY=${PY:-.venv/bin/python}
CELERY="$(dirname "$PY")/celery"
HOST=${HOST:-127.0.0.1}
PORT=${PORT:-8000}
export SITE_URL=${SITE_URL:-http://$HOST:$PORT}  # links in emails point at this server
PIDS=()

# Stop only the three processes started here (TERM: a Celery worker's warm shutdown; INT is
# ignored by background jobs of a script). Not `kill 0`: that also hits the worker's pool
# children directly, and a child killed holding the pool's queue lock hangs the worker.
stop() {
  trap - EXIT INT TERM
  kill -TERM "${PIDS[@]}" 2>/dev/null || true
  wait "${PIDS[@]}" 2>/dev/null || true
}
trap stop EXIT INT TERM

"$CELERY" -A crm worker --loglevel=INFO --concurrency=2 &
PIDS+=($!)
"$CELERY" -A crm beat --loglevel=INFO --scheduler django_celery_beat.schedulers:DatabaseScheduler &
PIDS+=($!)
echo "CRM on http://$HOST:$PORT/accounts/login/  (Ctrl-C stops web, worker and beat)"
"$PY" manage.py runserver "$HOST:$PORT" --noreload &
PIDS+=($!)
wait -n
