from django.core.paginator import Paginator
from django.shortcuts import render
from django.views.decorators.http import require_POST

from crm.errors import ValidationFailed
from crm.http import add_service_error, is_htmx, querystring_without
from crm.permissions import access_customer_by_id, editable_customers
from leads import selectors, services
from leads.forms import LeadActivityForm, LeadFilterForm

PAGE_SIZE = 25


def lead_list(request, *, hot_only: bool = False):
    params = request.GET.copy()
    if hot_only:
        params.setdefault("grade", "hot")
        params.setdefault("owner", str(request.user.pk))
    filter_form = LeadFilterForm(params, user=request.user)
    leads = selectors.lead_list(user=request.user, filters=filter_form.filters())
    context = {
        "filter_form": filter_form,
        "page": Paginator(leads, PAGE_SIZE).get_page(request.GET.get("page")),
        "querystring": querystring_without(request, "page"),
        "hot_only": hot_only,
    }
    template = "leads/partials/_lead_table.html" if is_htmx(request) else "leads/lead_list.html"
    return render(request, template, context)


def hot_leads(request):
    return lead_list(request, hot_only=True)


def lead_detail(request, pk: int):
    customer = access_customer_by_id(request.user, pk)
    context = {
        "customer": customer,
        "breakdown": selectors.lead_score_breakdown(customer=customer),
        "history": selectors.lead_score_history(customer=customer),
        "activities": selectors.lead_activities(customer=customer),
        "workflow_runs": selectors.lead_workflow_runs(customer=customer),
        "nurture": selectors.lead_nurture(customer=customer),
        "form": LeadActivityForm(),
        "can_edit": editable_customers(request.user).filter(pk=customer.pk).exists(),
    }
    return render(request, "leads/lead_detail.html", context)


@require_POST
def lead_activity_add(request, pk: int):
    customer = access_customer_by_id(request.user, pk, for_change=True)
    form = LeadActivityForm(request.POST)
    if form.is_valid():
        try:
            note = form.cleaned_data["note"]
            services.lead_activity_record(
                customer=customer,
                activity_type=form.cleaned_data["activity_type"],
                details={"note": note} if note else {},
                recorded_by=request.user,
            )
        except ValidationFailed as error:
            add_service_error(form, error)
        else:
            form = LeadActivityForm()
    context = {
        "customer": customer,
        "activities": selectors.lead_activities(customer=customer),
        "form": form,
        "can_edit": True,
    }
    return render(
        request, "leads/partials/_lead_activities.html", context, status=422 if form.errors else 200
    )
