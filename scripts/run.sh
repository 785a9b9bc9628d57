#!/usr/bin/env bash
# Web server, Celery worker and beat scheduler together; Ctrl-C stops all three.
set -euo pipefail
PY=${PY:-.venv/bin/python}
CELERY="$(dirname "$PY")/celery"
HOST=${HOST:-127.0.0.1}
PORT=${PORT:-8000}

trap 'trap - EXIT INT TERM; kill 0 2>/dev/null; wait' EXIT INT TERM

"$CELERY" -A crm worker --loglevel=INFO --concurrency=2 &
"$CELERY" -A crm beat --loglevel=INFO --scheduler django_celery_beat.schedulers:DatabaseScheduler &
echo "CRM on http://$HOST:$PORT/accounts/login/  (Ctrl-C stops web, worker and beat)"
"$PY" manage.py runserver "$HOST:$PORT" --noreload &
wait -n
