"""Sharing gives read access only; a deal belongs to its assignee's reach, not the customer's."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from crm.errors import PermissionDenied
from crm.models import AuditEvent
from customers import services as customer_services
from customers.models import Customer, CustomerNote
from customers.services import customer_record_contact
from sales import services as sale_services
from sales.models import Sale, SaleActivity, Task
from tests.factories import CustomerFactory, SaleFactory, TaskFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def shared_customer(rep, other_rep, teams):
    """other_rep's customer, shared with rep to read."""
    return CustomerFactory(owner=other_rep, shared_with=[rep])


@pytest.fixture
def foreign_deal(shared_customer, other_rep):
    return SaleFactory(customer=shared_customer, assigned_to=other_rep)


def test_reader_of_a_shared_customer_cannot_write_notes(rep_client, rep, shared_customer):
    response = rep_client.post(
        reverse("customers:note_add", args=[shared_customer.pk]), {"text": "sneaky"}
    )
    assert response.status_code == 404
    with pytest.raises(PermissionDenied):
        customer_services.customer_note_add(actor=rep, customer=shared_customer, text="x")
    assert not CustomerNote.objects.exists()
    page = rep_client.get(reverse("customers:detail", args=[shared_customer.pk])).content
    assert b"shared with you to read" in page


def test_reader_of_a_shared_deal_cannot_log_activities_or_add_tasks(rep_client, rep, foreign_deal):
    assert rep_client.get(reverse("sales:detail", args=[foreign_deal.pk])).status_code == 200
    activity = rep_client.post(
        reverse("sales:activity_add", args=[foreign_deal.pk]), {"kind": "call", "text": "x"}
    )
    task = rep_client.post(
        reverse("sales:task_add", args=[foreign_deal.pk]),
        {"title": "x", "assigned_to": rep.pk, "priority": "LOW", "due_at": "2026-12-01T10:00"},
    )
    assert (activity.status_code, task.status_code) == (404, 404)
    with pytest.raises(PermissionDenied):
        sale_services.sale_activity_add(actor=rep, sale=foreign_deal, kind="call", text="x")
    assert not SaleActivity.objects.exists()
    assert not Task.objects.exists()


def test_customer_owner_cannot_change_another_reps_deal(rep_client, rep, other_rep):
    my_customer = CustomerFactory(owner=rep)
    their_deal = SaleFactory(customer=my_customer, assigned_to=other_rep)
    assert rep_client.get(reverse("sales:detail", args=[their_deal.pk])).status_code == 200
    assert rep_client.get(reverse("sales:edit", args=[their_deal.pk])).status_code == 404
    assert rep_client.post(reverse("sales:delete", args=[their_deal.pk])).status_code == 404
    assert Sale.objects.filter(pk=their_deal.pk, assigned_to=other_rep).exists()


def test_customer_with_other_peoples_deals_cannot_be_deleted(rep_client, rep, other_rep):
    my_customer = CustomerFactory(owner=rep)
    SaleFactory(customer=my_customer, assigned_to=other_rep)
    response = rep_client.post(reverse("customers:delete", args=[my_customer.pk]), follow=True)
    assert "deals owned by other people" in response.content.decode()
    assert Customer.objects.filter(pk=my_customer.pk).exists()


def test_deal_assigned_outside_the_team_is_read_only_for_the_manager(
    manager_client, rep, other_rep
):
    team_customer = CustomerFactory(owner=rep)
    deal = SaleFactory(customer=team_customer, assigned_to=rep)
    Sale.objects.filter(pk=deal.pk).update(assigned_to=other_rep)
    # Not editable for the manager now (assigned outside the team): refused, not broken.
    assert manager_client.get(reverse("sales:edit", args=[deal.pk])).status_code == 404


def test_deal_form_keeps_current_assignee_selectable(client, manager, rep, other_rep, teams):
    """A manager editing a team deal whose customer they cannot see keeps it valid."""
    foreign_customer = CustomerFactory(owner=other_rep)
    deal = SaleFactory(customer=foreign_customer, assigned_to=rep)
    client.force_login(manager)
    response = client.post(
        reverse("sales:edit", args=[deal.pk]),
        {
            "title": "Renamed",
            "customer": foreign_customer.pk,
            "assigned_to": rep.pk,
            "amount": "5",
            "currency": "USD",
        },
    )
    assert response.status_code == 302
    deal.refresh_from_db()
    assert (deal.title, deal.customer) == ("Renamed", foreign_customer)


def test_customer_edit_can_keep_the_editor_in_shared_with(rep_client, rep, teammate):
    customer = CustomerFactory(owner=rep, shared_with=[teammate, rep])
    form = rep_client.get(reverse("customers:edit", args=[customer.pk])).context["form"]
    assert rep in form.fields["shared_with"].queryset


def test_moving_a_deal_moves_its_tasks(rep):
    first, second = CustomerFactory(owner=rep), CustomerFactory(owner=rep)
    deal = SaleFactory(customer=first)
    task = TaskFactory(assigned_to=rep, sale=deal, customer=first)
    sale_services.sale_update(actor=rep, sale=deal, data={"customer": second})
    task.refresh_from_db()
    assert task.customer == second


def test_last_contact_never_moves_backwards(rep):
    customer = CustomerFactory(owner=rep, last_contact_date=date(2026, 5, 1))
    customer_record_contact(customer_id=customer.pk, contact_date=date(2026, 4, 1))
    customer.refresh_from_db()
    assert customer.last_contact_date == date(2026, 5, 1)
    customer_record_contact(customer_id=customer.pk, contact_date=date(2026, 6, 1))
    customer.refresh_from_db()
    assert customer.last_contact_date == date(2026, 6, 1)


def test_activity_is_audited(rep):
    deal = SaleFactory(customer=CustomerFactory(owner=rep))
    activity = sale_services.sale_activity_add(
        actor=rep, sale=deal, kind="call", text="Hi", occurred_at=timezone.now() - timedelta(1)
    )
    assert AuditEvent.objects.filter(verb="create", object_id=str(activity.pk)).exists()


def test_saving_an_unchanged_amount_records_no_change(rep):
    deal = SaleFactory(customer=CustomerFactory(owner=rep), amount=Decimal("1000.00"))
    sale_services.sale_update(actor=rep, sale=deal, data={"amount": Decimal("1000")})
    assert not AuditEvent.objects.filter(verb="update", object_id=str(deal.pk)).exists()


def test_export_neutralises_spreadsheet_formulas(rep_client, rep):
    CustomerFactory(owner=rep, name='=HYPERLINK("http://evil.example","x")', company="@SUM(A1)")
    response = rep_client.get(reverse("customers:export"))
    body = b"".join(response.streaming_content).decode()
    assert "'=HYPERLINK" in body
    assert "'@SUM(A1)" in body


def test_csv_import_query_count_does_not_grow_with_rows(rep, teams):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from customers import csv_import

    def run(rows: int) -> int:
        text = "name,email,annual_revenue\n" + "".join(
            f"P{i},p{rows}-{i}@x.example,{i}\n" for i in range(rows)
        )
        customer_import = csv_import.customer_import_upload(
            actor=rep,
            uploaded_file=SimpleUploadedFile("a.csv", text.encode()),
            duplicate_mode="skip",
        )
        with CaptureQueriesContext(connection) as queries:
            csv_import.customer_import_run(
                actor=rep,
                customer_import=customer_import,
                mapping=customer_import.column_mapping,
                duplicate_mode="skip",
            )
        return len(queries)

    assert run(300) <= run(10) + 2
    assert Customer.objects.count() == 310
