import pytest

from crm.errors import PermissionDenied, ValidationFailed
from crm.models import AuditEvent
from customers import services
from customers.models import Customer
from tests.factories import CustomerFactory, TagFactory

pytestmark = pytest.mark.django_db


def _data(**overrides):
    return {"name": "Ada Lovelace", "email": "ada@engine.example", **overrides}


def test_create_defaults_owner_and_writes_audit(rep, teams):
    customer = services.customer_create(actor=rep, data=_data())
    assert customer.owner == rep
    event = AuditEvent.objects.get(object_id=str(customer.pk), verb="create")
    assert event.actor == rep
    assert event.changes["email"] == "ada@engine.example"


def test_create_refuses_duplicate_email_any_case(rep, teams):
    services.customer_create(actor=rep, data=_data())
    with pytest.raises(ValidationFailed) as error:
        services.customer_create(actor=rep, data=_data(email="ADA@Engine.example"))
    assert error.value.field == "email"
    assert Customer.objects.count() == 1


def test_rep_cannot_give_a_customer_to_another_rep(rep, other_rep, teams):
    with pytest.raises(ValidationFailed) as error:
        services.customer_create(actor=rep, data=_data(owner=other_rep))
    assert error.value.field == "owner"
    assert not Customer.objects.exists()


def test_update_records_only_changed_fields(rep, teams):
    customer = CustomerFactory(owner=rep, phone="")
    tag = TagFactory(name="vip")
    services.customer_update(
        actor=rep, customer=customer, data={"phone": "+1 555", "name": customer.name}, tags=[tag]
    )
    event = AuditEvent.objects.get(object_id=str(customer.pk), verb="update")
    assert set(event.changes) == {"phone", "tags"}
    assert event.changes["phone"] == ["", "+1 555"]


def test_update_by_someone_without_access_is_refused(rep, other_rep, teams):
    customer = CustomerFactory(owner=other_rep, shared_with=[rep])
    with pytest.raises(PermissionDenied):
        services.customer_update(actor=rep, customer=customer, data={"phone": "1"})


def test_delete_writes_audit_then_deletes(rep, teams):
    customer = CustomerFactory(owner=rep)
    pk = customer.pk
    services.customer_delete(actor=rep, customer=customer)
    assert not Customer.objects.filter(pk=pk).exists()
    assert AuditEvent.objects.filter(object_id=str(pk), verb="delete").exists()


def test_bulk_assign_changes_only_what_the_manager_may_change(
    manager, rep, teammate, other_rep, teams
):
    team_customers = CustomerFactory.create_batch(3, owner=rep)
    foreign = CustomerFactory(owner=other_rep)
    changed = services.customer_bulk_assign_owner(
        actor=manager,
        customer_ids=[c.pk for c in team_customers] + [foreign.pk],
        owner=teammate,
    )
    assert changed == 3
    assert Customer.objects.filter(owner=teammate).count() == 3
    foreign.refresh_from_db()
    assert foreign.owner == other_rep
    assert AuditEvent.objects.filter(verb="update").count() == 3


def test_bulk_assign_to_a_user_outside_the_team_is_refused(manager, rep, other_rep, teams):
    customer = CustomerFactory(owner=rep)
    with pytest.raises(ValidationFailed):
        services.customer_bulk_assign_owner(
            actor=manager, customer_ids=[customer.pk], owner=other_rep
        )


def test_note_needs_text(rep, teams):
    customer = CustomerFactory(owner=rep)
    with pytest.raises(ValidationFailed):
        services.customer_note_add(actor=rep, customer=customer, text="   ")
    note = services.customer_note_add(actor=rep, customer=customer, text="Met at the fair")
    assert note.author == rep
    assert AuditEvent.objects.filter(verb="create", object_id=str(note.pk), actor=rep).exists()


def test_tags_get_or_create_is_case_insensitive():
    TagFactory(name="Renewal")
    tags = services.tags_get_or_create(["renewal", "NEW-ONE", " "])
    assert [t.name for t in tags] == ["Renewal", "NEW-ONE"]
