import csv
import io

import pytest
from django.urls import reverse

from crm.models import AuditEvent
from customers.models import Customer, CustomerNote
from tests.factories import CustomerFactory, SaleFactory, TagFactory, TaskFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def my_customer(rep, teams):
    return CustomerFactory(owner=rep, name="Mine Corp", email="mine@example.com")


# List ------------------------------------------------------------------------------------


def test_list_shows_only_visible_customers(rep_client, rep, other_rep):
    CustomerFactory(owner=rep, name="Visible Ltd")
    CustomerFactory(owner=other_rep, name="Hidden Ltd")
    page = rep_client.get(reverse("customers:list")).content.decode()
    assert "Visible Ltd" in page
    assert "Hidden Ltd" not in page


def test_list_filters_search_and_sorts(rep_client, rep):
    tag = TagFactory(name="vip")
    CustomerFactory(owner=rep, name="Bravo", region="apac", lifecycle_stage="customer")
    CustomerFactory(owner=rep, name="Alpha", region="emea", tags=[tag])
    CustomerFactory(owner=rep, name="Charlie", region="emea", company="Zeta Inc")
    url = reverse("customers:list")

    names = _names(rep_client.get(url, {"region": "emea", "sort": "-name"}))
    assert names == ["Charlie", "Alpha"]
    assert _names(rep_client.get(url, {"q": "zeta"})) == ["Charlie"]
    assert _names(rep_client.get(url, {"tag": tag.pk})) == ["Alpha"]
    assert _names(rep_client.get(url, {"lifecycle_stage": "customer"})) == ["Bravo"]


def _names(response):
    assert response.status_code == 200
    return [c.name for c in response.context["page"].object_list]


def test_htmx_request_gets_only_the_table(rep_client, my_customer):
    response = rep_client.get(reverse("customers:list"), headers={"HX-Request": "true"})
    assert response.status_code == 200
    body = response.content.decode()
    assert "Mine Corp" in body
    assert "<html" not in body


def test_list_paginates(rep_client, rep):
    CustomerFactory.create_batch(30, owner=rep)
    first = rep_client.get(reverse("customers:list"))
    second = rep_client.get(reverse("customers:list"), {"page": 2})
    assert len(first.context["page"].object_list) == 25
    assert len(second.context["page"].object_list) == 5


@pytest.mark.parametrize(
    "params",
    [
        {"page": "abc"},
        {"page": "-1"},
        {"page": "999999999999999999999"},
        {"sort": "password"},
        {"sort": "-owner__password"},
        {"q": "'; DROP TABLE customers_customer; --"},
        {"q": "%_%\\"},
        {"owner": "not-a-number"},
        {"tag": "99999999"},
        {"region": "<script>alert(1)</script>"},
        {"lifecycle_stage": "x" * 500},
    ],
)
def test_hostile_query_strings_never_break_the_list(rep_client, my_customer, params):
    response = rep_client.get(reverse("customers:list"), params)
    assert response.status_code == 200
    assert Customer.objects.filter(pk=my_customer.pk).exists()
    assert "<script>alert(1)</script>" not in response.content.decode()


@pytest.mark.parametrize("role_client", ["rep_client", "manager_client", "admin_client_"])
def test_list_query_count_is_fixed(request, role_client, rep, django_assert_max_num_queries):
    client = request.getfixturevalue(role_client)
    for index in range(30):
        CustomerFactory(owner=rep, tags=[TagFactory(name=f"t{index % 3}")])
    tag = TagFactory(name="t1")
    params = {"sort": "-created", "region": "emea", "tag": tag.pk, "owner": rep.pk, "q": "a"}
    with django_assert_max_num_queries(8):
        response = client.get(reverse("customers:list"), params)
    assert response.status_code == 200


# Detail, create, edit, delete -------------------------------------------------------------


def test_detail_of_own_customer(rep_client, my_customer):
    response = rep_client.get(reverse("customers:detail", args=[my_customer.pk]))
    assert response.status_code == 200
    assert b"Mine Corp" in response.content


def test_shared_customer_is_readable_but_not_editable(rep_client, other_rep, rep):
    shared = CustomerFactory(owner=other_rep, shared_with=[rep])
    assert rep_client.get(reverse("customers:detail", args=[shared.pk])).status_code == 200
    assert rep_client.get(reverse("customers:edit", args=[shared.pk])).status_code == 404


