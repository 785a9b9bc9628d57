"""The duplicates pages: the review queue, a pair side by side with the merge form, the
merges with their undo, the scan and bulk merge progress. Managers and admins only."""

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from crm.errors import PermissionDenied, ValidationFailed
from crm.http import add_service_error, is_htmx, querystring_without
from crm.permissions import require_admin, require_manager
from crm.permissions.duplicates import (
    access_customer_merge_by_id,
    access_duplicate_pair_by_id,
    may_merge,
)
from crm.roles import is_admin
from customers.duplicates import selectors, services
from customers.duplicates.forms import BulkMergeForm, MergeForm, QueueFilterForm
from customers.duplicates.models import DuplicateJob

PAGE_SIZE = 25


def duplicate_queue(request):
    require_manager(request.user, "Only managers and admins review duplicates.")
    filter_form = QueueFilterForm(request.GET)
    filters = filter_form.filters()
    pairs = selectors.duplicate_queue(user=request.user, **filters)
    page = Paginator(pairs, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "filter_form": filter_form,
        "filters": filters,
        "page": page,
        "querystring": querystring_without(request, "page"),
        "scan": selectors.latest_job(kind=DuplicateJob.Kind.SCAN),
        "bulk": selectors.latest_job(kind=DuplicateJob.Kind.BULK_MERGE),
        "can_bulk_merge": is_admin(request.user),
    }
    return render(request, "customers/duplicates/queue.html", context)


@require_POST
def duplicate_scan(request):
    job = services.duplicate_scan_start(actor=request.user)
    if is_htmx(request):
        return render(request, "customers/duplicates/partials/_job.html", {"job": job})
    messages.success(request, "Scanning every customer for duplicates; this page shows progress.")
    return redirect("customers:duplicates")


def duplicate_job(request, pk: int):
    """A scan's or bulk merge's progress (polled by htmx until it finishes)."""
    require_manager(request.user, "Only managers and admins review duplicates.")
    job = get_object_or_404(DuplicateJob, pk=pk)
    if job.kind == DuplicateJob.Kind.BULK_MERGE:
        require_admin(request.user, "Only admins merge duplicates in bulk.")
    if is_htmx(request) and not job.is_active and request.GET.get("polling"):
        response = HttpResponse(status=204)
        response["HX-Refresh"] = "true"  # finished: show the new queue
        return response
    return render(request, "customers/duplicates/partials/_job.html", {"job": job})


@require_http_methods(["GET", "POST"])
def duplicate_pair(request, pk: int):
    """The pair side by side; the form merges it."""
    pair = access_duplicate_pair_by_id(request.user, pk)
    a, b = pair.customer_a, pair.customer_b
    comparison = selectors.pair_comparison(a=a, b=b)
    form = MergeForm(request.POST or None, comparison=comparison)
    if request.method == "POST" and form.is_valid():
        try:
            merge = services.customers_merge(actor=request.user, pair=pair, **form.merge_kwargs())
        except ValidationFailed as error:
            add_service_error(form, error)
        except PermissionDenied as error:
            form.add_error(None, str(error))
        else:
            messages.success(
                request,
                f"“{merge.merged_name}” was merged into this customer "
                f"({merge.moved_count} related records moved). You can undo it for "
                f"{settings.DUPLICATE_UNDO_DAYS} days from Duplicates › Merges.",
            )
            return redirect("customers:detail", merge.survivor_id)
    context = {
        "pair": pair,
        "comparison": comparison,
        "form": form,
        "can_merge": may_merge(request.user, [a.pk, b.pk]),
        "undo_days": settings.DUPLICATE_UNDO_DAYS,
    }
    status = 422 if form.errors else 200
    return render(request, "customers/duplicates/pair.html", context, status=status)


@require_POST
def duplicate_pair_dismiss(request, pk: int):
    pair = access_duplicate_pair_by_id(request.user, pk)
    if request.POST.get("action") == "reopen":
        services.duplicate_pair_reopen(actor=request.user, pair=pair)
        messages.success(request, "The pair is back in the queue.")
    else:
        services.duplicate_pair_dismiss(actor=request.user, pair=pair)
        messages.success(request, "Marked as not a duplicate; later scans leave the pair alone.")
    return redirect("customers:duplicates")


def merge_list(request):
    require_manager(request.user, "Only managers and admins merge customers.")
    merges = selectors.customer_merges(user=request.user)
    page = Paginator(merges, PAGE_SIZE).get_page(request.GET.get("page"))
    rows = [(merge, services.merge_undo_refusal(merge)) for merge in page.object_list]
    context = {"page": page, "rows": rows, "undo_days": settings.DUPLICATE_UNDO_DAYS}
    return render(request, "customers/duplicates/merges.html", context)


@require_http_methods(["GET", "POST"])
def merge_undo(request, pk: int):
    """Confirm, then undo a merge."""
    merge = access_customer_merge_by_id(request.user, pk)
    refusal = services.merge_undo_refusal(merge)
    if request.method == "POST" and not refusal:
        try:
            customer = services.customer_merge_undo(actor=request.user, merge=merge)
        except (ValidationFailed, PermissionDenied) as error:
            refusal = getattr(error, "message", str(error))
        else:
            messages.success(request, f"The merge is undone: “{customer}” is back.")
            return redirect("customers:detail", customer.pk)
    context = {
        "merge": merge,
        "refusal": refusal,
        "deadline": services.merge_undo_deadline(merge),
    }
    return render(
        request,
        "customers/duplicates/merge_undo.html",
        context,
        status=422 if refusal and request.method == "POST" else 200,
    )


@require_http_methods(["GET", "POST"])
def bulk_merge(request):
    require_admin(request.user, "Only admins merge duplicates in bulk.")
    form = BulkMergeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.bulk_merge_start(
                actor=request.user, min_confidence=form.cleaned_data["min_confidence"]
            )
        except ValidationFailed as error:
            add_service_error(form, error)
        else:
            messages.success(request, "Merging in the background; this page shows progress.")
            return redirect("customers:duplicates_bulk")
    min_confidence = (
        form.cleaned_data["min_confidence"]
        if form.is_bound and form.is_valid()
        else settings.DUPLICATE_BULK_MIN_CONFIDENCE
    )
    context = {
        "form": form,
        "job": selectors.latest_job(kind=DuplicateJob.Kind.BULK_MERGE),
        "pair_count": selectors.duplicate_queue(
            user=request.user, min_confidence=min_confidence
        ).count(),
        "min_confidence": min_confidence,
        "undo_days": settings.DUPLICATE_UNDO_DAYS,
    }
    return render(request, "customers/duplicates/bulk.html", context)
