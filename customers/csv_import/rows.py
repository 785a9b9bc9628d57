"""One CSV row -> a customer's values, with the customer form's rules, or the row's errors
with the values that caused them.

Each mapped field is validated by the form field the customer form uses and then by the
model field's validators, as a ModelForm would, but without building a form per row (1.7 ms
a row). Values that repeat (a company, a stage, a date) are validated once per import.
"""

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import EMPTY_VALUES
from django.utils import timezone

from crm.http import FORMULA_PREFIXES
from customers.csv_import.headers import IMPORTABLE_FIELDS, JOINED_FIELDS, mapping_columns
from customers.models import Customer, EmailConsent, Tag

# A consent cell, lower-cased and stripped; an empty cell is unknown, anything else an error.
CONSENT_VALUES = {
    "yes": EmailConsent.GRANTED,
    "true": EmailConsent.GRANTED,
    "1": EmailConsent.GRANTED,
    "opt-in": EmailConsent.GRANTED,
    "opted in": EmailConsent.GRANTED,
    "subscribed": EmailConsent.GRANTED,  # Pipedrive's marketing status
    "granted": EmailConsent.GRANTED,
    "no": EmailConsent.WITHDRAWN,
    "false": EmailConsent.WITHDRAWN,
    "0": EmailConsent.WITHDRAWN,
    "opt-out": EmailConsent.WITHDRAWN,
    "opted out": EmailConsent.WITHDRAWN,
    "unsubscribed": EmailConsent.WITHDRAWN,
    "withdrawn": EmailConsent.WITHDRAWN,
}
# An opt-out cell: yes withdraws consent; no (or empty) says nothing either way.
OPT_OUT_VALUES = {
    "yes": True,
    "true": True,
    "1": True,
    "opt-out": True,
    "opted out": True,
    "unsubscribed": True,
    "no": False,
    "false": False,
    "0": False,
    "opt-in": False,
    "opted in": False,
    "subscribed": False,
}
# Other CRMs' lifecycle stages (HubSpot's above all), lower-cased, as this CRM's stages.
LIFECYCLE_SYNONYMS = {
    "subscriber": Customer.LifecycleStage.LEAD,
    "marketing qualified lead": Customer.LifecycleStage.LEAD,
    "marketingqualifiedlead": Customer.LifecycleStage.LEAD,
    "mql": Customer.LifecycleStage.LEAD,
    "sales qualified lead": Customer.LifecycleStage.LEAD,
    "salesqualifiedlead": Customer.LifecycleStage.LEAD,
    "sql": Customer.LifecycleStage.LEAD,
    "opportunity": Customer.LifecycleStage.PROSPECT,
    "evangelist": Customer.LifecycleStage.CUSTOMER,
    "client": Customer.LifecycleStage.CUSTOMER,
    "former customer": Customer.LifecycleStage.CHURNED,
}
CHOICE_FIELDS = (
    "industry",
    "region",
    "source",
    "lifecycle_stage",
    "engagement_level",
    "decision_authority",
    "budget_range",
    "purchase_timeline",
)
# Read by the import itself rather than by a model field's own rules.
SPECIAL_FIELDS = ("owner", "tags", "email_consent", "email_opt_out", "created_at")
MODEL_FIELDS = tuple(name for name in IMPORTABLE_FIELDS if name not in SPECIAL_FIELDS)
# Nearly every value of these differs, so remembering them would only cost memory.
UNCACHED_FIELDS = frozenset({"name", "email", "phone", "address", "notes", "created_at"})
CACHE_LIMIT = 20_000
CELL_SHOWN_CHARS = 200
TAG_SEPARATORS = re.compile(r"\s*(?:[,;]|:::)\s*")
TAG_MAX_LENGTH = Tag._meta.get_field("name").max_length
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
DATE_HELP = "use YYYY-MM-DD or an ISO date-time such as 2024-03-01T09:30:00Z"


def unquote_cell(value: str) -> str:
    """A cell as written, stripped, without the quote a spreadsheet-safe export (this CRM's
    own, crm.http.spreadsheet_safe) puts before = + - @, so such a file imports as it was."""
    value = value.strip()
    if len(value) > 1 and value[0] == "'" and value[1] in FORMULA_PREFIXES:
        return value[1:]
    return value


