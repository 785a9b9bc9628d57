"""Reads for the sync pages; admins only (crm.permissions.require_admin)."""

from django.db.models import Count, Q, QuerySet

from crm.permissions import require_admin
from integrations.models import Connection, SyncConflict, SyncFailure, SyncRun

MESSAGE = "Only admins manage CRM connections."


def connections(*, user) -> QuerySet[Connection]:
    require_admin(user, MESSAGE)
    return Connection.objects.annotate(
        open_conflicts=Count("conflicts", filter=Q(conflicts__resolved_at__isnull=True))
    ).order_by("name")


def connection(*, user, connection_id: int) -> Connection | None:
    require_admin(user, MESSAGE)
    return Connection.objects.filter(pk=connection_id).first()


def runs(*, user, connection: Connection) -> QuerySet[SyncRun]:
    require_admin(user, MESSAGE)
    return (
        SyncRun.objects.filter(connection=connection)
        .select_related("triggered_by")
        .annotate(failure_count=Count("failures"))
        .order_by("-created_at", "-id")
    )


def run(*, user, run_id: int) -> SyncRun | None:
    require_admin(user, MESSAGE)
    return SyncRun.objects.select_related("connection").filter(pk=run_id).first()


def failures(*, user, run: SyncRun) -> QuerySet[SyncFailure]:
    require_admin(user, MESSAGE)
    return SyncFailure.objects.filter(run=run).order_by("id")


def open_conflicts(*, user, connection: Connection) -> QuerySet[SyncConflict]:
    require_admin(user, MESSAGE)
    return (
        SyncConflict.objects.filter(connection=connection, resolved_at__isnull=True)
        .select_related("link")
        .order_by("-detected_at", "-id")
    )


def conflict(*, user, conflict_id: int) -> SyncConflict | None:
    require_admin(user, MESSAGE)
    return SyncConflict.objects.select_related("connection").filter(pk=conflict_id).first()
