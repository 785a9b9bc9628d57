"""Starting, claiming and finishing sync runs. One active run per connection (a database
constraint); a run holds a lease while it works, and a run whose lease ran out (its worker
died) is claimed again and resumes from its saved position."""

import logging
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from crm.permissions import require_admin
from integrations.models import Connection, SyncFailure, SyncRun
from integrations.providers import provider_for

logger = logging.getLogger(__name__)


def sync_start(*, connection: Connection, actor=None, kind: str | None = None) -> SyncRun:
    """Queue a run (the first import until one has finished), or return the active one."""
    if actor is not None:
        require_admin(actor, "Only admins can run a sync.")
    kind = kind or (
        SyncRun.Kind.INCREMENTAL if connection.first_import_done_at else SyncRun.Kind.FIRST_IMPORT
    )
    try:
        with transaction.atomic():
            run = SyncRun.objects.create(connection=connection, kind=kind, triggered_by=actor)
    except IntegrityError:
        return SyncRun.objects.get(connection=connection, status__in=SyncRun.ACTIVE_STATUSES)
    _enqueue_on_commit(run.pk)
    return run


def _enqueue_on_commit(run_id: int) -> None:
    from integrations.tasks import sync_run_task

    transaction.on_commit(lambda: sync_run_task.delay(run_id))


def _claim(run_id: int) -> SyncRun | None:
    with transaction.atomic():
        run = (
            SyncRun.objects.select_for_update()
            .select_related("connection", "connection__run_as")
            .filter(pk=run_id)
            .first()
        )
        if run is None or run.status not in SyncRun.ACTIVE_STATUSES:
            return None
        now = timezone.now()
        if run.status == SyncRun.Status.RUNNING and run.lease_until and run.lease_until > now:
            return None  # another worker holds it
        run.status = SyncRun.Status.RUNNING
        run.started_at = run.started_at or now
        run.lease_until = now + timedelta(seconds=settings.SYNC_LEASE_SECONDS)
        run.lease_token = uuid.uuid4().hex
        run.save(update_fields=["status", "started_at", "lease_until", "lease_token"])
        return run


def sync_run_execute(*, run_id: int, sleep=None) -> SyncRun | None:
    """Work a run to its end from its saved position; a failure ends it with the remote's
    message (never a secret) and leaves the position for a retry."""
    from integrations.services.engine import LeaseLost, SyncEngine

    run = _claim(run_id)
    if run is None:
        return None
    try:
        provider = provider_for(run.connection, sleep=sleep)
        SyncEngine(run, provider).execute()
    except LeaseLost:
        logger.warning("sync run %s was taken over by another worker", run.pk)
        return None
    except Exception as error:
        logger.warning("sync run %s failed: %s", run.pk, type(error).__name__)
        SyncRun.objects.filter(pk=run.pk, lease_token=run.lease_token).update(
            status=SyncRun.Status.FAILED,
            error=str(error)[:2000],
            finished_at=timezone.now(),
            lease_until=None,
        )
        run.refresh_from_db()
        if not isinstance(error, _EXPECTED):
            raise
    return run


def sync_all_start() -> int:
    """Beat, every 5 minutes: a run for every enabled connection without an active one."""
    started = 0
    for connection in Connection.objects.filter(is_enabled=True).exclude(
        runs__status__in=SyncRun.ACTIVE_STATUSES
    ):
        sync_start(connection=connection)
        started += 1
    return started


def sync_resume_stalled() -> int:
    """Runs whose worker died (lease run out) or that were never picked up, queued again."""
    now = timezone.now()
    stalled = list(
        SyncRun.objects.filter(status=SyncRun.Status.RUNNING, lease_until__lt=now).values_list(
            "pk", flat=True
        )
    ) + list(
        SyncRun.objects.filter(
            status=SyncRun.Status.QUEUED, created_at__lt=now - timedelta(minutes=2)
        ).values_list("pk", flat=True)
    )
    for run_id in stalled:
        _enqueue_on_commit(run_id)
    return len(stalled)


def sync_retry(*, actor, run: SyncRun) -> SyncRun:
    """Retry a failed run from where it stopped (or its failed records, in a new run)."""
    require_admin(actor, "Only admins can retry a sync.")
    with transaction.atomic():
        run = SyncRun.objects.select_for_update().get(pk=run.pk)
        if (
            run.status == SyncRun.Status.FAILED
            and not SyncRun.objects.filter(
                connection=run.connection, status__in=SyncRun.ACTIVE_STATUSES
            ).exists()
        ):
            run.status = SyncRun.Status.QUEUED
            run.error = ""
            run.finished_at = None
            run.save(update_fields=["status", "error", "finished_at"])
            _enqueue_on_commit(run.pk)
            return run
        # Records that failed to go out are pushed again whatever their age; a record that
        # failed to come in is pulled again when it next changes remotely (such failures are
        # the record's own: no email, no synced contact, an email another customer has).
        failed = SyncFailure.objects.filter(run=run, retried_at__isnull=True)
        pushes = failed.filter(direction="push", local_id__isnull=False)
        connection = Connection.objects.select_for_update().get(pk=run.connection_id)
        for object_type, local_id in pushes.values_list("object_type", "local_id"):
            model = _LOCAL_MODEL.get(object_type, "customer")
            waiting = connection.cursors.setdefault("repush", {}).setdefault(model, [])
            if local_id not in waiting:
                waiting.append(local_id)
        connection.save(update_fields=["cursors", "updated_at"])
        failed.update(retried_at=timezone.now())
    return sync_start(connection=connection, actor=actor)


# A failure's object type (the remote's) -> the local model it pushes.
_LOCAL_MODEL = {"contacts": "customer", "Lead": "customer", "Contact": "customer",
                "deals": "sale", "Opportunity": "sale"}  # fmt: skip


def _expected_errors() -> tuple[type[Exception], ...]:
    from integrations.clients.limits import RemoteError
    from integrations.secrets import SecretsUnreadable

    return (RemoteError, SecretsUnreadable)


_EXPECTED = _expected_errors()