@pytest.mark.parametrize(
    "name,method", [("detail", "get"), ("edit", "get"), ("edit", "post"), ("delete", "post")]
)
def test_other_rep_is_refused(other_rep_client, my_customer, name, method):
    url = reverse(f"customers:{name}", args=[my_customer.pk])
    response = getattr(other_rep_client, method)(url)
    assert response.status_code == 404
    assert Customer.objects.filter(pk=my_customer.pk).exists()


def test_other_rep_cannot_add_notes_or_load_the_panel(other_rep_client, my_customer):
    url = reverse("customers:note_add", args=[my_customer.pk])
    assert other_rep_client.post(url, {"text": "hi"}).status_code == 404
    assert not CustomerNote.objects.exists()
    panel = reverse("sales:customer_panel", args=[my_customer.pk])
    assert other_rep_client.get(panel).status_code == 404


def test_unknown_ids_are_404(rep_client):
    assert rep_client.get("/customers/987654/").status_code == 404
    assert rep_client.get("/customers/987654/edit/").status_code == 404


def test_manager_can_open_team_customer(manager_client, my_customer):
    assert manager_client.get(reverse("customers:edit", args=[my_customer.pk])).status_code == 200


def test_create_customer(rep_client, rep):
    response = rep_client.post(
        reverse("customers:create"),
        {
            "name": "New Co",
            "email": "Hello@NewCo.example",
            "owner": rep.pk,
            "source": "web",
            "lifecycle_stage": "lead",
            "engagement_level": "MEDIUM",
        },
    )
    customer = Customer.objects.get(name="New Co")
    assert response.status_code == 302
    assert response["Location"] == reverse("customers:detail", args=[customer.pk])
    assert customer.email == "hello@newco.example"


def test_create_with_bad_input_shows_errors_and_saves_nothing(rep_client, rep, my_customer):
    response = rep_client.post(
        reverse("customers:create"),
        {
            "name": "",
            "email": "MINE@example.com",
            "owner": rep.pk,
            "company_size": "-3",
            "source": "web",
            "lifecycle_stage": "lead",
            "engagement_level": "MEDIUM",
        },
    )
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert "name" in errors
    assert "company_size" in errors
    assert Customer.objects.count() == 1


def test_create_with_duplicate_email_reports_it_on_the_field(rep_client, rep, my_customer):
    response = rep_client.post(
        reverse("customers:create"),
        {
            "name": "Copy",
            "email": "MINE@example.com",
            "owner": rep.pk,
            "source": "web",
            "lifecycle_stage": "lead",
            "engagement_level": "MEDIUM",
        },
    )
    assert response.context["form"].errors["email"] == [
        "A customer with this email already exists."
    ]
    assert Customer.objects.count() == 1


def test_rep_cannot_pick_another_owner_in_the_form(rep_client, other_rep):
    response = rep_client.post(
        reverse("customers:create"),
        {
            "name": "X",
            "email": "x@example.com",
            "owner": other_rep.pk,
            "source": "web",
            "lifecycle_stage": "lead",
            "engagement_level": "MEDIUM",
        },
    )
    assert "owner" in response.context["form"].errors
    assert not Customer.objects.filter(name="X").exists()


def test_edit_customer_writes_audit(rep_client, rep, my_customer):
    response = rep_client.post(
        reverse("customers:edit", args=[my_customer.pk]),
        {
            "name": "Renamed Corp",
            "email": my_customer.email,
            "owner": rep.pk,
            "source": "web",
            "lifecycle_stage": "prospect",
            "engagement_level": "HIGH",
        },
    )
    assert response.status_code == 302
    my_customer.refresh_from_db()
    assert my_customer.name == "Renamed Corp"
    event = AuditEvent.objects.get(verb="update", object_id=str(my_customer.pk))
    assert event.changes["name"] == ["Mine Corp", "Renamed Corp"]


