import pytest
from django.conf import settings

from integrations.models import Connection, SyncRun
from integrations.tasks import resume_stalled_task, sync_all_task

pytestmark = pytest.mark.django_db


def test_every_enabled_connection_syncs_every_5_minutes_from_beat(
    hubspot_connection, admin_user, django_capture_on_commit_callbacks
):
    entry = settings.CELERY_BEAT_SCHEDULE["integrations-sync-all"]
    assert (entry["task"], entry["schedule"]) == ("integrations.sync_all", 300.0)
    paused = Connection.objects.create(
        name="Paused", provider="hubspot", auth_flow="token", secrets_encrypted="x",
        is_enabled=False, run_as=admin_user,
    )  # fmt: skip
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert sync_all_task() == 1
        assert sync_all_task() == 0  # one active run per connection
    assert len(callbacks) == 1
    assert SyncRun.objects.filter(connection=hubspot_connection, status="queued").count() == 1
    assert not SyncRun.objects.filter(connection=paused).exists()


def test_a_run_whose_lease_lapsed_is_queued_again(
    hubspot_connection, django_capture_on_commit_callbacks
):
    from datetime import timedelta

    from django.utils import timezone

    run = SyncRun.objects.create(
        connection=hubspot_connection, kind="first_import", status="running",
        lease_until=timezone.now() - timedelta(seconds=1),
    )  # fmt: skip
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert resume_stalled_task() == 1
    assert len(callbacks) == 1
    run.lease_until = timezone.now() + timedelta(minutes=1)
    run.save()
    assert resume_stalled_task() == 0
