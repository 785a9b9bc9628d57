"""sales.services.deals: deals, stage changes and activities."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from crm.errors import PermissionDenied, ValidationFailed
from crm.models import AuditEvent
from sales import selectors, services
from sales.models import Sale, StageChange
from tests.factories import CustomerFactory, SaleFactory

pytestmark = pytest.mark.django_db


def test_create_sale_starts_history_and_audit(rep, teams):
    customer = CustomerFactory(owner=rep)
    sale = services.sale_create(
        actor=rep, data={"title": "Seats", "customer": customer, "amount": Decimal("5000")}
    )
    assert sale.assigned_to == rep
    change = StageChange.objects.get(sale=sale)
    assert (change.from_status, change.to_status, change.changed_by) == ("", "NEW", rep)
    assert AuditEvent.objects.filter(verb="create", object_id=str(sale.pk)).exists()


def test_create_sale_on_invisible_customer_is_refused(rep, other_rep, teams):
    foreign = CustomerFactory(owner=other_rep)
    with pytest.raises(ValidationFailed) as error:
        services.sale_create(actor=rep, data={"title": "X", "customer": foreign})
    assert error.value.field == "customer"
    assert not Sale.objects.exists()


def test_create_closed_sale_is_refused(rep, teams):
    with pytest.raises(ValidationFailed):
        services.sale_create(
            actor=rep,
            data={"title": "X", "customer": CustomerFactory(owner=rep), "status": "WON"},
        )


def test_change_stage_records_history(rep, teams):
    sale = SaleFactory(customer=CustomerFactory(owner=rep))
    services.sale_change_stage(actor=rep, sale=sale, to_status="PROPOSAL", reason="Sent deck")
    sale.refresh_from_db()
    assert sale.status == "PROPOSAL"
    change = sale.stage_changes.get()
    assert (change.from_status, change.to_status, change.reason) == ("NEW", "PROPOSAL", "Sent deck")
    assert change.is_automatic is False


def test_winning_needs_a_close_date(rep, teams):
    sale = SaleFactory(customer=CustomerFactory(owner=rep))
    with pytest.raises(ValidationFailed) as error:
        services.sale_change_stage(actor=rep, sale=sale, to_status="WON")
    assert error.value.field == "closed_on"
    services.sale_change_stage(
        actor=rep, sale=sale, to_status="WON", closed_on=timezone.localdate() - timedelta(days=2)
    )
    sale.refresh_from_db()
    assert sale.status == "WON"
    assert timezone.localdate(sale.closed_at) == timezone.localdate() - timedelta(days=2)


def test_losing_needs_a_reason(rep, teams):
    sale = SaleFactory(customer=CustomerFactory(owner=rep))
    with pytest.raises(ValidationFailed) as error:
        services.sale_change_stage(
            actor=rep, sale=sale, to_status="LOST", closed_on=timezone.localdate()
        )
    assert error.value.field == "lost_reason"
    sale.refresh_from_db()
    assert sale.status == "NEW"
    assert not sale.stage_changes.exists()


def test_close_date_cannot_be_in_the_future(rep, teams):
    sale = SaleFactory(customer=CustomerFactory(owner=rep))
    with pytest.raises(ValidationFailed):
        services.sale_change_stage(
            actor=rep, sale=sale, to_status="WON", closed_on=timezone.localdate() + timedelta(1)
        )


def test_reopening_a_lost_deal_clears_the_close(rep, teams):
    sale = SaleFactory(customer=CustomerFactory(owner=rep), status="LOST", lost_reason="Price")
    services.sale_change_stage(actor=rep, sale=sale, to_status="NEGOTIATION")
    sale.refresh_from_db()
    assert (sale.closed_at, sale.lost_reason) == (None, "")


def test_moving_to_the_same_stage_is_refused(rep, teams):
    sale = SaleFactory(customer=CustomerFactory(owner=rep))
    with pytest.raises(ValidationFailed):
        services.sale_change_stage(actor=rep, sale=sale, to_status="NEW")


def test_other_rep_cannot_move_the_deal(rep, other_rep, teams):
    sale = SaleFactory(customer=CustomerFactory(owner=rep))
    with pytest.raises(PermissionDenied):
        services.sale_change_stage(actor=other_rep, sale=sale, to_status="CONTACTED")


def test_database_refuses_a_won_deal_without_close_date(rep):
    with pytest.raises(IntegrityError), transaction.atomic():
        Sale.objects.create(
            title="x", customer=CustomerFactory(owner=rep), status="WON", closed_at=None
        )


def test_database_refuses_negative_amounts(rep):
    with pytest.raises(IntegrityError), transaction.atomic():
        SaleFactory(amount=Decimal("-1"))


def test_update_cannot_change_status(rep, teams):
    sale = SaleFactory(customer=CustomerFactory(owner=rep))
    with pytest.raises(ValidationFailed):
        services.sale_update(actor=rep, sale=sale, data={"status": "WON"})


def test_activity_updates_last_contact(rep, teams):
    customer = CustomerFactory(owner=rep, last_contact_date=None)
    sale = SaleFactory(customer=customer)
    services.sale_activity_add(actor=rep, sale=sale, kind="call", text="Intro call")
    customer.refresh_from_db()
    assert customer.last_contact_date == timezone.localdate()


def test_activity_needs_text_and_a_past_time(rep, teams):
    sale = SaleFactory(customer=CustomerFactory(owner=rep))
    with pytest.raises(ValidationFailed):
        services.sale_activity_add(actor=rep, sale=sale, kind="call", text=" ")
    with pytest.raises(ValidationFailed):
        services.sale_activity_add(
            actor=rep,
            sale=sale,
            kind="call",
            text="x",
            occurred_at=timezone.now() + timedelta(days=1),
        )


def test_changing_stage_closes_the_stage_left_and_keeps_the_furthest_reached(rep):
    sale = SaleFactory(customer=CustomerFactory(owner=rep), assigned_to=rep)
    services.sale_change_stage(actor=rep, sale=sale, to_status="PROPOSAL")
    services.sale_change_stage(actor=rep, sale=sale, to_status="CONTACTED")
    history = list(selectors.sale_stage_history(sale=sale))
    assert [change.to_status for change in history] == ["PROPOSAL", "CONTACTED"]
    assert history[0].left_at == history[1].changed_at and history[1].left_at is None
    sale.refresh_from_db()
    assert sale.furthest_stage_rank == Sale.FUNNEL_STATUSES.index("PROPOSAL")


def test_a_new_deal_starts_at_the_rank_of_its_stage(rep):
    sale = services.sale_create(
        actor=rep,
        data={"title": "X", "customer": CustomerFactory(owner=rep), "status": "NEGOTIATION"},
    )
    assert sale.furthest_stage_rank == Sale.FUNNEL_STATUSES.index("NEGOTIATION")
    (change,) = sale.stage_changes.all()
    assert change.left_at is None
