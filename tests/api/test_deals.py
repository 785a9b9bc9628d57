import pytest

from crm.models import AuditEvent
from sales.models import Sale, SaleActivity, StageChange
from tests.factories import CustomerFactory, SaleFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/deals/"


@pytest.fixture
def deal(rep):
    return SaleFactory(customer=CustomerFactory(owner=rep), assigned_to=rep, title="Mine")


@pytest.fixture
def shared_deal(rep, other_rep):
    """Another rep's deal on a customer shared with `rep`: readable, not writable."""
    customer = CustomerFactory(owner=other_rep, shared_with=[rep])
    return SaleFactory(customer=customer, assigned_to=other_rep, title="Shared")


def test_list_scoped_and_filtered(rep_api, deal, shared_deal, other_rep):
    SaleFactory(customer=CustomerFactory(owner=other_rep), title="Theirs")
    ids = [row["id"] for row in rep_api.get(URL).json()["results"]]
    assert sorted(ids) == sorted([deal.pk, shared_deal.pk])
    assert [r["id"] for r in rep_api.get(URL, {"q": "Shar"}).json()["results"]] == [shared_deal.pk]
    assert rep_api.get(URL, {"status": "BOGUS"}).status_code == 400


def test_list_queries_are_fixed(rep_api, rep, django_assert_max_num_queries):
    for _ in range(3):
        SaleFactory(customer=CustomerFactory(owner=rep), assigned_to=rep)
    with django_assert_max_num_queries(8):
        rep_api.get(URL)
    for _ in range(15):
        SaleFactory(customer=CustomerFactory(owner=rep), assigned_to=rep)
    with django_assert_max_num_queries(8):
        assert len(rep_api.get(URL).json()["results"]) == 18


def test_another_reps_deal_is_404(other_rep_api, deal):
    assert other_rep_api.get(f"{URL}{deal.pk}/").status_code == 404
    assert other_rep_api.patch(f"{URL}{deal.pk}/", {"title": "x"}, format="json").status_code == 404
    move = other_rep_api.post(f"{URL}{deal.pk}/move/", {"to_status": "CONTACTED"}, format="json")
    assert move.status_code == 404


def test_a_shared_deal_is_403_on_every_write(rep_api, shared_deal):
    assert rep_api.get(f"{URL}{shared_deal.pk}/").status_code == 200
    base = f"{URL}{shared_deal.pk}/"
    assert rep_api.patch(base, {"title": "x"}, format="json").status_code == 403
    assert rep_api.delete(base).status_code == 403
    move = rep_api.post(f"{base}move/", {"to_status": "CONTACTED"}, format="json")
    assert move.status_code == 403
    log = rep_api.post(
        "/api/v1/deal-activities/", {"sale": shared_deal.pk, "kind": "call", "text": "Hi"},
        format="json",
    )  # fmt: skip
    assert log.status_code == 403
    assert Sale.objects.get(pk=shared_deal.pk).title == "Shared"


def test_create_update_delete_through_the_services(rep_api, rep):
    customer = CustomerFactory(owner=rep)
    created = rep_api.post(
        URL, {"title": "Big", "customer": customer.pk, "amount": "1200.50", "currency": "EUR"},
        format="json",
    )  # fmt: skip
    assert created.status_code == 201, created.json()
    sale = Sale.objects.get(pk=created.json()["id"])
    assert sale.assigned_to == rep and StageChange.objects.filter(sale=sale).count() == 1
    assert created.json()["amount"] == "1200.50"
    updated = rep_api.patch(f"{URL}{sale.pk}/", {"amount": "99.00"}, format="json")
    assert updated.status_code == 200 and updated.json()["amount"] == "99.00"
    assert AuditEvent.objects.filter(verb="update", object_id=str(sale.pk)).exists()
    assert rep_api.delete(f"{URL}{sale.pk}/").status_code == 204


