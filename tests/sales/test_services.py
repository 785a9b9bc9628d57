from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from crm.errors import PermissionDenied, ValidationFailed
from crm.models import AuditEvent
from sales import selectors, services
from sales.models import Sale, StageChange, Task
from tests.factories import CustomerFactory, SaleFactory, TaskFactory

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
    assert sale.closed_at.date() == timezone.localdate() - timedelta(days=2)


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


def test_task_complete_is_idempotent(rep, teams):
    task = TaskFactory(assigned_to=rep)
    services.task_complete(actor=rep, task=task)
    first = Task.objects.get(pk=task.pk).completed_at
    services.task_complete(actor=rep, task=task)
    assert Task.objects.get(pk=task.pk).completed_at == first
    assert AuditEvent.objects.filter(object_id=str(task.pk), verb="update").count() == 1
    services.task_reopen(actor=rep, task=task)
    assert Task.objects.get(pk=task.pk).completed_at is None


def test_task_for_another_teams_rep_is_refused(rep, other_rep, teams):
    with pytest.raises(ValidationFailed):
        services.task_create(
            actor=rep,
            data={"title": "x", "assigned_to": other_rep, "due_at": timezone.now()},
        )


def test_my_tasks_buckets(rep, teams):
    now = timezone.now()
    overdue = TaskFactory(assigned_to=rep, due_at=now - timedelta(hours=1))
    upcoming = TaskFactory(assigned_to=rep, due_at=now + timedelta(days=3))
    done = TaskFactory(assigned_to=rep, due_at=now - timedelta(days=1), completed_at=now)
    buckets = selectors.my_tasks(user=rep, now=now)
    assert list(buckets["overdue"]) == [overdue]
    assert list(buckets["upcoming"]) == [upcoming]
    assert list(buckets["done"]) == [done]


def test_sale_totals_in_one_query(rep, django_assert_num_queries):
    customer = CustomerFactory(owner=rep)
    SaleFactory(customer=customer, amount=Decimal("100"))
    SaleFactory(customer=customer, amount=Decimal("250.50"), status="WON")
    SaleFactory(customer=customer, amount=None)
    with django_assert_num_queries(1):
        totals = selectors.sale_totals(Sale.objects.all())
    assert totals["count"] == 3
    assert totals["open_count"] == 2
    (usd,) = totals["by_currency"]
    assert usd["total_amount"] == Decimal("350.50")
    assert usd["won_amount"] == Decimal("250.50")


def test_sale_totals_never_add_currencies(rep):
    customer = CustomerFactory(owner=rep)
    SaleFactory(customer=customer, amount=Decimal("100"), currency="USD")
    SaleFactory(customer=customer, amount=Decimal("12345.67"), currency="EUR")
    SaleFactory(customer=customer, amount=Decimal("5"), currency="EUR")
    totals = selectors.sale_totals(Sale.objects.all())
    assert totals["count"] == 3
    amounts = {row["currency"]: row["total_amount"] for row in totals["by_currency"]}
    assert amounts == {"EUR": Decimal("12350.67"), "USD": Decimal("100")}


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
