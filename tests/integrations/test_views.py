import logging

import pytest
from django.urls import reverse

from integrations.models import Connection, SyncConflict, SyncLink, SyncRun
from integrations.services.runs import sync_run_execute, sync_start
from tests.integrations.conftest import HUBSPOT_TOKEN

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(hubspot_connection):
    run = SyncRun.objects.create(connection=hubspot_connection, kind="incremental", status="failed")
    link = SyncLink.objects.create(
        connection=hubspot_connection, object_type="contacts", remote_id="9", local_model="customer"
    )
    conflict = SyncConflict.objects.create(
        connection=hubspot_connection, link=link, field="phone", local_value="1", remote_value="2"
    )
    return {"connection": hubspot_connection, "run": run, "conflict": conflict}


def every_url(world) -> list[tuple[str, str]]:
    c, r, k = world["connection"].pk, world["run"].pk, world["conflict"].pk
    return [
        ("get", reverse("integrations:list")),
        ("get", reverse("integrations:new")),
        ("post", reverse("integrations:new")),
        ("get", reverse("integrations:detail", args=[c])),
        ("get", reverse("integrations:edit", args=[c])),
        ("post", reverse("integrations:edit", args=[c])),
        ("post", reverse("integrations:test", args=[c])),
        ("post", reverse("integrations:sync", args=[c])),
        ("get", reverse("integrations:delete", args=[c])),
        ("post", reverse("integrations:delete", args=[c])),
        ("get", reverse("integrations:mappings", args=[c])),
        ("post", reverse("integrations:mappings", args=[c])),
        ("get", reverse("integrations:runs", args=[c])),
        ("get", reverse("integrations:conflicts", args=[c])),
        ("get", reverse("integrations:run", args=[r])),
        ("get", reverse("integrations:run_progress", args=[r])),
        ("post", reverse("integrations:run_retry", args=[r])),
        ("post", reverse("integrations:resolve", args=[k])),
    ]


@pytest.mark.parametrize("who", ["rep_client", "other_rep_client", "manager_client"])
def test_only_admins_manage_connections(request, world, who):
    client = request.getfixturevalue(who)
    for method, url in every_url(world):
        response = getattr(client, method)(url, {"keep": "crm", "name": "X"})
        assert response.status_code == 403, (who, method, url)
    assert Connection.objects.filter(pk=world["connection"].pk).exists()
    assert SyncConflict.objects.get(pk=world["conflict"].pk).resolved_at is None


def test_admin_pages_work_and_never_show_the_secret(admin_client_, world, fake_hubspot, caplog):
    caplog.set_level(logging.DEBUG)
    c = world["connection"].pk
    for url in [
        reverse("integrations:list"),
        reverse("integrations:detail", args=[c]),
        reverse("integrations:edit", args=[c]),
        reverse("integrations:mappings", args=[c]),
        reverse("integrations:runs", args=[c]),
        reverse("integrations:conflicts", args=[c]),
        reverse("integrations:run", args=[world["run"].pk]),
        reverse("integrations:delete", args=[c]),
        reverse("admin:integrations_connection_change", args=[c]),
        reverse("admin:integrations_connection_changelist"),
    ]:
        response = admin_client_.get(url)
        assert response.status_code == 200, url
        assert HUBSPOT_TOKEN not in response.content.decode(), url
    response = admin_client_.post(reverse("integrations:test", args=[c]), follow=True)
    assert "Connected" in response.content.decode()
    assert HUBSPOT_TOKEN not in world["connection"].secrets_encrypted
    # A failing test with a wrong token shows HubSpot's message, never the token either.
    admin_client_.post(
        reverse("integrations:edit", args=[c]),
        {"name": "HubSpot", "auth_flow": "token", "conflict_policy": "manual",
         "is_enabled": "on", "access_token": "pat-wrong-token-987"},
    )  # fmt: skip
    response = admin_client_.post(reverse("integrations:test", args=[c]), follow=True)
    page = response.content.decode()
    assert "Authentication credentials not found" in page
    assert "pat-wrong-token-987" not in page
    assert HUBSPOT_TOKEN not in caplog.text and "pat-wrong-token-987" not in caplog.text


def test_admin_creates_a_connection_and_runs_the_first_import(
    admin_client_, fake_hubspot, admin_user
):
    fake_hubspot.put("contacts", {"email": "x@y.example", "firstname": "X"})
    response = admin_client_.post(
        reverse("integrations:new"),
        {"name": "Hub", "provider": "hubspot", "auth_flow": "token",
         "conflict_policy": "newest_wins", "is_enabled": "on", "access_token": HUBSPOT_TOKEN},
    )  # fmt: skip
    connection = Connection.objects.get(name="Hub")
    assert response.status_code == 302
    run = sync_start(connection=connection, actor=admin_user)
    sync_run_execute(run_id=run.pk)
    page = admin_client_.get(reverse("integrations:run", args=[run.pk])).content.decode()
    assert "Succeeded" in page and "contacts" in page
    missing = admin_client_.post(
        reverse("integrations:new"),
        {"name": "Hub2", "provider": "hubspot", "auth_flow": "token", "conflict_policy": "manual"},
    )
    assert missing.status_code == 200 and "This field is required" in missing.content.decode()


def test_conflicts_page_settles_a_conflict(admin_client_, world):
    url = reverse("integrations:resolve", args=[world["conflict"].pk])
    admin_client_.post(url, {"keep": "remote"})
    conflict = SyncConflict.objects.get(pk=world["conflict"].pk)
    assert conflict.resolution == "remote" and conflict.resolved_at is not None
    again = admin_client_.post(url, {"keep": "crm"}, follow=True)
    assert "settled already" in again.content.decode()


def test_mappings_are_validated(admin_client_, world):
    url = reverse("integrations:mappings", args=[world["connection"].pk])
    bad = admin_client_.post(
        url, {"field_map": '{"contacts": {"x": "password"}}', "stage_map": "{}"}
    )
    assert bad.status_code == 200 and "CRM fields" in bad.content.decode()
    broken = admin_client_.post(url, {"field_map": "{", "stage_map": "{}"})
    assert "not valid JSON" in broken.content.decode()
    good = admin_client_.post(
        url, {"field_map": '{"contacts": {"email": "email"}}', "stage_map": '{"s1": "WON"}'}
    )
    assert good.status_code == 302
    assert Connection.objects.get(pk=world["connection"].pk).stage_map == {"s1": "WON"}
