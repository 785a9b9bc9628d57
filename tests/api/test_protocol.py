"""What every endpoint shares: Idempotency-Key, ETags, throttling, JSON errors, the one
scoped base class, the schema and its docs pages."""

import pytest
from django.db.models import QuerySet

from api.base import ScopedViewSet
from api.models import IdempotentRequest
from customers.models import Customer
from sales.models import SaleActivity
from tests.factories import CustomerFactory, SaleFactory

pytestmark = pytest.mark.django_db


def test_the_same_idempotency_key_creates_one_row_and_answers_the_same_body(rep_api):
    body = {"name": "Once", "email": "once@x.example"}
    first = rep_api.post("/api/v1/customers/", body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    second = rep_api.post("/api/v1/customers/", body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert second["Idempotent-Replayed"] == "true"
    assert Customer.objects.filter(email="once@x.example").count() == 1


def test_a_retried_call_log_is_logged_once(rep_api, rep):
    sale = SaleFactory(customer=CustomerFactory(owner=rep), assigned_to=rep)
    body = {"sale": sale.pk, "kind": "call", "text": "Called from the car"}
    for _ in range(3):
        response = rep_api.post("/api/v1/deal-activities/", body, format="json",
                                HTTP_IDEMPOTENCY_KEY="call-42")  # fmt: skip
        assert response.status_code == 201
    assert SaleActivity.objects.count() == 1


def test_the_key_with_another_body_is_refused(rep_api):
    rep_api.post("/api/v1/customers/", {"name": "A", "email": "a@x.example"}, format="json",
                 HTTP_IDEMPOTENCY_KEY="k-2")  # fmt: skip
    other = rep_api.post("/api/v1/customers/", {"name": "B", "email": "b@x.example"},
                         format="json", HTTP_IDEMPOTENCY_KEY="k-2")  # fmt: skip
    assert other.status_code == 400
    assert "Idempotency-Key" in other.json()["errors"]
    assert not Customer.objects.filter(email="b@x.example").exists()


def test_keys_are_per_user_and_failures_are_not_kept(rep_api, api_as, teammate):
    bad = rep_api.post("/api/v1/customers/", {"name": ""}, format="json",
                       HTTP_IDEMPOTENCY_KEY="k-3")  # fmt: skip
    assert bad.status_code == 400 and not IdempotentRequest.objects.exists()
    good = rep_api.post("/api/v1/customers/", {"name": "A", "email": "a@x.example"},
                        format="json", HTTP_IDEMPOTENCY_KEY="k-3")  # fmt: skip
    assert good.status_code == 201
    theirs = api_as(teammate).post("/api/v1/customers/", {"name": "T", "email": "t@x.example"},
                                   format="json", HTTP_IDEMPOTENCY_KEY="k-3")  # fmt: skip
    assert theirs.status_code == 201 and theirs.json()["id"] != good.json()["id"]


def test_etag_and_304_on_detail_and_list(rep_api, rep):
    customer = CustomerFactory(owner=rep)
    for url in [f"/api/v1/customers/{customer.pk}/", "/api/v1/customers/", "/api/v1/quick-stats/"]:
        first = rep_api.get(url)
        etag = first["ETag"]
        again = rep_api.get(url, HTTP_IF_NONE_MATCH=etag)
        assert again.status_code == 304 and again.content == b""
    Customer.objects.filter(pk=customer.pk).update(name="Changed")
    changed = rep_api.get(f"/api/v1/customers/{customer.pk}/", HTTP_IF_NONE_MATCH=etag)
    assert changed.status_code == 200


def test_throttling_per_token_answers_429(api_as, rep, settings):
    settings.API_THROTTLE_RATE = "3/min"
    phone, tablet = api_as(rep, "Phone"), api_as(rep, "Tablet")
    statuses = [phone.get("/api/v1/customers/").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    refused = phone.get("/api/v1/customers/")
    assert refused.json()["code"] == "throttled" and int(refused["Retry-After"]) > 0
    assert tablet.get("/api/v1/customers/").status_code == 200  # its own budget


def test_unknown_api_paths_and_methods_are_json(rep_api, rep):
    missing = rep_api.get("/api/v1/nothing-here/")
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"
    assert rep_api.get("/api/v1/customers/abc/").status_code == 404
    wrong = rep_api.put("/api/v1/customers/", {}, format="json")
    assert wrong.status_code == 405 and wrong.json()["code"] == "method_not_allowed"
    bad_json = rep_api.post("/api/v1/customers/", "{nope", content_type="application/json")
    assert bad_json.status_code == 400 and bad_json.json()["code"] == "parse_error"


def test_a_viewset_may_not_replace_the_scoped_queryset():
    with pytest.raises(TypeError, match="crm.permissions"):

        class Leaky(ScopedViewSet):  # noqa: F841
            def get_queryset(self) -> QuerySet:
                return Customer.objects.all()


def test_every_api_viewset_is_scoped():
    from api.urls import router

    for _prefix, viewset, _basename in router.registry:
        assert issubclass(viewset, ScopedViewSet)
        visible = viewset.visible
        assert visible.__module__.startswith("crm.permissions") or visible.__name__.startswith(
            "dangerously_"
        ), viewset


def test_the_schema_and_docs_are_served_locally(rep_client, anonymous_api):
    schema = rep_client.get("/api/schema/", {"format": "json"})
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert "/api/v1/customers/" in paths and "/api/v1/deals/{id}/move/" in paths
    assert anonymous_api.get("/api/schema/").status_code == 401
    docs = rep_client.get("/api/docs/")
    assert docs.status_code == 200
    html = docs.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in html
    assert "https://" not in html  # no CDN
    assert "<script>" not in html  # the init script is a separate file: the CSP holds
    script = rep_client.get("/api/docs/", {"script": ""})
    assert script.status_code == 200 and "SwaggerUIBundle" in script.content.decode()
    redoc = rep_client.get("/api/docs/redoc/")
    assert redoc.status_code == 200 and "https://" not in redoc.content.decode()
    assert "worker-src 'self' blob:" in redoc["Content-Security-Policy"]
    assert "worker-src" not in docs["Content-Security-Policy"]  # relaxed for Redoc only


def test_the_docs_need_a_login(client):
    assert client.get("/api/docs/").status_code == 302


def test_a_nul_character_is_a_json_400(rep_api):
    response = rep_api.get("/api/v1/customers/", {"q": "a\x00b"})
    assert response.status_code == 400 and response.json()["code"] == "invalid"
