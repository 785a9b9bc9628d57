from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from crm.errors import ValidationFailed
from crm.http import add_service_error, is_htmx, querystring_without
from crm.permissions import access_customer_by_id, editable_customers, require_manager
from crm.roles import is_manager_or_admin
from leads import selectors
from leads.forms import LeadActivityForm, LeadFilterForm, ScoringRulesForm
from leads.models import FACTOR_MAX, RescoreRun, ScoringRule
from leads.services.activities import lead_activity_record
from leads.services.rules import scoring_rules_update

PAGE_SIZE = 25


def lead_list(request, *, hot_only: bool = False):
    filter_form = LeadFilterForm(request.GET, user=request.user, hot_only=hot_only)
    leads = selectors.lead_list(user=request.user, filters=filter_form.filters())
    context = {
        "filter_form": filter_form,
        "page": Paginator(leads, PAGE_SIZE).get_page(request.GET.get("page")),
        "querystring": querystring_without(request, "page"),
        "hot_only": hot_only,
        "hot_title": "Hot leads" if is_manager_or_admin(request.user) else "My hot leads",
    }
    template = "leads/partials/_lead_table.html" if is_htmx(request) else "leads/lead_list.html"
    return render(request, template, context)


def hot_leads(request):
    return lead_list(request, hot_only=True)


def _lead_detail_context(request, customer, *, form: LeadActivityForm | None = None) -> dict:
    score = selectors.lead_score(customer=customer)
    return {
        "customer": customer,
        "score": score,
        "score_max": sum(FACTOR_MAX.values()),
        "breakdown": selectors.lead_score_breakdown(score=score),
        "history": selectors.lead_score_history(customer=customer),
        "activities": selectors.lead_activities(customer=customer),
        "workflow_runs": selectors.lead_workflow_runs(customer=customer),
        "form": form if form is not None else LeadActivityForm(),
        "can_edit": editable_customers(request.user).filter(pk=customer.pk).exists(),
    }


def lead_detail(request, pk: int):
    customer = access_customer_by_id(request.user, pk)
    return render(request, "leads/lead_detail.html", _lead_detail_context(request, customer))


@require_POST
def lead_activity_add(request, pk: int):
    customer = access_customer_by_id(request.user, pk, for_change=True)
    form = LeadActivityForm(request.POST)
    if form.is_valid():
        try:
            note = form.cleaned_data["note"]
            lead_activity_record(
                customer=customer,
                activity_type=form.cleaned_data["activity_type"],
                details={"note": note} if note else {},
                recorded_by=request.user,
            )
        except ValidationFailed as error:
            add_service_error(form, error)
        else:
            if not is_htmx(request):
                messages.success(request, "Activity logged.")
                return redirect("leads:detail", customer.pk)
            form = LeadActivityForm()
    status = 422 if form.errors else 200
    if is_htmx(request):
        context = {
            "customer": customer,
            "activities": selectors.lead_activities(customer=customer),
            "form": form,
            "can_edit": True,
        }
        return render(request, "leads/partials/_lead_activities.html", context, status=status)
    # Without htmx: the whole lead page again, the form keeping its values and errors.
    context = _lead_detail_context(request, customer, form=form)
    return render(request, "leads/lead_detail.html", context, status=status)


RULES_REFUSED = "Only managers and admins edit the scoring rules."


@require_http_methods(["GET", "POST"])
def scoring_rules(request):
    require_manager(request.user, RULES_REFUSED)
    form = ScoringRulesForm(request.POST or None, rules=list(ScoringRule.objects.all()))
    if request.method == "POST" and form.is_valid():
        try:
            scoring_rules_update(
                actor=request.user, keyed_points=form.keyed_points(), bands=form.bands
            )
        except ValidationFailed as error:
            add_service_error(form, error)
        else:
            messages.success(request, "Rules saved. Every lead is being rescored.")
            return redirect("leads:rules")
    context = {"form": form, "run": RescoreRun.objects.first()}
    return render(request, "leads/scoring_rules.html", context, status=422 if form.errors else 200)


def rescore_progress(request, pk: int):
    require_manager(request.user, RULES_REFUSED)
    run = get_object_or_404(RescoreRun, pk=pk)
    return render(request, "leads/partials/_rescore_progress.html", {"run": run})
