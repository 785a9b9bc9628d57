from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import redirect, render, resolve_url
from django.views.decorators.http import require_http_methods, require_POST

from crm.errors import ValidationFailed
from crm.http import add_service_error, is_htmx, querystring_without, safe_next_url, submitted
from crm.permissions import (
    access_customer_by_id,
    access_sale_by_id,
    access_task_by_id,
    editable_sales,
)
from sales import selectors, services
from sales.forecasting.probability import deal_probability
from sales.forms import (
    ActivityForm,
    CustomerChoiceForm,
    SaleFilterForm,
    SaleForm,
    StageChangeForm,
    TaskForm,
)

PAGE_SIZE = 25


def sale_list(request):
    filter_form = SaleFilterForm(request.GET, user=request.user)
    filters = filter_form.filters()
    sales = selectors.sale_list(user=request.user, filters=filters)
    totals = selectors.sale_totals(sales)
    paginator = Paginator(sales.with_related(), PAGE_SIZE)
    paginator.count = totals["count"]  # counted with the totals: one pass over the deals
    page = paginator.get_page(request.GET.get("page"))
    context = {
        "filter_form": filter_form,
        "page": page,
        "totals": totals,
        "sort": filters.get("sort", "-created"),
        "querystring": querystring_without(request, "page"),
        "sort_querystring": querystring_without(request, "page", "sort"),
    }
    template = "sales/partials/_sale_table.html" if is_htmx(request) else "sales/sale_list.html"
    return render(request, template, context)