def test_create_refuses_a_customer_out_of_reach_like_a_missing_one(rep_api, other_rep):
    theirs = CustomerFactory(owner=other_rep)
    response = rep_api.post(URL, {"title": "X", "customer": theirs.pk}, format="json")
    missing = rep_api.post(URL, {"title": "X", "customer": 10**12}, format="json")
    assert response.status_code == missing.status_code == 400
    [refused], [absent] = (
        response.json()["errors"]["customer"],
        missing.json()["errors"]["customer"],
    )
    assert refused.replace(str(theirs.pk), "N") == absent.replace(str(10**12), "N")


def test_validation_errors(rep_api, rep):
    customer = CustomerFactory(owner=rep)
    response = rep_api.post(
        URL, {"title": "", "customer": customer.pk, "amount": "-5"}, format="json"
    )
    assert response.status_code == 400
    assert {"title", "amount"} <= set(response.json()["errors"])


def test_move_runs_the_boards_rules(rep_api, deal):
    response = rep_api.post(f"{URL}{deal.pk}/move/", {"to_status": "CONTACTED",
                            "expected_status": "NEW"}, format="json")  # fmt: skip
    assert response.status_code == 200 and response.json()["status"] == "CONTACTED"
    assert StageChange.objects.filter(sale=deal, to_status="CONTACTED").exists()
    lost = rep_api.post(f"{URL}{deal.pk}/move/", {"to_status": "LOST"}, format="json")
    assert lost.status_code == 400 and "closed_on" in lost.json()["errors"]


def test_a_stale_move_is_a_409(rep_api, deal):
    rep_api.post(f"{URL}{deal.pk}/move/", {"to_status": "CONTACTED"}, format="json")
    stale = rep_api.post(
        f"{URL}{deal.pk}/move/", {"to_status": "PROPOSAL", "expected_status": "NEW"},
        format="json",
    )  # fmt: skip
    assert stale.status_code == 409
    body = stale.json()
    assert body["code"] == "stage_conflict" and "meanwhile" in body["detail"]
    assert Sale.objects.get(pk=deal.pk).status == "CONTACTED"


def test_status_cannot_be_patched(rep_api, deal):
    response = rep_api.patch(f"{URL}{deal.pk}/", {"status": "WON"}, format="json")
    assert response.status_code == 200  # not an input field: ignored
    assert Sale.objects.get(pk=deal.pk).status == "NEW"


def test_log_a_call(rep_api, deal, other_rep_api):
    url = "/api/v1/deal-activities/"
    response = rep_api.post(url, {"sale": deal.pk, "kind": "call", "text": "Called"},
                            format="json")  # fmt: skip
    assert response.status_code == 201
    activity = SaleActivity.objects.get()
    assert activity.user == deal.assigned_to
    deal.customer.refresh_from_db()
    assert deal.customer.last_contact_date is not None
    assert rep_api.post(url, {"sale": deal.pk, "kind": "call", "text": " "},
                        format="json").status_code == 400  # fmt: skip
    assert rep_api.post(url, {"sale": deal.pk, "kind": "x", "text": "a"},
                        format="json").status_code == 400  # fmt: skip
    assert [r["id"] for r in rep_api.get(url, {"sale": deal.pk}).json()["results"]] == [activity.pk]
    assert other_rep_api.get(url).json()["results"] == []
    assert other_rep_api.get(f"{url}{activity.pk}/").status_code == 404
    refused = other_rep_api.post(url, {"sale": deal.pk, "kind": "call", "text": "x"},
                                 format="json")  # fmt: skip
    assert refused.status_code == 404


def test_activity_list_queries_are_fixed(rep_api, deal, django_assert_max_num_queries):
    from tests.factories import SaleActivityFactory

    SaleActivityFactory.create_batch(3, sale=deal)
    with django_assert_max_num_queries(7):
        rep_api.get("/api/v1/deal-activities/")
    SaleActivityFactory.create_batch(15, sale=deal)
    with django_assert_max_num_queries(7):
        assert len(rep_api.get("/api/v1/deal-activities/").json()["results"]) == 18
