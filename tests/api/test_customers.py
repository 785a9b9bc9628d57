from datetime import timedelta

import pytest
from django.utils import timezone

from crm.models import AuditEvent
from customers.models import Customer
from tests.factories import CustomerFactory, TagFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/customers/"


def test_a_rep_lists_own_and_shared_customers_not_others(rep_api, rep, other_rep):
    mine = CustomerFactory(owner=rep, name="Mine")
    shared = CustomerFactory(owner=other_rep, name="Shared", shared_with=[rep])
    CustomerFactory(owner=other_rep, name="Theirs")
    response = rep_api.get(URL)
    assert response.status_code == 200
    assert [row["id"] for row in response.json()["results"]] == [mine.pk, shared.pk]


def test_the_mobile_list_is_a_sparse_fieldset(rep_api, rep):
    CustomerFactory(owner=rep, name="Ann", phone="+1 555")
    row = rep_api.get(URL, {"fields": "mobile"}).json()["results"][0]
    assert set(row) == {"id", "name", "company", "email", "phone", "lifecycle_stage", "updated_at"}
    assert set(rep_api.get(URL, {"fields": "id,name"}).json()["results"][0]) == {"id", "name"}


def test_an_unknown_field_is_a_400(rep_api):
    response = rep_api.get(URL, {"fields": "id,password"})
    assert response.status_code == 400
    assert "fields" in response.json()["errors"]


def test_filters(rep_api, rep):
    CustomerFactory(owner=rep, name="A", region="emea", lifecycle_stage="lead", company="X")
    b = CustomerFactory(owner=rep, name="Quixotic", region="apac", lifecycle_stage="customer",
                        company="Y", tags=[TagFactory(name="vip")])  # fmt: skip
    assert [r["id"] for r in rep_api.get(URL, {"region": "apac"}).json()["results"]] == [b.pk]
    assert [r["id"] for r in rep_api.get(URL, {"tag": "vip"}).json()["results"]] == [b.pk]
    assert [r["id"] for r in rep_api.get(URL, {"q": "quixo"}).json()["results"]] == [b.pk]
    assert rep_api.get(URL, {"region": "mars"}).status_code == 400


def test_the_list_runs_a_fixed_number_of_queries(rep_api, rep, django_assert_max_num_queries):
    for _ in range(3):
        CustomerFactory(owner=rep, tags=[TagFactory()])
    with django_assert_max_num_queries(9):
        first = rep_api.get(URL)
    for _ in range(20):
        CustomerFactory(owner=rep, tags=[TagFactory()])
    with django_assert_max_num_queries(9):
        second = rep_api.get(URL)
    assert len(first.json()["results"]) == 3 and len(second.json()["results"]) == 23


def test_cursor_pages(rep_api, rep):
    for n in range(5):
        CustomerFactory(owner=rep, name=f"C{n}")
    page = rep_api.get(URL, {"page_size": 2}).json()
    names = [r["name"] for r in page["results"]]
    while page["next"]:
        page = rep_api.get(page["next"]).json()
        names += [r["name"] for r in page["results"]]
    assert names == ["C0", "C1", "C2", "C3", "C4"]


def test_detail_of_another_reps_customer_is_404(rep_api, other_rep):
    theirs = CustomerFactory(owner=other_rep)
    assert rep_api.get(f"{URL}{theirs.pk}/").status_code == 404
    assert rep_api.patch(f"{URL}{theirs.pk}/", {"name": "x"}, format="json").status_code == 404
    assert rep_api.delete(f"{URL}{theirs.pk}/").status_code == 404


def test_a_shared_customer_is_readable_but_not_writable(rep_api, rep, other_rep):
    shared = CustomerFactory(owner=other_rep, shared_with=[rep])
    assert rep_api.get(f"{URL}{shared.pk}/").status_code == 200
    response = rep_api.patch(f"{URL}{shared.pk}/", {"name": "x"}, format="json")
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert rep_api.delete(f"{URL}{shared.pk}/").status_code == 403


def test_create_goes_through_the_service(rep_api, rep):
    response = rep_api.post(URL, {"name": "New Co", "email": "NEW@x.example"}, format="json")
    assert response.status_code == 201, response.json()
    customer = Customer.objects.get(pk=response.json()["id"])
    assert customer.owner == rep and customer.email == "new@x.example"
    assert AuditEvent.objects.filter(verb="create", object_id=str(customer.pk)).exists()


def test_create_validation_errors_are_400_with_fields(rep_api, rep):
    CustomerFactory(owner=rep, email="taken@x.example")
    response = rep_api.post(URL, {"name": "", "email": "not-an-email"}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid" and {"name", "email"} <= set(body["errors"])
    taken = rep_api.post(URL, {"name": "X", "email": "TAKEN@x.example"}, format="json")
    assert taken.status_code == 400
    assert taken.json()["errors"]["email"] == ["A customer with this email already exists."]


def test_a_rep_cannot_give_a_customer_to_another_team(rep_api, other_rep):
    response = rep_api.post(
        URL, {"name": "X", "email": "x@x.example", "owner": other_rep.pk}, format="json"
    )
    assert response.status_code == 400
    assert "owner" in response.json()["errors"]


def test_update_and_delete(rep_api, rep):
    customer = CustomerFactory(owner=rep)
    response = rep_api.patch(f"{URL}{customer.pk}/", {"phone": "+44 1"}, format="json")
    assert response.status_code == 200 and response.json()["phone"] == "+44 1"
    assert rep_api.delete(f"{URL}{customer.pk}/").status_code == 204
    assert not Customer.objects.filter(pk=customer.pk).exists()


def test_no_token_is_401(anonymous_api):
    response = anonymous_api.get(URL)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert response.json()["code"] == "not_authenticated"


def test_a_manager_sees_the_teams_customers(manager_api, rep, other_rep):
    mine = CustomerFactory(owner=rep)
    CustomerFactory(owner=other_rep)
    assert [r["id"] for r in manager_api.get(URL).json()["results"]] == [mine.pk]


def test_updated_since_must_be_a_date(rep_api):
    assert rep_api.get(URL, {"updated_since": "yesterday"}).status_code == 400
    since = (timezone.now() - timedelta(days=1)).isoformat()
    assert rep_api.get(URL, {"updated_since": since}).status_code == 200
