# Production image: gunicorn's threaded workers serve the pages (WSGI, crm.wsgi); the same
# image runs the websocket service (docker-compose's `realtime`: uvicorn workers on crm.asgi),
# the Celery worker and beat.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .
RUN SECRET_KEY=build-only-not-secret DEBUG=false python manage.py collectstatic --noinput \
    && useradd --system --home /app crm && mkdir -p /app/media && chown -R crm /app/media
USER crm

EXPOSE 8000 8001
CMD ["gunicorn", "--config", "gunicorn.conf.py", "crm.wsgi:application"]
