"""CSV import of customers: upload, column mapping, then the import of every valid row.

Rows are checked as the file is read, and the valid ones written a batch at a time, all in
one transaction: a bad row never loses the good ones and a failure never leaves half a
file. The rows refused are reported with the values that were refused; they can be
downloaded as CSV, or mapped again and imported without uploading anything.

The file is stored in pieces (CustomerImportChunk) as it is uploaded and read back a piece
at a time, so a 50,000-row file never sits whole in memory.

An import never starts an email by itself: a consent column (yes/no, true/false, 1/0,
opt-in/opt-out) or an opt-out column sets each customer's email consent (source: import;
unknown without the column or with an empty cell), and the imported leads are scored and
graded without the grade workflows (no sequence enrolment, no hot/warm email). Only an
explicit choice on the confirmation step enrols the new leads in a sequence (crm.reactions:
IMPORT_CONFIRMED and CUSTOMERS_IMPORTED, carried out by campaigns, which the gate still
filters).
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import OperationalError, transaction
from django.template.defaultfilters import filesizeformat
from django.urls import reverse
from django.utils import timezone

from crm.bulk import analyze
from crm.errors import ValidationFailed
from crm.models import Notification
from crm.notifications import Notice
from crm.permissions import assignable_users
from crm.reactions import Event, react
from crm.realtime import progress_push
from customers.csv_import import files, writes
from customers.csv_import.headers import (
    IMPORTABLE_FIELDS,
    JOINED_FIELDS,
    REQUIRED_FIELDS,
    guess_mapping,
    mapping_columns,
)
from customers.csv_import.rows import CONSENT_VALUES, RowCleaner
from customers.models import Customer, CustomerImport
from customers.services import customers_changed

__all__ = [
    "CONSENT_VALUES",
    "IMPORTABLE_FIELDS",
    "JOINED_FIELDS",
    "REQUIRED_FIELDS",
    "MappedPreviewRow",
    "customer_import_execute",
    "customer_import_mapped_preview",
    "customer_import_preview",
    "customer_import_progress",
    "customer_import_rejected_rows",
    "customer_import_retry_rejected",
    "customer_import_run",
    "customer_import_start",
    "customer_import_upload",
    "guess_mapping",
]

PREVIEW_ROWS = 5
PROGRESS_EVERY_ROWS = 1000
# Valid rows written together: enough for COPY to pay, few enough to keep memory flat.
BATCH_ROWS = 2000
# An import this large refreshes the planner's statistics of the customers it loaded.
ANALYZE_AFTER_ROWS = 1000
PROGRESS_SECONDS = 24 * 3600


@transaction.atomic
def customer_import_upload(*, actor, uploaded_file, duplicate_mode: str) -> CustomerImport:
    """Check that the upload is a CSV with a header row, store it in pieces as it is read
    and keep it for the mapping step, with the mapping suggested from its headers."""
    limit = settings.CUSTOMER_IMPORT_MAX_BYTES
    if uploaded_file.size > limit:
        raise ValidationFailed(
            f"The file is {filesizeformat(uploaded_file.size)}; the limit is "
            f"{filesizeformat(limit)}. Split it into smaller files.",
            field="file",
        )
    encoding = files.detect_encoding(uploaded_file)
    customer_import = CustomerImport.objects.create(
        uploaded_by=actor, filename=uploaded_file.name[:255], duplicate_mode=duplicate_mode
    )
    pieces = files.stored(files.decoded_pieces(uploaded_file, encoding), customer_import)
    delimiter, rows = files.read_rows(pieces)
    header = next(rows, None)
    if header is None:
        raise ValidationFailed("The file is empty.", field="file")
    headers = [cell.strip() for cell in header]
    row_count = sum(1 for _ in rows)
    if not any(headers) or row_count == 0:
        raise ValidationFailed(
            "The file needs a header row and at least one customer row.", field="file"
        )
    if row_count > settings.CUSTOMER_IMPORT_MAX_ROWS:
        raise ValidationFailed(
            f"The file has {row_count} rows; split it into files of at most "
            f"{settings.CUSTOMER_IMPORT_MAX_ROWS} rows.",
            field="file",
        )
    customer_import.delimiter = delimiter
    customer_import.headers = headers
    customer_import.row_count = row_count
    customer_import.column_mapping = guess_mapping(headers)
    customer_import.save(update_fields=["delimiter", "headers", "row_count", "column_mapping"])
    return customer_import


def customer_import_preview(*, customer_import: CustomerImport) -> list[list[str]]:
    """The first rows after the header (only the file's first piece is read)."""
    rows = files.import_rows(customer_import)
    preview = []
    for index, row in enumerate(rows):
        if index > PREVIEW_ROWS:
            break
        if index:
            preview.append(row)
    return preview


@dataclass
class MappedPreviewRow:
    """One row of the file as the import would read it: `cells` holds, per mapped field (in
    the page's order), the value the customer gets (joined columns joined, choices by their
    label) or, when refused, the value written with why."""

    line: int
    cells: list[dict[str, Any]]

    @property
    def refused(self) -> bool:
        return any(cell["errors"] for cell in self.cells)


CHOICE_LABELS = {
    field.name: dict(field.flatchoices) for field in Customer._meta.fields if field.choices
}


def _shown(value: Any, field: str) -> str:
    if value in (None, ""):
        return ""
    if isinstance(value, datetime):
        return timezone.localtime(value).date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(CHOICE_LABELS.get(field, {}).get(value, value))


def customer_import_mapped_preview(
    *, actor, customer_import: CustomerImport, mapping: dict[str, Any]
) -> tuple[list[str], list[MappedPreviewRow]]:
    """The first PREVIEW_ROWS rows under `mapping`, checked as the import will check them
    (before the duplicate checks, which need the whole file and the database): the mapped
    fields' labels and one MappedPreviewRow per row. ValidationFailed when the mapping
    cannot be used (a required field unmapped, a column mapped twice)."""
    _validate_mapping(mapping, len(customer_import.headers))
    owners = _owners(actor)
    cleaner = RowCleaner(mapping=mapping, owners=owners)
    fields = [field for field in IMPORTABLE_FIELDS if field in mapping]
    rows = files.import_rows(customer_import)
    next(rows, None)  # the header
    preview = []
    for line, row in enumerate(rows, start=2):
        if len(preview) == PREVIEW_ROWS:
            break
        result = cleaner.clean(row)
        values = {**result.values, "tags": ", ".join(result.tag_names)}
        if result.owner_key in owners:
            user = owners[result.owner_key]
            values["owner"] = user.get_full_name() or user.username
        if result.created_at:
            values["created_at"] = result.created_at
        if "email_opt_out" in mapping:
            values["email_opt_out"] = cleaner.cell(row, "email_opt_out")  # as written
        cells = []
        for field in fields:
            errors = result.errors.get(field, [])
            value = result.cells.get(field, "") if errors else values.get(field, "")
            cells.append({"field": field, "value": _shown(value, field), "errors": errors})
        preview.append(MappedPreviewRow(line=line, cells=cells))
    labels = [IMPORTABLE_FIELDS[field].split(" (")[0] for field in fields]
    return labels, preview


def _validate_mapping(mapping: dict[str, Any], column_count: int) -> None:
    unknown = set(mapping) - set(IMPORTABLE_FIELDS)
    if unknown:
        raise ValidationFailed(f"Unknown fields in the mapping: {', '.join(sorted(unknown))}.")
    missing = [IMPORTABLE_FIELDS[f] for f in REQUIRED_FIELDS if f not in mapping]
    if missing:
        raise ValidationFailed(f"Map a column to: {', '.join(missing)}.")
    columns = []
    for field, value in mapping.items():
        if isinstance(value, list | tuple) and (field not in JOINED_FIELDS or not value):
            raise ValidationFailed(f"{IMPORTABLE_FIELDS[field]} takes one column.")
        field_columns = mapping_columns(value)
        if not all(
            isinstance(column, int) and not isinstance(column, bool) for column in field_columns
        ):
            raise ValidationFailed("The mapping names a column the file does not have.")
        columns.extend(field_columns)
    if any(not 0 <= column < column_count for column in columns):
        raise ValidationFailed("The mapping names a column the file does not have.")
    if len(set(columns)) != len(columns):
        raise ValidationFailed("Each column can be mapped to one field only.")


def customer_import_start(
    *,
    actor,
    customer_import: CustomerImport,
    mapping: dict[str, Any],
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
        .defer("content", "row_errors")
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
    failed = (
        CustomerImport.objects.filter(pk=import_id)
        .exclude(status=CustomerImport.Status.DONE)
        .update(
            status=CustomerImport.Status.FAILED,
            failure_reason=reason[:2000],
            finished_at=timezone.now(),
        )
    )
    if failed:
        _import_finished_notify(CustomerImport.objects.get(pk=import_id))


def _import_progress_push(customer_import: CustomerImport, *, after_commit: bool = True) -> None:
    """Its uploader's open report page looks again (the rows checked, or the end)."""
    progress_push(
        subject="import",
        subject_id=customer_import.pk,
        status=customer_import.status,
        user_ids=[customer_import.uploaded_by_id],
        after_commit=after_commit,
    )


def _import_finished_notify(customer_import: CustomerImport) -> None:
    """Its uploader (crm.reactions IMPORT_FINISHED), after commit."""
    if customer_import.status == CustomerImport.Status.DONE:
        text = (
            f"Your import of {customer_import.filename} finished: "
            f"{customer_import.created_count:,} created, {customer_import.updated_count:,} "
            f"updated, {customer_import.error_count:,} with errors."
        )
    else:
        text = f"Your import of {customer_import.filename} failed: {customer_import.failure_reason}"
    notice = Notice(
        kind=Notification.Kind.IMPORT_FINISHED,
        recipient_ids=[customer_import.uploaded_by_id],
        text=text,
        link=reverse("customers:import_report", args=[customer_import.pk]),
        obj=customer_import,
    )
    react(Event.IMPORT_FINISHED, notices=[notice])
    _import_progress_push(customer_import)


def _progress_key(import_id: int) -> str:
    return f"customers:import-progress:{import_id}"


def customer_import_progress(*, customer_import: CustomerImport) -> int:
    """Rows checked so far. The import runs in one transaction, so its progress is kept in
    the cache (shared by web and workers) rather than in its row, which nobody else could
    see before the commit."""
    if customer_import.status != CustomerImport.Status.QUEUED:
        return customer_import.processed_rows
    return cache.get(_progress_key(customer_import.pk), customer_import.processed_rows)


def _owners(actor) -> dict[str, Any]:
    """Users the actor may assign customers to, by username, email and full name."""
    owners: dict[str, Any] = {}
    by_name: dict[str, list] = {}
    for user in assignable_users(actor):
        owners[user.username.lower()] = user
        full_name = f"{user.first_name} {user.last_name}".strip().lower()
        if full_name:
            by_name.setdefault(full_name, []).append(user)
    for user in assignable_users(actor):
        if user.email:
            owners.setdefault(user.email.lower(), user)
    for full_name, users in by_name.items():
        if len(users) == 1:  # a name two users share names nobody
            owners.setdefault(full_name, users[0])
    return owners


def customer_import_run(
    *, actor, customer_import: CustomerImport, mapping: dict[str, Any], duplicate_mode: str
) -> CustomerImport:
    """Import every valid row; invalid rows are reported with their errors and values and
    not written."""
    if customer_import.status == CustomerImport.Status.DONE:
        raise ValidationFailed("This file has already been imported.")
    _validate_mapping(mapping, len(customer_import.headers))
    with transaction.atomic():
        locked = (
            CustomerImport.objects.select_for_update()
            .defer("content", "row_errors")
            .get(pk=customer_import.pk)
        )
        if locked.status == CustomerImport.Status.DONE:
            raise ValidationFailed("This file has already been imported.")
        owners = _owners(actor)
        cleaner = RowCleaner(mapping=mapping, owners=owners)
        writer = writes.ImportWriter(
            actor=actor,
            duplicate_mode=duplicate_mode,
            owners=owners,
            model_fields=cleaner.model_fields,
        )
        errors: list[dict[str, Any]] = []
        first_row_for_email: dict[str, int] = {}
        batch = []
        rows = files.import_rows(locked)
        next(rows, None)  # the header
        line_number = 1
        for line_number, row in enumerate(rows, start=2):
            if line_number % PROGRESS_EVERY_ROWS == 0:
                cache.set(_progress_key(locked.pk), line_number - 1, PROGRESS_SECONDS)
                _import_progress_push(locked, after_commit=False)
            result = cleaner.clean(row)
            if not result.errors:
                email = result.values["email"]
                if email in first_row_for_email:
                    result.refuse(
                        "email",
                        email,
                        [f"Same email as row {first_row_for_email[email]} of this file."],
                    )
                else:
                    first_row_for_email[email] = line_number
            if result.errors:
                errors.append({"row": line_number, "errors": result.errors, "cells": result.cells})
                continue
            batch.append((line_number, result))
            if len(batch) >= BATCH_ROWS:
                writer.write(batch, errors)
                batch = []
        writer.write(batch, errors)
        # Scored and graded, but an import never starts an email by itself: no workflows.
        customers_changed([*writer.created_ids, *writer.updated_ids], start_workflows=False)
        react(Event.CUSTOMERS_IMPORTED, customer_import=locked, created_ids=writer.created_ids)
        locked.column_mapping = mapping
        locked.duplicate_mode = duplicate_mode
        locked.status = CustomerImport.Status.DONE
        locked.created_count = len(writer.created_ids)
        locked.updated_count = len(writer.updated_ids)
        locked.skipped_count = writer.skipped
        locked.error_count = len(errors)
        locked.processed_rows = line_number - 1
        locked.row_errors = sorted(errors, key=lambda e: e["row"])
        locked.finished_at = timezone.now()
        locked.save(
            update_fields=[
                "column_mapping",
                "duplicate_mode",
                "status",
                "created_count",
                "updated_count",
                "skipped_count",
                "error_count",
                "processed_rows",
                "row_errors",
                "finished_at",
            ]
        )
        _import_finished_notify(locked)
    cache.delete(_progress_key(locked.pk))
    return locked


def _problems_text(item: dict[str, Any]) -> str:
    """'Last contact date "2024-31-12": Not a valid date ...; Email ...' for one row."""
    cells = item.get("cells", {})
    parts = []
    for field, messages in item["errors"].items():
        label = IMPORTABLE_FIELDS.get(field, field).split(" (")[0]
        value = f' "{cells[field]}"' if cells.get(field) else ""
        parts.append(f"{label}{value}: {' '.join(messages)}")
    return "; ".join(parts)


def customer_import_rejected_rows(*, customer_import: CustomerImport) -> Iterator[list[str]]:
    """The rows this import refused, as they were in the file, each after a first column
    saying why; the header first. Streamed: the file is read a piece at a time."""
    problems = {item["row"]: _problems_text(item) for item in customer_import.row_errors}
    rows = files.import_rows(customer_import)
    header = next(rows, [])
    yield ["Problems", *header]
    if not problems:
        return
    last = max(problems)
    for line_number, row in enumerate(rows, start=2):
        if line_number in problems:
            yield [problems[line_number], *row]
        if line_number >= last:
            break


@transaction.atomic
def customer_import_retry_rejected(*, actor, customer_import: CustomerImport) -> CustomerImport:
    """A new import of the rows this one refused, exactly as they were in the file, waiting
    for its mapping (this import's is suggested): fix the mapping, not the file, and import
    them without uploading anything."""
    if customer_import.status != CustomerImport.Status.DONE or not customer_import.row_errors:
        raise ValidationFailed("This import has no refused rows to import again.")
    rejected = {item["row"] for item in customer_import.row_errors}
    retry = CustomerImport.objects.create(
        uploaded_by=actor,
        filename=f"{customer_import.filename[:200]} (rows not imported)",
        delimiter=",",
        headers=customer_import.headers,
        row_count=len(rejected),
        column_mapping=customer_import.column_mapping,
        duplicate_mode=customer_import.duplicate_mode,
    )
    writer = files.PieceWriter(retry)
    rows = files.import_rows(customer_import)
    writer.writerow(next(rows, []))
    last = max(rejected)
    for line_number, row in enumerate(rows, start=2):
        if line_number in rejected:
            writer.writerow(row)
        if line_number >= last:
            break
    writer.flush()
    return retry
