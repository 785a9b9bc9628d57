"""Writes for customers: every change goes through here, in a transaction, with an audit row."""

from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q, Value
from django.db.models.functions import Coalesce, Lower
from django.utils import timezone

from crm import cache as crm_cache
from crm.errors import PermissionDenied, ValidationFailed
from crm.models import Tombstone
from crm.permissions import (
    assignable_users,
    customer_has_deals_beyond_reach,
    editable_customers,
)
from crm.permissions.viewers import (
    customer_sale_ids,
    customer_task_ids,
    customer_viewer_ids,
    sale_viewer_ids,
    task_viewer_ids,
)
from crm.reactions import Event, react
from crm.services import (
    audit_record,
    audit_record_many,
    diff_snapshots,
    model_snapshot,
    tombstones_record_deleted,
    tombstones_record_reach_lost,
)
from customers.models import ConsentSource, Customer, CustomerNote, EmailConsent, Suppression, Tag


def customers_changed(customer_ids: list[int], *, start_workflows: bool = True) -> None:
    """What follows a change to customers' data (their lead scores) is in crm.reactions; one
    call for many ids, so a CSV import of 50k rows is one reaction, not 50k.
    start_workflows=False: rescore and grade without the grade workflows (an import)."""
    if customer_ids:
        react(
            Event.CUSTOMERS_CHANGED,
            customer_ids=list(customer_ids),
            start_workflows=start_workflows,
        )


# The customer's own data fields: what the audit trail records and a CSV import may set.
AUDITED_FIELDS = [
    "name",
    "email",
    "phone",
    "company",
    "industry",
    "company_size",
    "annual_revenue",
    "region",
    "address",
    "website",
    "source",
    "lifecycle_stage",
    "engagement_level",
    "job_title",
    "decision_authority",
    "budget_range",
    "purchase_timeline",
    "owner",
    "notes",
    "last_contact_date",
    "email_consent",
    "email_consent_source",
]
# Set by the services, not by a form or an import row: where a consent change came from.
CONSENT_BOOKKEEPING = ("email_consent_source", "email_consent_at")


class _Sight:
    """Who sees some customers and their deals before a change of owner or sharing; after
    it, `.record_lost()` leaves a tombstone for whoever no longer does (the API's sync)."""

    def __init__(self, customer_ids: list[int]):
        self.customer_ids = list(customer_ids)
        self.sale_ids = customer_sale_ids(self.customer_ids)
        self.customers = customer_viewer_ids(self.customer_ids)
        self.sales = sale_viewer_ids(self.sale_ids)

    def record_lost(self) -> None:
        tombstones_record_reach_lost(
            resource=Tombstone.Resource.CUSTOMER,
            before=self.customers,
            after=customer_viewer_ids(self.customer_ids),
        )
        tombstones_record_reach_lost(
            resource=Tombstone.Resource.DEAL,
            before=self.sales,
            after=sale_viewer_ids(self.sale_ids),
        )


def _check_owner(actor, owner) -> None:
    if owner is not None and not assignable_users(actor).filter(pk=owner.pk).exists():
        raise ValidationFailed("You cannot assign customers to this user.", field="owner")


def _email_taken(email: str, *, exclude_pk: int | None = None) -> bool:
    others = Customer.objects.annotate(email_lower=Lower("email")).filter(
        email_lower=email.strip().lower()
    )
    if exclude_pk is not None:
        others = others.exclude(pk=exclude_pk)
    return others.exists()


