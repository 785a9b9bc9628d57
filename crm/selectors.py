"""Reads of the shared core: teams, system health and audit history."""

from datetime import timedelta

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.models import QuerySet
from django.utils import timezone

from crm.models import AuditEvent, SchedulerHeartbeat, TeamMembership

HEARTBEAT_FRESH_FOR = timedelta(minutes=3)


def team_member_ids(team_id: int) -> QuerySet:
    """The ids of a team's members, as a subquery (`assigned_to__in=...`)."""
    return TeamMembership.objects.filter(team_id=team_id).values("user_id")


def audit_events_for(instance, *, limit: int = 50) -> QuerySet:
    content_type = ContentType.objects.get_for_model(instance)
    return AuditEvent.objects.filter(
        content_type=content_type, object_id=str(instance.pk)
    ).select_related("actor")[:limit]


def health_check() -> dict:
    """State of the database, Redis (when configured), a worker and the beat scheduler."""
    checks: dict[str, dict] = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = {"ok": True, "vendor": connection.vendor}
    except Exception as exc:  # noqa: BLE001 - the health check reports any failure
        checks["database"] = {"ok": False, "error": type(exc).__name__}

    if settings.REDIS_URL:
        try:
            import redis

            redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1).ping()
            checks["redis"] = {"ok": True}
        except Exception as exc:  # noqa: BLE001
            checks["redis"] = {"ok": False, "error": type(exc).__name__}
    else:
        checks["redis"] = {"ok": True, "mode": "embedded (not configured)"}

    checks["worker"] = _worker_check()
    checks["scheduler"] = _scheduler_check() if checks["database"]["ok"] else {"ok": False}
    # The web tier is healthy when its own dependencies answer; a stopped worker is
    # reported (status "degraded") but must not take the web servers out of rotation.
    essential_ok = checks["database"]["ok"] and checks["redis"]["ok"]
    background_ok = checks["worker"]["ok"]
    status = "ok" if essential_ok and background_ok else ("degraded" if essential_ok else "down")
    return {"status": status, "checks": checks}


def _worker_check() -> dict:
    from crm.celery import app

    try:
        replies = app.control.ping(timeout=1.0) or []
    except Exception as exc:  # noqa: BLE001
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": bool(replies), "workers": sorted(name for reply in replies for name in reply)}


def _scheduler_check() -> dict:
    beat = SchedulerHeartbeat.objects.filter(name="beat").first()
    if beat is None:
        return {"ok": False, "last_seen_at": None}
    return {
        "ok": timezone.now() - beat.last_seen_at < HEARTBEAT_FRESH_FOR,
        "last_seen_at": beat.last_seen_at.isoformat(),
    }
