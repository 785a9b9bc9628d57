import csv

from django.contrib import messages
from django.contrib.admin.utils import NestedObjects
from django.core.paginator import Paginator
from django.db import router
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render, resolve_url
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from crm.errors import PermissionDenied, ValidationFailed
from crm.http import (
    add_service_error,
    is_htmx,
    querystring_without,
    safe_next_url,
    spreadsheet_safe,
    submitted,
)
from crm.permissions import access_customer_by_id, editable_customers, require_manager
from crm.permissions.customer_imports import access_customer_import_by_id
from crm.roles import is_manager_or_admin
from crm.selectors import audit_events_for
from customers import csv_import, selectors, services
from customers.duplicates.selectors import duplicate_pairs_of, likely_duplicates
from customers.forms import (
    BulkAssignForm,
    CustomerFilterForm,
    CustomerForm,
    ImportMappingForm,
    ImportUploadForm,
    NoteForm,
)
from customers.models import CustomerImport

PAGE_SIZE = 25
OPTIONS_LIMIT = 20


def customer_list(request):
    filter_form = CustomerFilterForm(request.GET, user=request.user)
    filters = filter_form.filters()
    customers = selectors.customer_list(user=request.user, filters=filters).with_related()
    page = Paginator(customers, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "filter_form": filter_form,
        "page": page,
        "sort": filters.get("sort", "name"),
        "querystring": querystring_without(request, "page"),
        "sort_querystring": querystring_without(request, "page", "sort"),
        "can_bulk_assign": is_manager_or_admin(request.user),
        "owners": filter_form.owners,
    }
    template = "customers/partials/_customer_table.html" if is_htmx(request) else None
    return render(request, template or "customers/customer_list.html", context)


class _Echo:
    def write(self, value):
        return value


def customer_export(request):
    filters = CustomerFilterForm(request.GET, user=request.user).filters()
    writer = csv.writer(_Echo())
    rows = selectors.customer_export_rows(user=request.user, filters=filters)
    response = StreamingHttpResponse(
        (writer.writerow(row) for row in rows), content_type="text/csv"
    )
    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = f'attachment; filename="customers-{stamp}.csv"'
    return response


def customer_options(request):
    """<option>s of the visible customers matching ?customer_q=, for searchable selects."""
    q = request.GET.get("customer_q", "")[:100]
    customers = selectors.customer_list(user=request.user, filters={"q": q})[:OPTIONS_LIMIT]
    context = {"customers": customers, "q": q}
    return render(request, "customers/partials/_customer_options.html", context)


@require_http_methods(["GET", "POST"])
def customer_create(request):
    """The form; when the new customer looks like existing ones, they are shown (with links)
    and "Create anyway" confirms."""
    form = CustomerForm(request.POST or None, user=request.user)
    duplicates = []
    if request.method == "POST" and form.is_valid():
        if not request.POST.get("confirm_duplicates"):
            duplicates = likely_duplicates(user=request.user, data=form.cleaned_data)
        if not duplicates:
            try:
                customer = services.customer_create(actor=request.user, **form.service_kwargs())
            except ValidationFailed as error:
                add_service_error(form, error)
            else:
                messages.success(request, f"Customer “{customer}” created.")
                return redirect("customers:detail", customer.pk)
    context = {
        "form": form,
        "duplicates": [match for match in duplicates if match.customer],
        "duplicates_out_of_sight": sum(1 for match in duplicates if match.customer is None),
    }
    return render(request, "customers/customer_form.html", context)


def customer_detail(request, pk: int):
    customer = access_customer_by_id(request.user, pk)
    context = {
        "customer": customer,
        "tags": customer.tags.all(),
        "notes": selectors.customer_notes(customer=customer),
        "note_form": NoteForm(),
        "history": audit_events_for(customer, limit=20),
        "can_edit": editable_customers(request.user).filter(pk=customer.pk).exists(),
        "duplicate_pairs": duplicate_pairs_of(user=request.user, customer=customer),
    }
    return render(request, "customers/customer_detail.html", context)