@transaction.atomic
def customer_create(
    *,
    actor,
    data: dict[str, Any],
    tags: list[Tag] | None = None,
    shared_with: list | None = None,
    consent_source: str = ConsentSource.FORM,
) -> Customer:
    """A new customer; a consent state other than unknown is recorded as coming from
    `consent_source`, now."""
    data = {k: v for k, v in data.items() if k not in CONSENT_BOOKKEEPING}
    data.setdefault("owner", actor)
    if data.get("email_consent", EmailConsent.UNKNOWN) != EmailConsent.UNKNOWN:
        data["email_consent_source"] = consent_source
        data["email_consent_at"] = timezone.now()
    _check_owner(actor, data["owner"])
    if _email_taken(data["email"]):
        raise ValidationFailed("A customer with this email already exists.", field="email")
    customer = Customer(**data)
    try:
        with transaction.atomic():
            customer.save()
    except IntegrityError as exc:  # a concurrent insert of the same email
        raise ValidationFailed("A customer with this email already exists.", field="email") from exc
    if tags:
        customer.tags.set(tags)
    if shared_with:
        customer.shared_with.set(shared_with)
    audit_record(
        actor=actor,
        verb="create",
        instance=customer,
        changes=model_snapshot(customer, AUDITED_FIELDS),
    )
    customers_changed([customer.pk])
    return customer


@transaction.atomic
def customer_update(
    *,
    actor,
    customer: Customer,
    data: dict[str, Any],
    tags: list[Tag] | None = None,
    shared_with: list | None = None,
    consent_source: str = ConsentSource.FORM,
) -> Customer:
    """Change the customer's fields; a change of consent is recorded as coming from
    `consent_source`, now."""
    customer = editable_customers(actor).select_for_update().filter(pk=customer.pk).first()
    if customer is None:
        raise PermissionDenied("You cannot change this customer.")
    before = model_snapshot(customer, AUDITED_FIELDS)
    owner_changes = "owner" in data and data["owner"] != customer.owner
    sight = _Sight([customer.pk]) if owner_changes or shared_with is not None else None
    if owner_changes:
        _check_owner(actor, data["owner"])
    if "email" in data and _email_taken(data["email"], exclude_pk=customer.pk):
        raise ValidationFailed("A customer with this email already exists.", field="email")
    data = {k: v for k, v in data.items() if k not in CONSENT_BOOKKEEPING}
    if "email_consent" in data and data["email_consent"] != customer.email_consent:
        data["email_consent_source"] = consent_source
        data["email_consent_at"] = timezone.now()
    for name, value in data.items():
        setattr(customer, name, value)
    changes = diff_snapshots(before, model_snapshot(customer, AUDITED_FIELDS))
    if changes:
        customer.save(update_fields=[*data.keys(), "updated_at"])
    if tags is not None:
        old = set(customer.tags.values_list("name", flat=True))
        customer.tags.set(tags)
        new = {tag.name for tag in tags}
        if old != new:
            changes["tags"] = [sorted(old), sorted(new)]
    if shared_with is not None:
        old_ids = set(customer.shared_with.values_list("pk", flat=True))
        customer.shared_with.set(shared_with)
        new_ids = {user.pk for user in shared_with}
        if old_ids != new_ids:
            changes["shared_with"] = [sorted(old_ids), sorted(new_ids)]
    if changes:
        audit_record(actor=actor, verb="update", instance=customer, changes=changes)
        customers_changed([customer.pk])
    if "owner" in changes or "shared_with" in changes:
        crm_cache.bump_on_commit(crm_cache.DEALS)  # whose book, and who sees, its deals
        if "owner" not in changes:  # a sharing change alone saves nothing: the sync sees it
            Customer.objects.filter(pk=customer.pk).update(updated_at=timezone.now())
        sight.record_lost()
    return customer


@transaction.atomic
def customer_delete(*, actor, customer: Customer) -> None:
    if not editable_customers(actor).filter(pk=customer.pk).exists():
        raise PermissionDenied("You cannot delete this customer.")
    if customer_has_deals_beyond_reach(actor, customer):
        raise PermissionDenied(
            "This customer has deals owned by other people; ask them or an admin to "
            "reassign or delete those deals first."
        )
    audit_record(
        actor=actor,
        verb="delete",
        instance=customer,
        changes=model_snapshot(customer, AUDITED_FIELDS),
    )
    tombstones_record_deleted(
        resource=Tombstone.Resource.CUSTOMER, viewers=customer_viewer_ids([customer.pk])
    )
    tombstones_record_deleted(
        resource=Tombstone.Resource.DEAL, viewers=sale_viewer_ids(customer_sale_ids([customer.pk]))
    )
    tombstones_record_deleted(
        resource=Tombstone.Resource.TASK, viewers=task_viewer_ids(customer_task_ids([customer.pk]))
    )
    customer.delete()
    crm_cache.bump_on_commit(crm_cache.DEALS)  # its deals went with it


