"""CSV import of customers: upload, column mapping, then an all-or-nothing-per-row import.

Rows are validated first, in Python; only rows that pass are written, together, in one
transaction. So a bad row never loses the good ones and a failure never leaves half a file.

An import never starts an email by itself: a consent column (yes/no, true/false, 1/0,
opt-in/opt-out) sets each customer's email consent (source: import; unknown without the
column or with an empty cell), and the imported leads are scored and graded without the
grade workflows (no sequence enrolment, no hot/warm email). Only an explicit choice on the
confirmation step enrols the new leads in a sequence (crm.reactions: IMPORT_CONFIRMED and
CUSTOMERS_IMPORTED, carried out by campaigns, which the gate still filters).
"""

import csv
import io
import re
from typing import Any

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import OperationalError, transaction
from django.db.models.functions import Lower
from django.forms.models import construct_instance
from django.utils import timezone

from crm.bulk import analyze
from crm.errors import ValidationFailed
from crm.permissions import assignable_users, editable_customers
from crm.reactions import Event, react
from crm.services import audit_record_many
from customers.models import ConsentSource, Customer, CustomerImport, EmailConsent
from customers.services import AUDITED_FIELDS, customers_changed, tags_get_or_create

CONSENT_FIELDS = ("email_consent", "email_consent_source")

IMPORTABLE_FIELDS = {
    "name": "Name",
    "email": "Email",
    "phone": "Phone",
    "company": "Company",
    "industry": "Industry",
    "company_size": "Company size (employees)",
    "annual_revenue": "Annual revenue",
    "region": "Region",
    "address": "Address",
    "website": "Website",
    "source": "Source",
    "lifecycle_stage": "Lifecycle stage",
    "engagement_level": "Engagement level",
    "job_title": "Job title",
    "decision_authority": "Decision authority",
    "budget_range": "Budget range",
    "purchase_timeline": "Purchase timeline",
    "owner": "Owner (username or email)",
    "tags": "Tags (comma-separated)",
    "notes": "Notes",
    "last_contact_date": "Last contact date (YYYY-MM-DD)",
    "email_consent": "Email consent (yes/no, true/false, 1/0, opt-in/opt-out)",
}
REQUIRED_FIELDS = ("name", "email")
HEADER_ALIASES = {
    "full_name": "name",
    "contact": "name",
    "contact_name": "name",
    "e_mail": "email",
    "email_address": "email",
    "mail": "email",
    "telephone": "phone",
    "phone_number": "phone",
    "organisation": "company",
    "organization": "company",
    "company_name": "company",
    "employees": "company_size",
    "size": "company_size",
    "revenue": "annual_revenue",
    "url": "website",
    "stage": "lifecycle_stage",
    "lifecycle": "lifecycle_stage",
    "engagement": "engagement_level",
    "owner_email": "owner",
    "owner_username": "owner",
    "tag": "tags",
    "last_contact": "last_contact_date",
    "title": "job_title",
    "role": "job_title",
    "authority": "decision_authority",
    "budget": "budget_range",
    "timeline": "purchase_timeline",
    "consent": "email_consent",
    "email_opt_in": "email_consent",
    "marketing_consent": "email_consent",
    "has_newsletter": "email_consent",
    "newsletter": "email_consent",
    "opt_in": "email_consent",
    "optin": "email_consent",
}
# A consent cell, lower-cased and stripped; an empty cell is unknown, anything else an error.
CONSENT_VALUES = {
    "yes": EmailConsent.GRANTED,
    "true": EmailConsent.GRANTED,
    "1": EmailConsent.GRANTED,
    "opt-in": EmailConsent.GRANTED,
    "no": EmailConsent.WITHDRAWN,
    "false": EmailConsent.WITHDRAWN,
    "0": EmailConsent.WITHDRAWN,
    "opt-out": EmailConsent.WITHDRAWN,
}
PREVIEW_ROWS = 5


class ImportRowForm(forms.ModelForm):
    """Validates one CSV row with the same rules as the customer form."""

    class Meta:
        model = Customer
        # The owner and the consent columns are read by the import itself.
        fields = [name for name in AUDITED_FIELDS if name not in ("owner", *CONSENT_FIELDS)]

    def _post_clean(self):
        # Model field validation without the constraints: those would cost two queries per
        # row, and duplicates are the import's own business (update or skip).
        self.instance = construct_instance(self, self.instance, self._meta.fields)
        try:
            self.instance.full_clean(
                exclude=self._get_validation_exclusions(),
                validate_unique=False,
                validate_constraints=False,
            )
        except ValidationError as error:
            self._update_errors(error)