@require_http_methods(["GET", "POST"])
def customer_edit(request, pk: int):
    customer = access_customer_by_id(request.user, pk, for_change=True)
    form = CustomerForm(request.POST or None, instance=customer, user=request.user)
    saved, _ = submitted(request, form, lambda: services.customer_update(
        actor=request.user, customer=customer, **form.service_kwargs()))  # fmt: skip
    if saved:
        messages.success(request, "Changes saved.")
        return redirect("customers:detail", customer.pk)
    return render(request, "customers/customer_form.html", {"form": form, "customer": customer})


@require_http_methods(["GET", "POST"])
def customer_delete(request, pk: int):
    customer = access_customer_by_id(request.user, pk, for_change=True)
    if request.method == "POST":
        name = str(customer)
        try:
            services.customer_delete(actor=request.user, customer=customer)
        except PermissionDenied as error:
            messages.error(request, str(error))
            return redirect("customers:detail", customer.pk)
        messages.success(request, f"Customer “{name}” deleted.")
        return redirect("customers:list")
    # Admin's collector lists every row the cascade takes (plain Collector fast-deletes
    # some of them without counting).
    collector = NestedObjects(using=router.db_for_write(customer.__class__))
    collector.collect([customer])
    also_deleted = [
        (len(objects), (opts.verbose_name if len(objects) == 1 else opts.verbose_name_plural))
        for model, objects in collector.model_objs.items()
        if model is not customer.__class__ and model._meta.auto_created is False and objects
        for opts in [model._meta]
    ]
    return render(
        request,
        "customers/customer_confirm_delete.html",
        {"customer": customer, "also_deleted": also_deleted},
    )


@require_POST
def customer_note_add(request, pk: int):
    customer = access_customer_by_id(request.user, pk, for_change=True)
    form = NoteForm(request.POST)
    if form.is_valid():
        try:
            services.customer_note_add(
                actor=request.user, customer=customer, text=form.cleaned_data["text"]
            )
        except ValidationFailed as error:
            add_service_error(form, error)
        else:
            form = NoteForm()
    context = {
        "customer": customer,
        "notes": selectors.customer_notes(customer=customer),
        "note_form": form,
        "can_edit": True,
    }
    status = 200 if not form.errors else 422
    if is_htmx(request):
        return render(request, "customers/partials/_notes.html", context, status=status)
    if form.errors:
        messages.error(request, "The note was not saved: " + " ".join(form.errors.get("text", [])))
    return redirect("customers:detail", customer.pk)


@require_POST
def customer_bulk_assign(request):
    require_manager(request.user, "Only managers and admins can assign owners in bulk.")
    form = BulkAssignForm(request.POST, user=request.user)
    if not form.is_valid():
        for errors in form.errors.values():
            messages.error(request, " ".join(errors))
    else:
        try:
            changed = services.customer_bulk_assign_owner(
                actor=request.user,
                customer_ids=form.cleaned_data["customer_ids"],
                owner=form.cleaned_data["owner"],
            )
        except ValidationFailed as error:
            messages.error(request, error.message)
        else:
            owner = form.cleaned_data["owner"]
            messages.success(request, f"{changed} customer(s) assigned to {owner}.")
    return redirect(safe_next_url(request, resolve_url("customers:list")))


@require_http_methods(["GET", "POST"])
def import_upload(request):
    form = ImportUploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            customer_import = csv_import.customer_import_upload(
                actor=request.user,
                uploaded_file=form.cleaned_data["file"],
                duplicate_mode=form.cleaned_data["duplicate_mode"],
            )
        except ValidationFailed as error:
            add_service_error(form, error)
        else:
            return redirect("customers:import_mapping", customer_import.pk)
    recent = selectors.customer_imports_for(user=request.user)[:10]
    return render(request, "customers/import_upload.html", {"form": form, "recent": recent})


