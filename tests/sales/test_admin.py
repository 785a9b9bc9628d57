"""Django admin goes through the sales services for what they keep: a new deal gets its
first stage change, and a deal's stage is not edited around sale_change_stage."""

from decimal import Decimal

import pytest

from crm import cache as crm_cache
from crm.models import AuditEvent
from sales.models import Sale
from tests.factories import CustomerFactory, RepFactory, SaleFactory

pytestmark = pytest.mark.django_db

ADD_URL = "/admin/sales/sale/add/"


def _deal_form(customer, **fields):
    return {
        "title": "Admin deal",
        "customer": customer.pk,
        "assigned_to": customer.owner_id,
        "amount": "1200",
        "currency": "USD",
        "status": "PROPOSAL",
        "stage_changes-TOTAL_FORMS": "0",
        "stage_changes-INITIAL_FORMS": "0",
        **fields,
    }


def test_a_deal_added_in_admin_starts_its_stage_history(admin_client_, rep):
    response = admin_client_.post(ADD_URL, _deal_form(CustomerFactory(owner=rep)))
    assert response.status_code == 302, response.content.decode()[:2000]
    sale = Sale.objects.get(title="Admin deal")
    (change,) = sale.stage_changes.all()
    assert change.to_status == "PROPOSAL" and change.left_at is None
    assert sale.furthest_stage_rank == Sale.FUNNEL_STATUSES.index("PROPOSAL")


def test_admin_cannot_add_a_closed_deal(admin_client_, rep):
    form = _deal_form(CustomerFactory(owner=rep), status="WON")
    response = admin_client_.post(ADD_URL, form)
    assert response.status_code == 200
    assert "Create the deal in an open stage" in response.content.decode()
    assert not Sale.objects.filter(title="Admin deal").exists()


def test_admin_edits_leave_the_stage_alone(admin_client_, rep):
    sale = SaleFactory(customer=CustomerFactory(owner=rep), assigned_to=rep, status="NEW")
    url = f"/admin/sales/sale/{sale.pk}/change/"
    form = _deal_form(sale.customer, title="Renamed", status="WON", closed_at_0="2026-01-01")
    response = admin_client_.post(url, form)
    assert response.status_code == 302
    sale.refresh_from_db()
    assert (sale.title, sale.status, sale.closed_at) == ("Renamed", "NEW", None)


def test_a_rep_cannot_reach_the_sales_admin(client, rep):
    client.force_login(rep)
    response = client.get(ADD_URL)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_a_deal_added_unassigned_stays_unassigned(admin_client_, rep):
    form = _deal_form(CustomerFactory(owner=rep), assigned_to="")
    assert admin_client_.post(ADD_URL, form).status_code == 302
    assert Sale.objects.get(title="Admin deal").assigned_to is None


def test_the_services_refusal_is_a_form_error_not_a_crash(admin_client_, rep):
    inactive = RepFactory(is_active=False)  # nobody may be given work any more
    form = _deal_form(CustomerFactory(owner=rep), assigned_to=inactive.pk)
    response = admin_client_.post(ADD_URL, form)
    assert response.status_code == 200
    assert "You cannot assign work to this user." in response.content.decode()
    assert not Sale.objects.filter(title="Admin deal").exists()


def test_an_admin_edit_goes_through_sale_update(
    admin_client_, admin_user, rep, django_capture_on_commit_callbacks
):
    sale = SaleFactory(customer=CustomerFactory(owner=rep), assigned_to=rep, amount=Decimal(10))
    generation = crm_cache.generation(crm_cache.DEALS)
    form = _deal_form(sale.customer, title=sale.title, amount="25")
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client_.post(f"/admin/sales/sale/{sale.pk}/change/", form)
    assert response.status_code == 302
    event = AuditEvent.objects.get(object_id=str(sale.pk), verb="update")
    assert event.actor == admin_user and event.changes["amount"] == ["10", "25"]
    assert crm_cache.generation(crm_cache.DEALS) > generation


def test_stage_changes_are_read_only_in_admin(admin_client_, rep):
    sale = SaleFactory(customer=CustomerFactory(owner=rep), assigned_to=rep)
    assert admin_client_.get("/admin/sales/stagechange/add/").status_code == 403
    sale_page = admin_client_.get(f"/admin/sales/sale/{sale.pk}/change/").content.decode()
    # No form to add one: the inline allows none.
    assert 'name="stage_changes-MAX_NUM_FORMS" value="0"' in sale_page
