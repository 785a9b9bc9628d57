"""Reads for customers, always filtered through crm.permissions."""

from collections.abc import Iterator
from typing import Any

from django.db.models import QuerySet

from crm.http import spreadsheet_safe
from crm.permissions import visible_customers
from crm.permissions.customer_imports import visible_customer_imports
from crm.permissions.scopes import of_owner
from customers.csv_import.headers import IMPORTABLE_FIELDS, mapping_columns
from customers.models import Customer, CustomerImport, EmailConsent, Suppression

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


REPORT_ROWS_SHOWN = 200


def customer_import_report(*, customer_import: CustomerImport) -> dict[str, Any]:
    """The refused rows of an import for its report: each problem with the column it came
    from and the value refused (the first REPORT_ROWS_SHOWN rows), and the problems summed
    up by field and message with a few example values, so one bad column shows as one line."""
    headers = customer_import.headers
    mapping = customer_import.column_mapping or {}

    def label(field: str) -> str:
        return IMPORTABLE_FIELDS.get(field, field).split(" (")[0]

    def columns(field: str) -> str:
        if field not in mapping:
            return ""
        names = [
            headers[column] if 0 <= column < len(headers) else f"Column {column + 1}"
            for column in mapping_columns(mapping[field])
        ]
        return " + ".join(names)

    summary: dict[tuple[str, str], dict[str, Any]] = {}
    shown = []
    for item in customer_import.row_errors:
        cells = item.get("cells", {})
        problems = []
        for field, messages in item["errors"].items():
            message = " ".join(messages)
            value = cells.get(field, "")
            problems.append(
                {
                    "field": label(field),
                    "column": columns(field),
                    "value": value,
                    "message": message,
                }
            )
            group = summary.setdefault(
                (field, message),
                {
                    "field": label(field),
                    "column": columns(field),
                    "message": message,
                    "rows": 0,
                    "examples": [],
                },
            )
            group["rows"] += 1
            if value and len(group["examples"]) < 3 and value not in group["examples"]:
                group["examples"].append(value)
        if len(shown) < REPORT_ROWS_SHOWN:
            shown.append({"row": item["row"], "problems": problems})
    return {
        "summary": sorted(summary.values(), key=lambda group: -group["rows"]),
        "rows": shown,
        "more": max(len(customer_import.row_errors) - len(shown), 0),
    }


def suppressed_addresses(*, emails) -> set[str]:
    """Which of `emails` are on the suppression list (lower-cased): no email goes there, a
    user's notification digest included (crm.reactions SUPPRESSED_ADDRESSES)."""
    lowered = {email.lower() for email in emails if email}
    return set(Suppression.objects.filter(email__in=lowered).values_list("email", flat=True))