def test_delete_asks_for_confirmation_and_lists_what_goes_with_it(rep_client, my_customer):
    sale = SaleFactory(customer=my_customer)
    TaskFactory.create_batch(2, sale=sale, customer=my_customer, assigned_to=sale.assigned_to)
    CustomerNote.objects.create(customer=my_customer, text="hello")
    confirm = rep_client.get(reverse("customers:delete", args=[my_customer.pk]))
    assert confirm.status_code == 200
    page = confirm.content.decode()
    assert "1 sale<" in page
    assert "2 tasks" in page
    assert "1 customer note" in page
    assert Customer.objects.filter(pk=my_customer.pk).exists()
    response = rep_client.post(reverse("customers:delete", args=[my_customer.pk]))
    assert response.status_code == 302
    assert not Customer.objects.filter(pk=my_customer.pk).exists()


def test_add_note_with_htmx_returns_the_notes_block(rep_client, my_customer):
    response = rep_client.post(
        reverse("customers:note_add", args=[my_customer.pk]),
        {"text": "Prefers email"},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    assert b"Prefers email" in response.content
    empty = rep_client.post(
        reverse("customers:note_add", args=[my_customer.pk]),
        {"text": ""},
        headers={"HX-Request": "true"},
    )
    assert empty.status_code == 422
    assert CustomerNote.objects.count() == 1


def test_customer_panel_lists_deals_and_tasks(rep_client, my_customer):
    sale = SaleFactory(customer=my_customer, title="Big renewal")
    response = rep_client.get(reverse("sales:customer_panel", args=[my_customer.pk]))
    assert response.status_code == 200
    assert sale.title.encode() in response.content


# Bulk assign ---------------------------------------------------------------------------------


def test_bulk_assign_by_manager(manager_client, rep, teammate, my_customer):
    response = manager_client.post(
        reverse("customers:bulk_assign"),
        {"customer_ids": [my_customer.pk], "owner": teammate.pk},
    )
    assert response.status_code == 302
    my_customer.refresh_from_db()
    assert my_customer.owner == teammate


def test_bulk_assign_is_refused_to_reps(rep_client, teammate, my_customer):
    response = rep_client.post(
        reverse("customers:bulk_assign"),
        {"customer_ids": [my_customer.pk], "owner": teammate.pk},
    )
    assert response.status_code == 403


def test_bulk_assign_ignores_other_teams_customers(manager_client, teammate, other_rep):
    foreign = CustomerFactory(owner=other_rep)
    manager_client.post(
        reverse("customers:bulk_assign"), {"customer_ids": [foreign.pk], "owner": teammate.pk}
    )
    foreign.refresh_from_db()
    assert foreign.owner == other_rep


def test_bulk_assign_with_garbage_ids_is_a_message_not_a_500(manager_client, teammate):
    response = manager_client.post(
        reverse("customers:bulk_assign"), {"customer_ids": ["x"], "owner": teammate.pk}
    )
    assert response.status_code == 302


# Export ----------------------------------------------------------------------------------------


def test_export_streams_the_filtered_visible_list(rep_client, rep, other_rep):
    tag = TagFactory(name="vip")
    CustomerFactory(owner=rep, name="In Emea", region="emea", tags=[tag])
    CustomerFactory(owner=rep, name="In Apac", region="apac")
    CustomerFactory(owner=other_rep, name="Not mine", region="emea")
    response = rep_client.get(reverse("customers:export"), {"region": "emea"})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv"
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][0] == "name"
    assert [row[0] for row in rows[1:]] == ["In Emea"]
    assert rows[1][rows[0].index("tags")] == "vip"


def test_export_carries_consent_as_the_import_reads_it_back(rep_client, rep):
    CustomerFactory(owner=rep, name="Granted", email_consent="granted")
    CustomerFactory(owner=rep, name="Withdrawn", email_consent="withdrawn")
    CustomerFactory(owner=rep, name="Unknown", email_consent="unknown")
    response = rep_client.get(reverse("customers:export"), {"sort": "name"})
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    column = rows[0].index("email_consent")
    consent = {row[0]: row[column] for row in rows[1:]}
    assert consent == {"Granted": "yes", "Withdrawn": "no", "Unknown": ""}
    from customers.csv_import import CONSENT_VALUES

    assert CONSENT_VALUES["yes"] == "granted" and CONSENT_VALUES["no"] == "withdrawn"
