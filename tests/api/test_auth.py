"""Device tokens: sign-in, one per device, revoked and expired tokens, the page."""

from datetime import timedelta

import pytest
from django.utils import timezone

from api.models import DeviceToken
from api.urls import router
from crm.models import AuditEvent
from tests.conftest import ApiClient
from tests.factories import CustomerFactory, device_token

pytestmark = pytest.mark.django_db

TOKEN_URL = "/api/v1/auth/token/"


def _sign_in(client, username="rep", password="password", device="Pixel"):
    return client.post(
        TOKEN_URL, {"username": username, "password": password, "device_name": device},
        format="json",
    )  # fmt: skip


@pytest.fixture
def with_password(rep):
    rep.set_password("password")
    rep.save()
    return rep


def test_sign_in_gives_a_token_that_works(anonymous_api, with_password, teams):
    response = _sign_in(anonymous_api)
    assert response.status_code == 201
    token = response.json()["token"]
    assert token.startswith("crm_")
    stored = DeviceToken.objects.get()
    assert stored.device_name == "Pixel" and token not in stored.digest  # only a hash is kept
    assert stored.expiry > timezone.now() + timedelta(days=80)
    api = ApiClient(with_password, token)
    assert api.get("/api/v1/customers/").status_code == 200
    assert DeviceToken.objects.get().last_used_at is not None


def test_the_same_device_again_replaces_its_token(anonymous_api, with_password, teams):
    first = _sign_in(anonymous_api).json()["token"]
    second = _sign_in(anonymous_api).json()["token"]
    assert DeviceToken.objects.count() == 1
    assert ApiClient(with_password, first).get("/api/v1/customers/").status_code == 401
    assert ApiClient(with_password, second).get("/api/v1/customers/").status_code == 200
    _sign_in(anonymous_api, device="Tablet")
    assert DeviceToken.objects.count() == 2


def test_wrong_password_is_401_and_repeated_failures_429(anonymous_api, with_password, settings):
    settings.LOGIN_FAILURE_LIMIT = 2
    assert _sign_in(anonymous_api, password="nope").status_code == 401
    assert _sign_in(anonymous_api, password="nope").status_code == 401
    response = _sign_in(anonymous_api, password="password")
    assert response.status_code == 429 and response.json()["code"] == "throttled"


def test_sign_in_validation_errors(anonymous_api, with_password):
    response = anonymous_api.post(TOKEN_URL, {"username": "rep"}, format="json")
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"password", "device_name"}


def test_a_revoked_token_is_401(rep_api, rep):
    assert rep_api.get("/api/v1/customers/").status_code == 200
    assert rep_api.delete(TOKEN_URL).status_code == 204
    response = rep_api.get("/api/v1/customers/")
    assert response.status_code == 401 and response.json()["code"] == "authentication_failed"
    assert AuditEvent.objects.filter(verb="delete", changes__device_name="Phone").exists()


def test_an_expired_token_is_401(rep_api):
    DeviceToken.objects.update(expiry=timezone.now() - timedelta(seconds=1))
    assert rep_api.get("/api/v1/customers/").status_code == 401
    assert not DeviceToken.objects.exists()  # knox drops it


def _every_api_route() -> list[str]:
    """Each resource of the router as a list URL and, where it has one, a detail URL."""
    urls = []
    for prefix, viewset, _basename in router.registry:
        urls.append(f"/api/v1/{prefix}/")
        if hasattr(viewset, "retrieve"):
            urls.append(f"/api/v1/{prefix}/1/")
    return [*urls, "/api/v1/quick-stats/"]


def _no_token(api, user):
    api.credentials()


def _revoked_token(api, user):
    assert api.delete(TOKEN_URL).status_code == 204  # the device signs out


def _expired_token(api, user):
    DeviceToken.objects.filter(user=user).update(expiry=timezone.now() - timedelta(seconds=1))


@pytest.mark.parametrize("spoil", [_no_token, _revoked_token, _expired_token])
@pytest.mark.parametrize("url", _every_api_route())
def test_every_route_refuses_a_request_without_a_valid_token(rep_api, rep, url, spoil):
    assert rep_api.get(url).status_code != 401  # the token worked before it was spoilt
    spoil(rep_api, rep)
    response = rep_api.get(url)
    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] in {"not_authenticated", "authentication_failed"}
    assert response["WWW-Authenticate"] == "Token"


def test_a_garbage_token_is_401(anonymous_api, rep):
    for header in ["Token", "Token a b", "Token crm_notatoken", "Token \u00e9\u00e9"]:
        anonymous_api.credentials(HTTP_AUTHORIZATION=header)
        assert anonymous_api.get("/api/v1/customers/").status_code == 401


def test_session_authentication_works_for_the_browser(rep_client, rep):
    CustomerFactory(owner=rep)
    response = rep_client.get("/api/v1/customers/")
    assert response.status_code == 200 and len(response.json()["results"]) == 1


def test_the_session_needs_csrf_for_writes(client, rep, teams):
    from django.test import Client

    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(rep)
    response = csrf_client.post(
        "/api/v1/customers/", {"name": "X", "email": "x@x.example"}, content_type="application/json"
    )
    assert response.status_code == 403


# The page ---------------------------------------------------------------------


def test_the_page_lists_and_creates_tokens(rep_client, rep):
    device_token(rep, "Old phone")
    page = rep_client.get("/api/tokens/")
    assert page.status_code == 200 and b"Old phone" in page.content
    created = rep_client.post("/api/tokens/", {"device_name": "New phone"})
    assert created.status_code == 200
    assert b"crm_" in created.content and b"New phone" in created.content
    assert rep_client.post("/api/tokens/", {"device_name": "  "}).status_code == 422


def test_the_page_revokes_own_tokens_only(rep_client, rep, other_rep):
    device_token(rep, "Mine")
    device_token(other_rep, "Theirs")
    mine = DeviceToken.objects.get(device_name="Mine")
    theirs = DeviceToken.objects.get(device_name="Theirs")
    rep_client.post(f"/api/tokens/{theirs.pk}/revoke/")
    assert DeviceToken.objects.filter(pk=theirs.pk).exists()
    rep_client.post(f"/api/tokens/{mine.pk}/revoke/")
    assert not DeviceToken.objects.filter(pk=mine.pk).exists()
    assert b"Theirs" not in rep_client.get("/api/tokens/").content


def test_an_admin_sees_and_revokes_everyones_tokens(admin_client_, rep):
    device_token(rep, "Lost phone")
    token = DeviceToken.objects.get()
    assert b"Lost phone" in admin_client_.get("/api/tokens/").content
    admin_client_.post(f"/api/tokens/{token.pk}/revoke/")
    assert not DeviceToken.objects.exists()


def test_the_page_needs_a_login(client):
    response = client.get("/api/tokens/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_an_admin_revokes_in_the_django_admin(admin_client_, admin_user, rep):
    admin_user.is_staff = True
    admin_user.save()
    device_token(rep, "Stolen phone")
    token = DeviceToken.objects.get()
    page = admin_client_.get("/admin/api/devicetoken/")
    assert page.status_code == 200 and b"Stolen phone" in page.content
    assert token.digest.encode() not in page.content
    admin_client_.post(
        "/admin/api/devicetoken/", {"action": "revoke", "_selected_action": [token.pk]}
    )
    assert not DeviceToken.objects.exists()
    assert AuditEvent.objects.filter(verb="delete", actor=admin_user).exists()