@require_http_methods(["GET", "POST"])
def import_mapping(request, pk: int):
    """The mapping step: the suggested mapping with its preview; "Preview" (or changing a
    column, by htmx) shows the first rows under the chosen one; "Import" starts the import."""
    customer_import = access_customer_import_by_id(request.user, pk)
    if customer_import.status != CustomerImport.Status.MAPPING:
        return redirect("customers:import_report", customer_import.pk)
    form = ImportMappingForm(
        request.POST or None, customer_import=customer_import, user=request.user
    )
    mapping = customer_import.column_mapping
    if request.method == "POST" and form.is_valid():
        mapping = form.mapping()
        if request.POST.get("action") != "preview":
            try:
                csv_import.customer_import_start(
                    actor=request.user,
                    customer_import=customer_import,
                    mapping=mapping,
                    duplicate_mode=form.cleaned_data["duplicate_mode"],
                    enrol_sequence=form.cleaned_data.get("enrol_sequence", ""),
                )
            except ValidationFailed as error:
                add_service_error(form, error)
            else:
                return redirect("customers:import_report", customer_import.pk)
    mapped_labels, mapped_rows, mapping_problem = [], [], ""
    try:
        mapped_labels, mapped_rows = csv_import.customer_import_mapped_preview(
            actor=request.user, customer_import=customer_import, mapping=mapping
        )
    except ValidationFailed as error:
        mapping_problem = error.message
    context = {
        "row_duplicates": _preview_duplicates(request.user, mapped_rows),
        "customer_import": customer_import,
        "form": form,
        "preview_rows": csv_import.customer_import_preview(customer_import=customer_import),
        "mapped_labels": mapped_labels,
        "mapped_rows": mapped_rows,
        "mapping_problem": mapping_problem,
    }
    return render(request, "customers/import_mapping.html", context)


def _preview_duplicates(user, rows) -> dict[int, list]:
    """{line: the existing customers the preview row likely duplicates}: a warning beside
    the exact-email check the import itself makes."""
    found = {}
    for row in rows:
        data = {cell["field"]: cell["value"] for cell in row.cells if not cell["errors"]}
        matches = likely_duplicates(user=user, data=data, limit=3)
        if matches:
            found[row.line] = matches
    return found


def import_report(request, pk: int):
    """Progress while the import runs (polled by htmx), then the report."""
    customer_import = access_customer_import_by_id(request.user, pk)
    if customer_import.status == CustomerImport.Status.MAPPING:
        return redirect("customers:import_mapping", customer_import.pk)
    progress = {
        "customer_import": customer_import,
        "processed_rows": csv_import.customer_import_progress(customer_import=customer_import),
    }
    if is_htmx(request):
        if customer_import.status != CustomerImport.Status.QUEUED:
            response = HttpResponse(status=204)
            response["HX-Refresh"] = "true"  # finished: load the full report
            return response
        return render(request, "customers/partials/_import_progress.html", progress)
    context = {**progress, "report": None}
    if customer_import.status == CustomerImport.Status.DONE:
        context["report"] = selectors.customer_import_report(customer_import=customer_import)
    return render(request, "customers/import_report.html", context)


def import_rejected_csv(request, pk: int):
    """The rows an import refused, as CSV, each with why: fix them and upload them again."""
    customer_import = access_customer_import_by_id(request.user, pk)
    if customer_import.status != CustomerImport.Status.DONE:
        return redirect("customers:import_report", customer_import.pk)
    writer = csv.writer(_Echo())
    rows = csv_import.customer_import_rejected_rows(customer_import=customer_import)
    # Spreadsheet-safe like every CSV export; the import takes the quote off again.
    response = StreamingHttpResponse(
        (writer.writerow([spreadsheet_safe(cell) for cell in row]) for row in rows),
        content_type="text/csv; charset=utf-8",
    )
    stem = customer_import.filename.rsplit(".", 1)[0]
    safe = "".join(c if c.isascii() and (c.isalnum() or c in "-_ ") else "_" for c in stem)
    filename = safe.strip()[:100] or "import"
    response["Content-Disposition"] = f'attachment; filename="{filename} - not imported.csv"'
    return response


@require_POST
def import_retry(request, pk: int):
    """Map the refused rows again and import them, without uploading anything."""
    customer_import = access_customer_import_by_id(request.user, pk)
    try:
        retry = csv_import.customer_import_retry_rejected(
            actor=request.user, customer_import=customer_import
        )
    except ValidationFailed as error:
        messages.error(request, error.message)
        return redirect("customers:import_report", customer_import.pk)
    return redirect("customers:import_mapping", retry.pk)