def parse_moment(raw: str) -> datetime | None:
    """An ISO date or date-time as an aware datetime (a date or a date-time without an
    offset is in the CRM's time zone); None when the text is not ISO 8601."""
    if not ISO_DATE.match(raw):
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        return None
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, timezone.get_default_timezone())
    return moment


def parse_date(raw: str) -> date:
    """A date, or the date part of an ISO date-time in the CRM's time zone
    (2024-03-01T23:30:00Z is 2 March in Berlin); else the date formats the customer form
    accepts. ValidationError otherwise."""
    if ISO_DATE.match(raw):
        moment = parse_moment(raw)
        if moment is None:
            raise ValidationError(f"Not a valid date: {DATE_HELP}.")
        return timezone.localtime(moment, timezone.get_default_timezone()).date()
    try:
        return forms.DateField().to_python(raw)
    except ValidationError:
        raise ValidationError(f"Not a date: {DATE_HELP}.") from None


def parse_created(raw: str) -> datetime:
    moment = parse_moment(raw)
    if moment is not None:
        return moment
    try:
        value = forms.DateTimeField().to_python(raw)
    except ValidationError:
        value = None
    if value is None:
        try:
            day = forms.DateField().to_python(raw)
        except ValidationError:
            raise ValidationError(f"Not a date: {DATE_HELP}.") from None
        value = timezone.make_aware(datetime.combine(day, time.min))
    return value


class ImportDateField(forms.DateField):
    def to_python(self, value):
        if value in self.empty_values:
            return None
        return parse_date(value)


def _choice_lookup(field_name: str) -> dict[str, str]:
    """A choice by its value or its label, in any case (plus other CRMs' stage names)."""
    lookup: dict[str, str] = {}
    for value, label in Customer._meta.get_field(field_name).choices:
        lookup[str(value).lower()] = value
        lookup[str(label).lower()] = value
    if field_name == "lifecycle_stage":
        lookup.update(LIFECYCLE_SYNONYMS)
    return lookup


def _form_field(name: str) -> forms.Field:
    model_field = Customer._meta.get_field(name)
    if name == "last_contact_date":
        return ImportDateField(required=False)
    return model_field.formfield()


@dataclass
class RowResult:
    """values: {model field: value} for a valid row; errors: {field: [messages]} and
    cells: {field: the value as written} for a refused one."""

    values: dict[str, Any] = field(default_factory=dict)
    owner_key: str = ""
    tag_names: list[str] = field(default_factory=list)
    created_at: datetime | None = None
    errors: dict[str, list[str]] = field(default_factory=dict)
    cells: dict[str, str] = field(default_factory=dict)

    def refuse(self, name: str, cell: str, messages: list[str]) -> None:
        self.errors.setdefault(name, []).extend(messages)
        self.cells[name] = cell[:CELL_SHOWN_CHARS]