@transaction.atomic
def customer_bulk_assign_owner(*, actor, customer_ids: list[int], owner) -> int:
    """Give every listed customer that the actor may change to `owner`; returns how many."""
    _check_owner(actor, owner)
    customers = list(
        editable_customers(actor)
        .filter(pk__in=customer_ids)
        .exclude(owner=owner)
        .select_for_update()
        .only("pk", "name", "owner_id")
    )
    if not customers:
        return 0
    sight = _Sight([c.pk for c in customers])
    Customer.objects.filter(pk__in=[c.pk for c in customers]).update(
        owner=owner, updated_at=timezone.now()
    )
    sight.record_lost()
    audit_record_many(
        actor=actor,
        verb="update",
        entries=[(c, {"owner": [c.owner_id, owner.pk]}) for c in customers],
    )
    react(Event.RECORDS_CHANGED, model="customer", ids=[c.pk for c in customers])
    crm_cache.bump_on_commit(crm_cache.DEALS)  # whose book, and who sees, their deals
    return len(customers)


@transaction.atomic
def customer_note_add(*, actor, customer: Customer, text: str) -> CustomerNote:
    if not editable_customers(actor).filter(pk=customer.pk).exists():
        raise PermissionDenied("The customer is shared with you to read; you cannot add notes.")
    text = (text or "").strip()
    if not text:
        raise ValidationFailed("Write something before saving the note.", field="text")
    note = CustomerNote.objects.create(customer=customer, author=actor, text=text)
    audit_record(actor=actor, verb="create", instance=note, changes={"customer": customer.pk})
    react(Event.RECORDS_CHANGED, model="customer", ids=[customer.pk])
    return note


@transaction.atomic
def customer_assign_owner_automatically(*, customer_id: int, owner, reason: str) -> None:
    """Automation (lead workflows) gives a customer to a rep; audited with no actor."""
    customer = Customer.objects.select_for_update().get(pk=customer_id)
    if customer.owner_id == owner.pk:
        return
    previous = customer.owner_id
    sight = _Sight([customer.pk])
    customer.owner = owner
    customer.save(update_fields=["owner", "updated_at"])
    sight.record_lost()
    crm_cache.bump_on_commit(crm_cache.DEALS)  # its deals change books
    audit_record(
        actor=None,
        verb="update",
        instance=customer,
        changes={"owner": [previous, owner.pk], "reason": reason},
    )
    react(Event.RECORDS_CHANGED, model="customer", ids=[customer.pk])


def customer_record_contact(*, customer_id: int, contact_date) -> None:
    """Move last_contact_date forward to `contact_date`; never backwards, also under races."""
    Customer.objects.filter(
        Q(last_contact_date__isnull=True) | Q(last_contact_date__lt=contact_date), pk=customer_id
    ).update(last_contact_date=contact_date)


def tags_get_or_create(names: list[str]) -> list[Tag]:
    """Tags by name, case-insensitively, creating the missing ones."""
    wanted = {name.strip().lower(): name.strip() for name in names if name and name.strip()}
    if not wanted:
        return []
    found = {
        tag.name.lower(): tag
        for tag in Tag.objects.annotate(lower=Lower("name")).filter(lower__in=wanted)
    }
    missing = [Tag(name=wanted[key]) for key in wanted if key not in found]
    if missing:
        Tag.objects.bulk_create(missing, ignore_conflicts=True)
        found = {
            tag.name.lower(): tag
            for tag in Tag.objects.annotate(lower=Lower("name")).filter(lower__in=wanted)
        }
    return [found[key] for key in wanted]


