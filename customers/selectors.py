"""Reads for customers, always filtered through crm.permissions."""

from collections.abc import Iterator
from typing import Any

from django.db.models import QuerySet

from crm.http import spreadsheet_safe
from crm.permissions import visible_customers
from crm.permissions.customer_imports import visible_customer_imports
from crm.permissions.scopes import of_owner
from customers.models import Customer, CustomerImport, EmailConsent

# Sort keys the list accepts, mapped to ORDER BY; anything else falls back to the default.
CUSTOMER_SORTS = {
    "name": ("name", "id"),
    "company": ("company", "id"),
    "email": ("email",),
    # Groups by owner through the (owner, name) index; sorting by the owner's name would
    # need a join and a full sort of every visible customer.
    "owner": ("owner_id", "name", "id"),
    "stage": ("lifecycle_stage", "name", "id"),
    "engagement": ("engagement_level", "name", "id"),
    "region": ("region", "name", "id"),
    "last_contact": ("last_contact_date", "id"),
    "created": ("created_at", "id"),
}
DEFAULT_CUSTOMER_SORT = "name"


def _order_by(sort: str) -> list[str]:
    descending = sort.startswith("-")
    key = sort.lstrip("-")
    columns = CUSTOMER_SORTS.get(key) or CUSTOMER_SORTS[DEFAULT_CUSTOMER_SORT]
    if not descending:
        return list(columns)
    return [f"-{column}" for column in columns]


def customer_list(*, user, filters: dict[str, Any] | None = None) -> QuerySet[Customer]:
    """Visible customers matching the list filters (already validated by CustomerFilterForm)."""
    filters = filters or {}
    customers = visible_customers(user).search(filters.get("q", ""))
    for field in (
        "lifecycle_stage",
        "engagement_level",
        "region",
        "industry",
        "source",
        "email_consent",
    ):
        if filters.get(field):
            customers = customers.filter(**{field: filters[field]})
    if filters.get("owner"):
        customers = of_owner(customers, filters["owner"], field="owner")
    if filters.get("tag"):
        customers = customers.filter(tags=filters["tag"])
    return customers.order_by(*_order_by(filters.get("sort") or DEFAULT_CUSTOMER_SORT))


def customer_notes(*, customer: Customer, limit: int = 100) -> QuerySet:
    return customer.note_entries.select_related("author")[:limit]


EXPORT_COLUMNS = [
    "name",
    "email",
    "phone",
    "company",
    "industry",
    "company_size",
    "annual_revenue",
    "region",
    "website",
    "source",
    "lifecycle_stage",
    "engagement_level",
    "owner",
    "tags",
    "last_contact_date",
    "created_at",
    "email_consent",
    "email_consent_source",
    "email_consent_at",
]
# Consent as the CSV import reads it back (yes / no / empty for unknown), so an export
# re-imports without turning anyone's consent into a row error or into consent.
EXPORTED_CONSENT = {EmailConsent.GRANTED: "yes", EmailConsent.WITHDRAWN: "no"}


def customer_export_rows(*, user, filters: dict[str, Any]) -> Iterator[list[Any]]:
    """Header then one row per customer of the filtered list, streamed in chunks."""
    yield EXPORT_COLUMNS
    customers = customer_list(user=user, filters=filters).with_related()
    for customer in customers.iterator(chunk_size=2000):
        yield [spreadsheet_safe(value) for value in _export_row(customer)]


def _export_row(customer: Customer) -> list[Any]:
    return [
        customer.name,
        customer.email,
        customer.phone,
        customer.company,
        customer.industry,
        customer.company_size if customer.company_size is not None else "",
        customer.annual_revenue if customer.annual_revenue is not None else "",
        customer.region,
        customer.website,
        customer.source,
        customer.lifecycle_stage,
        customer.engagement_level,
        customer.owner.username if customer.owner else "",
        ", ".join(tag.name for tag in customer.tags.all()),
        customer.last_contact_date.isoformat() if customer.last_contact_date else "",
        customer.created_at.isoformat(),
        EXPORTED_CONSENT.get(customer.email_consent, ""),
        customer.email_consent_source,
        customer.email_consent_at.isoformat() if customer.email_consent_at else "",
    ]


def customer_imports_for(*, user) -> QuerySet[CustomerImport]:
    return visible_customer_imports(user).defer("content", "row_errors")