class RowCleaner:
    """Cleans the rows of one import; built once per import (mapping, choices, caches)."""

    def __init__(self, *, mapping: dict[str, int | list[int]], owners: dict[str, Any]):
        self.columns = {name: mapping_columns(value) for name, value in mapping.items()}
        self.owners = owners
        self.model_fields = [name for name in MODEL_FIELDS if name in self.columns]
        self.form_fields = {name: _form_field(name) for name in self.model_fields}
        self.model_field = {name: Customer._meta.get_field(name) for name in self.model_fields}
        # The model field's own rules that its form field does not check already (choices
        # and blank it does; max length, email and URL formats both have).
        self.model_validators = {
            name: [
                validator
                for validator in self.model_field[name].validators
                if validator not in self.form_fields[name].validators
            ]
            for name in self.model_fields
        }
        self.choices = {
            name: _choice_lookup(name) for name in CHOICE_FIELDS if name in self.columns
        }
        self.cache: dict[str, dict[str, tuple[Any, list[str] | None]]] = {
            name: {} for name in self.columns if name not in UNCACHED_FIELDS
        }

        # The model fields in the order checked, with what each needs, worked out once.
        self.plan = [
            (
                name,
                self.columns[name],
                name in ("name", "email") or self.model_field[name].blank,
                self.cache.get(name),
            )
            for name in self.model_fields
        ]

    def cell(self, row: list[str], name: str) -> str:
        columns = self.columns[name]
        if len(columns) == 1:
            column = columns[0]
            return unquote_cell(row[column]) if column < len(row) else ""
        separator = JOINED_FIELDS[name][0]
        parts = (unquote_cell(row[column]) for column in columns if column < len(row))
        return separator.join(part for part in parts if part)

    def clean(self, row: list[str]) -> RowResult:
        result = RowResult()
        values = result.values
        width = len(row)
        for name, columns, empty_counts, cache in self.plan:
            if len(columns) == 1:
                raw = row[columns[0]].strip() if columns[0] < width else ""
                if raw[:1] == "'":
                    raw = unquote_cell(raw)
            else:
                raw = self.cell(row, name)
            if not raw and not empty_counts:
                continue  # no value: the default on create, left as it is on update
            if cache is not None and raw in cache:
                value, messages = cache[raw]
            else:
                value, messages = self._clean_value(name, raw)
            if messages:
                result.refuse(name, raw, messages)
            else:
                values[name] = value
        if "email" in result.values:
            result.values["email"] = result.values["email"].lower()
        if "owner" in self.columns:
            self._clean_owner(row, result)
        if "tags" in self.columns:
            self._clean_tags(row, result)
        if "email_consent" in self.columns or "email_opt_out" in self.columns:
            self._clean_consent(row, result)
        if "created_at" in self.columns:
            raw = self.cell(row, "created_at")
            if raw:
                value, messages = self._clean_created(raw)
                if messages:
                    result.refuse("created_at", raw, messages)
                else:
                    result.created_at = value
        return result

    def _clean_value(self, name: str, raw: str) -> tuple[Any, list[str] | None]:
        cache = self.cache.get(name)
        if cache is not None and raw in cache:
            return cache[raw]
        value = raw
        if name in self.choices and raw:
            value = self.choices[name].get(raw.lower(), raw)
        try:
            value = self.form_fields[name].clean(value)
            if value not in EMPTY_VALUES:
                for validator in self.model_validators[name]:
                    validator(value)
            outcome = (value, None)
        except ValidationError as error:
            outcome = (None, list(error.messages))
        if cache is not None and len(cache) < CACHE_LIMIT:
            cache[raw] = outcome
        return outcome

    def _clean_created(self, raw: str) -> tuple[Any, list[str] | None]:
        try:
            return parse_created(raw), None
        except ValidationError as error:
            return None, list(error.messages)

    def _clean_owner(self, row: list[str], result: RowResult) -> None:
        raw = self.cell(row, "owner")
        key = raw.lower()
        if key and key not in self.owners:
            result.refuse("owner", raw, [f"No user '{raw[:60]}' you can assign customers to."])
        result.owner_key = key

    def _clean_tags(self, row: list[str], result: RowResult) -> None:
        raw = self.cell(row, "tags")
        names = []
        for name in TAG_SEPARATORS.split(raw):
            # Google Contacts lists its own groups ("* myContacts", "* starred") as labels.
            if not name or name.startswith("* "):
                continue
            if len(name) > TAG_MAX_LENGTH:
                result.refuse(
                    "tags", raw, [f"Tag '{name[:60]}…' is longer than {TAG_MAX_LENGTH} characters."]
                )
                return
            names.append(name)
        result.tag_names = names

    def _clean_consent(self, row: list[str], result: RowResult) -> None:
        consent = None
        if "email_consent" in self.columns:
            raw = self.cell(row, "email_consent")
            cell = raw.lower()
            consent = CONSENT_VALUES.get(cell) if cell else None
            if cell and consent is None:
                result.refuse(
                    "email_consent",
                    raw,
                    [
                        f"Email consent '{cell[:40]}' is not one of yes, no, true, false, "
                        "1, 0, opt-in, opt-out."
                    ],
                )
        if "email_opt_out" in self.columns:
            raw = self.cell(row, "email_opt_out")
            cell = raw.lower()
            opted_out = OPT_OUT_VALUES.get(cell) if cell else False
            if opted_out is None:
                result.refuse(
                    "email_opt_out",
                    raw,
                    [f"Email opt-out '{cell[:40]}' is not one of yes, no, true, false, 1, 0."],
                )
            elif opted_out:
                consent = EmailConsent.WITHDRAWN  # an opt-out outweighs any opt-in
        if consent is not None:
            result.values["email_consent"] = consent