def _normalise_header(header: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", header.strip().lower()).strip("_")


def guess_mapping(headers: list[str]) -> dict[str, int]:
    """{field: column index} for the headers that name a field or a known alias."""
    mapping: dict[str, int] = {}
    for index, header in enumerate(headers):
        key = _normalise_header(header)
        field = key if key in IMPORTABLE_FIELDS else HEADER_ALIASES.get(key)
        if field and field not in mapping:
            mapping[field] = index
    return mapping


def _decode(raw: bytes) -> str:
    if b"\x00" in raw:
        raise ValidationFailed(
            "This file is not a CSV file (it contains binary data).", field="file"
        )
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            return raw.decode("cp1252")
        except UnicodeDecodeError as exc:
            raise ValidationFailed(
                "This file is not a readable CSV file: save it as UTF-8 CSV and try again.",
                field="file",
            ) from exc


def _read_rows(text: str) -> list[list[str]]:
    sample = text[:8192]
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    try:
        return [
            row for row in csv.reader(io.StringIO(text), dialect) if any(c.strip() for c in row)
        ]
    except csv.Error as exc:
        raise ValidationFailed(f"This file is not valid CSV: {exc}.", field="file") from exc


@transaction.atomic
def customer_import_upload(*, actor, uploaded_file, duplicate_mode: str) -> CustomerImport:
    """Check that the upload is a CSV with a header row and keep it for the mapping step."""
    if uploaded_file.size > settings.CUSTOMER_IMPORT_MAX_BYTES:
        limit_mb = settings.CUSTOMER_IMPORT_MAX_BYTES // (1024 * 1024)
        raise ValidationFailed(f"The file is larger than {limit_mb} MB.", field="file")
    text = _decode(uploaded_file.read())
    rows = _read_rows(text)
    if not rows:
        raise ValidationFailed("The file is empty.", field="file")
    headers = [header.strip() for header in rows[0]]
    if not any(headers) or len(rows) < 2:
        raise ValidationFailed(
            "The file needs a header row and at least one customer row.", field="file"
        )
    if len(rows) - 1 > settings.CUSTOMER_IMPORT_MAX_ROWS:
        raise ValidationFailed(
            f"The file has {len(rows) - 1} rows; split it into files of at most "
            f"{settings.CUSTOMER_IMPORT_MAX_ROWS} rows.",
            field="file",
        )
    return CustomerImport.objects.create(
        uploaded_by=actor,
        filename=uploaded_file.name[:255],
        content=text,
        headers=headers,
        row_count=len(rows) - 1,
        column_mapping=guess_mapping(headers),
        duplicate_mode=duplicate_mode,
    )


def customer_import_preview(*, customer_import: CustomerImport) -> list[list[str]]:
    return _read_rows(customer_import.content)[1 : PREVIEW_ROWS + 1]


def _validate_mapping(mapping: dict[str, int], column_count: int) -> None:
    unknown = set(mapping) - set(IMPORTABLE_FIELDS)
    if unknown:
        raise ValidationFailed(f"Unknown fields in the mapping: {', '.join(sorted(unknown))}.")
    missing = [IMPORTABLE_FIELDS[f] for f in REQUIRED_FIELDS if f not in mapping]
    if missing:
        raise ValidationFailed(f"Map a column to: {', '.join(missing)}.")
    columns = list(mapping.values())
    if any(not 0 <= column < column_count for column in columns):
        raise ValidationFailed("The mapping names a column the file does not have.")
    if len(set(columns)) != len(columns):
        raise ValidationFailed("Each column can be mapped to one field only.")


def _choice_lookup(field_name: str) -> dict[str, str]:
    """Accept a choice by its value or its label, in any case."""
    lookup = {}
    for value, label in Customer._meta.get_field(field_name).choices:
        lookup[str(value).lower()] = value
        lookup[str(label).lower()] = value
    return lookup


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


def _row_data(row: list[str], mapping: dict[str, int], choices: dict) -> dict[str, str]:
    data = {}
    for field, column in mapping.items():
        value = row[column].strip() if column < len(row) else ""
        if field in choices and value:
            value = choices[field].get(value.lower(), value)
        data[field] = value
    return data


def customer_import_start(
    *,
    actor,
    customer_import: CustomerImport,
    mapping: dict[str, int],
    duplicate_mode: str,
    enrol_sequence: str = "",
) -> CustomerImport:
    """Check the mapping now and import in the background (a Celery task after commit)."""
    from customers.tasks import run_customer_import

    with transaction.atomic():
        locked = CustomerImport.objects.select_for_update().get(pk=customer_import.pk)
        if locked.status != CustomerImport.Status.MAPPING:
            raise ValidationFailed("This file is already being imported or was imported.")
        _validate_mapping(mapping, len(locked.headers))
        locked.column_mapping = mapping
        locked.duplicate_mode = duplicate_mode
        locked.status = CustomerImport.Status.QUEUED
        locked.processed_rows = 0
        locked.save(update_fields=["column_mapping", "duplicate_mode", "status", "processed_rows"])
        react(
            Event.IMPORT_CONFIRMED,
            customer_import=locked,
            actor=actor,
            sequence_id=enrol_sequence or "",
        )
        transaction.on_commit(lambda: run_customer_import.delay(locked.pk))
    return locked


def customer_import_execute(*, import_id: int) -> CustomerImport | None:
    """Body of the background task: run a queued import once; record why it failed."""
    customer_import = (
        CustomerImport.objects.filter(pk=import_id, status=CustomerImport.Status.QUEUED)
        .select_related("uploaded_by")
        .first()
    )
    if customer_import is None:  # gone, or already done by an earlier delivery
        return None
    try:
        finished = customer_import_run(
            actor=customer_import.uploaded_by,
            customer_import=customer_import,
            mapping=customer_import.column_mapping,
            duplicate_mode=customer_import.duplicate_mode,
        )
        if finished.created_count + finished.updated_count >= ANALYZE_AFTER_ROWS:
            analyze(Customer, Customer.tags.through)
        return finished
    except ValidationFailed as error:
        _mark_failed(import_id, error.message)
    except OperationalError:
        raise  # transient (database unreachable): the task retries; nothing was written
    except Exception as error:
        _mark_failed(import_id, f"Unexpected error: {type(error).__name__}: {error}")
        raise
    return None


def _mark_failed(import_id: int, reason: str) -> None:
    CustomerImport.objects.filter(pk=import_id).exclude(status=CustomerImport.Status.DONE).update(
        status=CustomerImport.Status.FAILED,
        failure_reason=reason[:2000],
        finished_at=timezone.now(),
    )


PROGRESS_EVERY_ROWS = 1000
# An import this large refreshes the planner's statistics of the customers it loaded.
ANALYZE_AFTER_ROWS = 1000


def customer_import_run(
    *, actor, customer_import: CustomerImport, mapping: dict[str, int], duplicate_mode: str
) -> CustomerImport:
    """Import every valid row; invalid rows are reported with their errors and not written."""
    if customer_import.status == CustomerImport.Status.DONE:
        raise ValidationFailed("This file has already been imported.")
    _validate_mapping(mapping, len(customer_import.headers))
    rows = _read_rows(customer_import.content)[1:]
    choices = {field: _choice_lookup(field) for field in CHOICE_FIELDS}

    owners = {}
    for user in assignable_users(actor):
        owners[user.username.lower()] = user
        if user.email:
            owners.setdefault(user.email.lower(), user)

    errors: list[dict[str, Any]] = []
    valid: list[tuple[int, dict[str, Any], Any, list[str]]] = []
    first_row_for_email: dict[str, int] = {}
    for line_number, row in enumerate(rows, start=2):
        if line_number % PROGRESS_EVERY_ROWS == 0:
            CustomerImport.objects.filter(pk=customer_import.pk).update(
                processed_rows=line_number - 1
            )
        data = _row_data(row, mapping, choices)
        row_errors: dict[str, list[str]] = {}
        owner = actor
        owner_key = data.pop("owner", "").lower()
        if owner_key:
            owner = owners.get(owner_key)
            if owner is None:
                row_errors["owner"] = [f"No user '{owner_key}' you can assign customers to."]
        tag_names = [t for t in data.pop("tags", "").split(",") if t.strip()]
        consent_cell = data.pop("email_consent", "").strip().lower()
        consent = CONSENT_VALUES.get(consent_cell) if consent_cell else None
        if consent_cell and consent is None:
            row_errors["email_consent"] = [
                f"Email consent '{consent_cell[:40]}' is not one of yes, no, true, false, "
                "1, 0, opt-in, opt-out."
            ]
        form = ImportRowForm(data={**_defaults(), **data})
        if not form.is_valid():
            row_errors.update({field: list(messages) for field, messages in form.errors.items()})
        else:
            email = form.cleaned_data["email"].lower()
            if email in first_row_for_email:
                row_errors["email"] = [
                    f"Same email as row {first_row_for_email[email]} of this file."
                ]
            else:
                first_row_for_email[email] = line_number
        if row_errors:
            errors.append({"row": line_number, "values": row[:20], "errors": row_errors})
            continue
        cleaned = {field: form.cleaned_data[field] for field in data}
        cleaned.setdefault("email", form.cleaned_data["email"])
        if consent is not None:
            cleaned["email_consent"] = consent
        valid.append((line_number, cleaned, owner if "owner" in mapping else None, tag_names))

    with transaction.atomic():
        locked = CustomerImport.objects.select_for_update().get(pk=customer_import.pk)
        if locked.status == CustomerImport.Status.DONE:
            raise ValidationFailed("This file has already been imported.")
        created_ids, updated, skipped = _write_rows(
            actor=actor, valid=valid, errors=errors, duplicate_mode=duplicate_mode
        )
        react(Event.CUSTOMERS_IMPORTED, customer_import=locked, created_ids=created_ids)
        created = len(created_ids)
        locked.column_mapping = mapping
        locked.duplicate_mode = duplicate_mode
        locked.status = CustomerImport.Status.DONE
        locked.created_count = created
        locked.updated_count = updated
        locked.skipped_count = skipped
        locked.error_count = len(errors)
        locked.processed_rows = len(rows)
        locked.row_errors = sorted(errors, key=lambda e: e["row"])
        locked.finished_at = timezone.now()
        locked.save()
    return locked


def _defaults() -> dict[str, str]:
    """Values the model would default to, for columns the file does not have."""
    return {
        "source": Customer.Source.OTHER,
        "lifecycle_stage": Customer.LifecycleStage.LEAD,
        "engagement_level": Customer.EngagementLevel.MEDIUM,
    }


def _write_rows(*, actor, valid, errors, duplicate_mode) -> tuple[list[int], int, int]:
    """(ids of the customers created, how many updated, how many skipped)."""
    emails = [data["email"].lower() for _, data, _, _ in valid]
    existing: dict[str, Customer] = {}
    for start in range(0, len(emails), 1000):
        chunk = emails[start : start + 1000]
        for customer in Customer.objects.annotate(email_lower=Lower("email")).filter(
            email_lower__in=chunk
        ):
            existing[customer.email.lower()] = customer
    editable_ids = set()
    if existing and duplicate_mode == CustomerImport.DuplicateMode.UPDATE:
        ids = [customer.pk for customer in existing.values()]
        editable_ids = set(
            editable_customers(actor).filter(pk__in=ids).values_list("pk", flat=True)
        )

    to_create: list[Customer] = []
    to_update: list[Customer] = []
    update_fields: set[str] = set()
    tags_for: list[tuple[Customer, list[str]]] = []
    skipped = 0
    now = timezone.now()
    consent_set = {"email_consent_source": ConsentSource.IMPORT, "email_consent_at": now}
    for line_number, data, owner, tag_names in valid:
        current = existing.get(data["email"].lower())
        if current is None:
            customer = Customer(**data, **consent_set, owner=owner or actor)
            to_create.append(customer)
            tags_for.append((customer, tag_names))
        elif duplicate_mode == CustomerImport.DuplicateMode.SKIP:
            skipped += 1
        elif current.pk not in editable_ids:
            errors.append(
                {
                    "row": line_number,
                    "values": [],
                    "errors": {"email": ["A customer with this email exists and is not yours."]},
                }
            )
        else:
            for field, value in data.items():
                if field == "email_consent":
                    # A file never turns a withdrawal back into consent, nor rewrites an
                    # unchanged state's source and time.
                    if value == current.email_consent or (
                        current.email_consent == EmailConsent.WITHDRAWN
                    ):
                        continue
                    for name, setting in consent_set.items():
                        setattr(current, name, setting)
                    update_fields.update(consent_set)
                if field != "email":
                    setattr(current, field, value)
                    update_fields.add(field)
            if owner is not None:
                current.owner = owner
                update_fields.add("owner")
            to_update.append(current)
            tags_for.append((current, tag_names))

    for customer in to_create:
        customer.email = customer.email.strip().lower()
    Customer.objects.bulk_create(to_create, batch_size=1000)
    if to_update and update_fields:
        for customer in to_update:
            customer.updated_at = now
        Customer.objects.bulk_update(
            to_update, [*sorted(update_fields), "updated_at"], batch_size=1000
        )
    _attach_tags(tags_for)
    # Scored and graded, but an import never starts an email by itself: no grade workflows.
    customers_changed([customer.pk for customer in [*to_create, *to_update]], start_workflows=False)
    audit_record_many(
        actor=actor,
        verb="create",
        entries=[(c, {"import": "csv", "email": c.email}) for c in to_create],
    )
    audit_record_many(
        actor=actor,
        verb="update",
        entries=[(c, {"import": "csv", "fields": sorted(update_fields)}) for c in to_update],
    )
    return [customer.pk for customer in to_create], len(to_update), skipped


def _attach_tags(tags_for: list[tuple[Customer, list[str]]]) -> None:
    all_names = sorted({name.strip() for _, names in tags_for for name in names})
    if not all_names:
        return
    tags = {tag.name.lower(): tag for tag in tags_get_or_create(all_names)}
    Through = Customer.tags.through
    Through.objects.bulk_create(
        [
            Through(customer_id=customer.pk, tag_id=tags[name.strip().lower()].pk)
            for customer, names in tags_for
            for name in names
        ],
        ignore_conflicts=True,
        batch_size=1000,
    )