@require_http_methods(["GET", "POST"])
def sale_create(request):
    initial = {}
    choice = CustomerChoiceForm(request.GET, user=request.user)
    if choice.is_valid() and choice.cleaned_data["customer"]:
        initial["customer"] = choice.cleaned_data["customer"].pk
    form = SaleForm(request.POST or None, user=request.user, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            sale = services.sale_create(actor=request.user, data=form.cleaned_data)
        except ValidationFailed as error:
            add_service_error(form, error)
        else:
            messages.success(request, f"Deal “{sale}” created.")
            return redirect("sales:detail", sale.pk)
    return render(request, "sales/sale_form.html", {"form": form})


def _sale_detail_context(request, sale, **overrides) -> dict:
    probability, reasons = deal_probability(sale)
    return {
        "sale": sale,
        "probability": probability,
        "probability_reasons": reasons,
        "is_stale": selectors.sale_is_stale(sale=sale),
        "can_edit": editable_sales(request.user).filter(pk=sale.pk).exists(),
        "activities": selectors.sale_activities(sale=sale),
        "tasks": selectors.sale_tasks(sale=sale),
        "history": selectors.sale_stage_history(sale=sale),
        "activity_form": ActivityForm(),
        "task_form": TaskForm(user=request.user),
        "stage_form": StageChangeForm(sale=sale),
        **overrides,
    }


def sale_detail(request, pk: int):
    sale = access_sale_by_id(request.user, pk)
    return render(request, "sales/sale_detail.html", _sale_detail_context(request, sale))


@require_http_methods(["GET", "POST"])
def sale_edit(request, pk: int):
    sale = access_sale_by_id(request.user, pk, for_change=True)
    form = SaleForm(request.POST or None, instance=sale, user=request.user)
    saved, _ = submitted(request, form, lambda: services.sale_update(
        actor=request.user, sale=sale, data=form.cleaned_data))  # fmt: skip
    if saved:
        messages.success(request, "Changes saved.")
        return redirect("sales:detail", sale.pk)
    return render(request, "sales/sale_form.html", {"form": form, "sale": sale})


@require_http_methods(["GET", "POST"])
def sale_delete(request, pk: int):
    sale = access_sale_by_id(request.user, pk, for_change=True)
    if request.method == "POST":
        title = str(sale)
        services.sale_delete(actor=request.user, sale=sale)
        messages.success(request, f"Deal “{title}” deleted.")
        return redirect("sales:list")
    return render(request, "sales/sale_confirm_delete.html", {"sale": sale})


@require_http_methods(["GET", "POST"])
def sale_change_stage(request, pk: int):
    sale = access_sale_by_id(request.user, pk, for_change=True)
    form = StageChangeForm(request.POST or None, sale=sale)
    if request.method == "POST" and form.is_valid():
        try:
            change = services.sale_change_stage(
                actor=request.user,
                sale=sale,
                to_status=form.cleaned_data["to_status"],
                closed_on=form.cleaned_data["closed_on"],
                lost_reason=form.cleaned_data["lost_reason"],
                reason=form.cleaned_data["reason"],
            )
        except ValidationFailed as error:
            add_service_error(form, error)
        else:
            messages.success(request, f"Deal moved to {change.get_to_status_display()}.")
            return redirect("sales:detail", sale.pk)
    return render(request, "sales/sale_stage_form.html", {"form": form, "sale": sale})


@require_POST
def sale_activity_add(request, pk: int):
    sale = access_sale_by_id(request.user, pk, for_change=True)
    form = ActivityForm(request.POST)
    if form.is_valid():
        try:
            services.sale_activity_add(
                actor=request.user,
                sale=sale,
                kind=form.cleaned_data["kind"],
                text=form.cleaned_data["text"],
                occurred_at=form.cleaned_data["occurred_at"],
            )
        except ValidationFailed as error:
            add_service_error(form, error)
        else:
            form = ActivityForm()
    context = {
        "sale": sale,
        "activities": selectors.sale_activities(sale=sale),
        "form": form,
        "can_edit": True,
    }
    status = 422 if form.errors else 200
    if is_htmx(request):
        return render(request, "sales/partials/_activities.html", context, status=status)
    if form.errors:
        messages.error(request, "The activity was not saved; check the form.")
    return redirect("sales:detail", sale.pk)


@require_POST
def sale_task_add(request, pk: int):
    sale = access_sale_by_id(request.user, pk, for_change=True)
    form = TaskForm(request.POST, user=request.user)
    if form.is_valid():
        try:
            services.task_create(actor=request.user, data={**form.cleaned_data, "sale": sale})
        except ValidationFailed as error:
            add_service_error(form, error)
        else:
            messages.success(request, "Task added.")
            return redirect("sales:detail", sale.pk)
    # Show the page again with the task form open, its values and errors kept.
    context = _sale_detail_context(request, sale, task_form=form, task_form_open=True)
    return render(request, "sales/sale_detail.html", context, status=422)


TASKS_PER_SECTION = 25
TASKS_PER_PAGE = 50


def my_tasks(request):
    """Overdue, today, upcoming and recently done, the first rows of each with its count; or
    one of them (`?show=overdue`) a page at a time: a rep can have thousands open."""
    sections = selectors.my_tasks(user=request.user)
    show = request.GET.get("show")
    if show in selectors.OPEN_TASK_SECTIONS:
        context = {
            "section": show,
            "page": Paginator(sections[show], TASKS_PER_PAGE).get_page(request.GET.get("page")),
            "querystring": querystring_without(request, "page"),
        }
        return render(request, "sales/my_tasks_section.html", context)
    context = {
        "tasks": sections,
        "task_slice": f":{TASKS_PER_SECTION}",
        "task_section_size": TASKS_PER_SECTION,
        "task_counts": selectors.open_task_counts(user=request.user),
    }
    return render(request, "sales/my_tasks.html", context)


@require_POST
def task_toggle(request, pk: int):
    task = access_task_by_id(request.user, pk)
    if request.POST.get("done") == "0":
        task = services.task_reopen(actor=request.user, task=task)
    else:
        task = services.task_complete(actor=request.user, task=task)
    if is_htmx(request):
        return render(request, "sales/partials/_task_row.html", {"task": task})
    return redirect(safe_next_url(request, resolve_url("sales:my_tasks")))


def customer_panel(request, customer_pk: int):
    """Deals, tasks and activity of one customer; loaded into the customer page by htmx."""
    customer = access_customer_by_id(request.user, customer_pk)
    context = {
        "customer": customer,
        "sales": selectors.customer_sales(user=request.user, customer=customer),
        "tasks": selectors.customer_tasks(user=request.user, customer=customer),
        "activities": selectors.customer_activities(user=request.user, customer=customer),
    }
    return render(request, "sales/partials/_customer_panel.html", context)
