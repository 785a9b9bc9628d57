"""What maps onto what: default field maps and stage maps per provider, and the values both
sides are compared in. Values are kept as strings in the CRM's terms ("" for empty), so a
value read back from the remote compares equal to the one we wrote: no echo."""

import hashlib
import json
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

# Local fields a mapping may name, per local model, with how their values are normalised.
CUSTOMER_FIELDS = {
    "name": "text", "email": "email", "phone": "text", "company": "text",
    "job_title": "text", "website": "text", "address": "text", "lifecycle_stage": "text",
    "owner_id": "ref",
}  # fmt: skip
SALE_FIELDS = {
    "title": "text", "amount": "money", "expected_close_date": "date", "status": "text",
    "assigned_to_id": "ref", "customer_id": "ref",
}  # fmt: skip

# remote property -> local field. "firstname"/"lastname" (FirstName/LastName) join into name.
DEFAULT_FIELD_MAPS = {
    "hubspot": {
        "contacts": {
            "email": "email", "phone": "phone", "company": "company", "jobtitle": "job_title",
            "website": "website", "address": "address", "lifecyclestage": "lifecycle_stage",
        },
        "deals": {"dealname": "title", "amount": "amount", "closedate": "expected_close_date"},
    },
    "salesforce": {
        "Contact": {"Email": "email", "Phone": "phone", "Title": "job_title"},
        "Lead": {
            "Email": "email", "Phone": "phone", "Company": "company", "Title": "job_title",
            "Website": "website",
        },
        "Opportunity": {"Name": "title", "Amount": "amount", "CloseDate": "expected_close_date"},
    },
}  # fmt: skip

DEFAULT_STAGE_MAPS = {
    # remote stage -> CRM status; pushing uses the first remote stage listed for a status.
    "hubspot": {
        "appointmentscheduled": "NEW", "qualifiedtobuy": "CONTACTED",
        "presentationscheduled": "PROPOSAL", "decisionmakerboughtin": "PROPOSAL",
        "contractsent": "NEGOTIATION", "closedwon": "WON", "closedlost": "LOST",
    },
    "salesforce": {
        "Prospecting": "NEW", "Qualification": "CONTACTED", "Needs Analysis": "CONTACTED",
        "Proposal/Price Quote": "PROPOSAL", "Negotiation/Review": "NEGOTIATION",
        "Closed Won": "WON", "Closed Lost": "LOST",
    },
}  # fmt: skip

HUBSPOT_LIFECYCLE = {
    "subscriber": "lead", "lead": "lead", "marketingqualifiedlead": "lead",
    "salesqualifiedlead": "prospect", "opportunity": "prospect", "customer": "customer",
    "evangelist": "customer", "other": "lead",
}  # fmt: skip
LIFECYCLE_TO_HUBSPOT = {"lead": "lead", "prospect": "opportunity", "customer": "customer",
                        "churned": "other"}  # fmt: skip


def normalise(kind: str, value: Any) -> str:
    if value is None or value == "":
        return ""
    if kind == "email":
        return str(value).strip().lower()
    if kind == "money":
        try:
            return str(Decimal(str(value)).quantize(Decimal("0.01")))
        except InvalidOperation:
            return ""
    if kind == "date":
        if isinstance(value, datetime):
            return value.date().isoformat()
        if isinstance(value, date):
            return value.isoformat()
        return str(value)[:10]
    return str(value).strip()


def values_hash(values: dict[str, str]) -> str:
    return hashlib.sha1(json.dumps(values, sort_keys=True).encode()).hexdigest()


def split_name(name: str) -> tuple[str, str]:
    first, _, last = name.strip().partition(" ")
    return first, last


def stage_to_remote(stage_map: dict[str, str], status: str) -> str | None:
    return next((remote for remote, local in stage_map.items() if local == status), None)


def python_value(kind: str, text: str) -> Any:
    """A normalised string back as the model field's value."""
    if kind == "ref":
        return int(text) if text else None
    if kind == "money":
        return Decimal(text) if text else None
    if kind == "date":
        return date.fromisoformat(text) if text else None
    return text