def customers_mark_unsubscribed(
    *,
    emails: list[str] | None = None,
    customer_ids: list[int] | None = None,
    at=None,
    source: str = ConsentSource.UNSUBSCRIBE,
) -> int:
    """Unsubscribe customers from marketing email, by address (case-insensitive) or id, and
    withdraw their consent (from `source`). Who is already unsubscribed keeps their first
    date. Returns how many changed."""
    at = at or timezone.now()
    customers = Customer.objects.filter(
        Q(unsubscribed_at__isnull=True) | ~Q(email_consent=EmailConsent.WITHDRAWN)
    )
    if emails is not None:
        customers = customers.alias(email_lower=Lower("email")).filter(
            email_lower__in=[email.lower() for email in emails]
        )
    if customer_ids is not None:
        customers = customers.filter(pk__in=customer_ids)
    return customers.update(
        unsubscribed_at=Coalesce("unsubscribed_at", Value(at)),
        email_consent=EmailConsent.WITHDRAWN,
        email_consent_source=source,
        email_consent_at=at,
        updated_at=at,
    )


def suppressions_add(*, entries: list[tuple[str, str, str]], source: str = "") -> int:
    """Suppress addresses: (email, Suppression.Reason, detail) each, from `source` (a
    Suppression.Source: which provider or path reported them). One list for every provider:
    an address already suppressed keeps its first reason and source. Returns how many
    addresses were new."""
    rows: dict[str, Suppression] = {}
    for email, reason, detail in entries:
        email = (email or "").strip().lower()
        if email:
            rows.setdefault(
                email,
                Suppression(email=email, reason=reason, detail=(detail or "")[:500], source=source),
            )
    if not rows:
        return 0
    known = set(Suppression.objects.filter(email__in=list(rows)).values_list("email", flat=True))
    Suppression.objects.bulk_create(
        [row for email, row in rows.items() if email not in known], ignore_conflicts=True
    )
    return len(rows) - len(known)


def customers_sync_write(
    *, actor, creates: list[dict[str, Any]], updates: list[tuple[int, dict[str, Any]]], via: str
) -> list[int]:
    """Customers brought by a CRM sync (integrations): new ones by COPY, changed fields in one
    bulk update, one audit row each and one reaction for all (rescored without the grade
    workflows, so a sync never enrols or emails anyone). `creates` are model field values by
    attname (owner_id); returns the new ids in order. The caller runs it in its transaction
    and has checked emails against the unique constraint."""
    from crm.bulk import bulk_insert

    now = timezone.now()
    defaults = {
        "email_consent": EmailConsent.UNKNOWN,
        "created_at": now,
        "updated_at": now,
        "source": Customer.Source.OTHER,
        "lifecycle_stage": Customer.LifecycleStage.LEAD,
    }
    rows = [{**defaults, **row, "owner_id": row.get("owner_id") or actor.pk} for row in creates]
    created = bulk_insert(Customer, rows)
    changed: list[tuple[Customer, dict[str, Any]]] = []
    fields: set[str] = set()
    current = Customer.objects.in_bulk([pk for pk, _ in updates]) if updates else {}
    owner_moves = [pk for pk, values in updates if "owner_id" in values and pk in current]
    sight = _Sight(owner_moves) if owner_moves else None
    for pk, values in updates:
        customer = current.get(pk)
        if customer is None:
            continue
        for name, value in values.items():
            setattr(customer, name, value)
        customer.updated_at = now
        fields.update(values)
        changed.append((customer, values))
    if changed:
        Customer.objects.bulk_update(
            [customer for customer, _ in changed], [*sorted(fields), "updated_at"], batch_size=1000
        )
    audit_record_many(
        actor=actor,
        verb="create",
        entries=[
            (Customer.from_db(None, ["id", "name"], (pk, row.get("name", ""))), {"sync": via})
            for pk, row in zip(created, rows, strict=True)
        ],
    )
    audit_record_many(
        actor=actor,
        verb="update",
        entries=[
            (customer, {"sync": via, "fields": sorted(values)}) for customer, values in changed
        ],
    )
    if sight is not None:
        sight.record_lost()
    if "owner_id" in fields:
        crm_cache.bump_on_commit(crm_cache.DEALS)
    customers_changed([*created, *(c.pk for c, _ in changed)], start_workflows=False)
    return created
