import json

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from crm.models import AuditEvent
from crm.roles import ALL_GROUPS, Role, role_of
from crm.services import scheduler_heartbeat_record
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db


def test_roles_are_created_by_migration():
    assert set(Group.objects.filter(name__in=ALL_GROUPS).values_list("name", flat=True)) == set(
        ALL_GROUPS
    )


def test_role_of(rep, manager, admin_user, django_user_model):
    assert role_of(rep) == Role.REP
    assert role_of(manager) == Role.MANAGER
    assert role_of(admin_user) == Role.ADMIN
    superuser = django_user_model.objects.create_superuser("root", "r@example.com", "x")
    assert role_of(superuser) == Role.ADMIN


def test_healthz_reports_database_redis_worker_and_scheduler(client):
    scheduler_heartbeat_record(name="beat")
    response = client.get("/healthz")
    assert response.status_code == 200
    body = json.loads(response.content)
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["redis"]["ok"] is True
    assert body["checks"]["scheduler"]["ok"] is True
    # No worker runs in this test: reported, but the web tier stays in rotation.
    assert body["checks"]["worker"]["ok"] is False
    assert body["status"] == "degraded"


def test_healthz_is_503_when_redis_is_unreachable(client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    response = client.get("/healthz")
    assert response.status_code == 503
    assert json.loads(response.content)["checks"]["redis"]["ok"] is False


@pytest.mark.parametrize(
    "url", ["/", "/customers/", "/customers/new/", "/sales/deals/", "/sales/tasks/"]
)
def test_pages_require_login(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_login_and_logout(client, rep):
    response = client.post(reverse("login"), {"username": "rep", "password": PASSWORD})
    assert response.status_code == 302
    assert client.get("/").status_code == 200
    client.post(reverse("logout"))
    assert client.get("/").status_code == 302


def test_login_is_rate_limited_after_repeated_failures(client, rep, settings):
    settings.LOGIN_FAILURE_LIMIT = 3
    for _ in range(3):
        response = client.post(reverse("login"), {"username": "rep", "password": "wrong"})
        assert response.status_code == 200
    response = client.post(reverse("login"), {"username": "rep", "password": PASSWORD})
    assert response.status_code == 429
    assert b"Too many failed sign-in attempts" in response.content


def test_an_attempt_is_counted_before_the_password_is_checked(client, rep, settings, monkeypatch):
    """So parallel guesses cannot all pass the check while the count still reads low."""
    from django.contrib.auth import forms as auth_forms
    from django.core.cache import cache

    cache.clear()  # other tests' failures for "rep" stay in the cache
    settings.LOGIN_FAILURE_LIMIT = 3
    seen = []
    real_authenticate = auth_forms.authenticate

    def authenticate(request=None, **credentials):
        seen.append(cache.get("login-failures:127.0.0.1:rep"))
        return real_authenticate(request, **credentials)

    monkeypatch.setattr(auth_forms, "authenticate", authenticate)
    client.post(reverse("login"), {"username": "rep", "password": "wrong"})
    assert seen == [1]


def test_behind_the_proxy_the_lockout_is_per_client_address(client, rep, settings):
    settings.LOGIN_FAILURE_LIMIT = 2
    settings.BEHIND_TLS_PROXY = True
    guesser = {"HTTP_X_FORWARDED_FOR": "203.0.113.9"}
    for _ in range(3):
        client.post(reverse("login"), {"username": "rep", "password": "wrong"}, **guesser)
    refused = client.post(reverse("login"), {"username": "rep", "password": PASSWORD}, **guesser)
    assert refused.status_code == 429
    owner = {"HTTP_X_FORWARDED_FOR": "198.51.100.4"}
    response = client.post(reverse("login"), {"username": "rep", "password": PASSWORD}, **owner)
    assert response.status_code == 302


def test_password_change(client, rep):
    client.force_login(rep)
    response = client.post(
        reverse("password_change"),
        {
            "old_password": PASSWORD,
            "new_password1": "a-much-longer-Passphrase-42",
            "new_password2": "a-much-longer-Passphrase-42",
        },
    )
    assert response.status_code == 302
    rep.refresh_from_db()
    assert rep.check_password("a-much-longer-Passphrase-42")


def test_password_change_shows_errors(client, rep):
    client.force_login(rep)
    response = client.post(
        reverse("password_change"),
        {"old_password": "nope", "new_password1": "x", "new_password2": "y"},
    )
    assert response.status_code == 200
    assert b"Your old password was entered incorrectly" in response.content


def test_navigation_by_role(client, rep, admin_user):
    client.force_login(rep)
    assert b'href="/admin/"' not in client.get("/").content
    client.force_login(admin_user)
    assert b'href="/admin/"' in client.get("/").content


def test_static_assets_are_vendored(client, rep):
    client.force_login(rep)
    page = client.get("/").content.decode()
    assert "/static/vendor/htmx-2.0.11.min.js" in page
    assert "cdn" not in page.lower()


def test_audit_events_are_append_only_in_admin(admin_client_):
    response = admin_client_.get(reverse("admin:crm_auditevent_add"))
    assert response.status_code == 403
    assert AuditEvent.objects.count() == 0
