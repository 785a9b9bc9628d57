"""Dashboards: the executive dashboard (managers and admins), the deals behind each of its
numbers, its CSV exports, and the home page (each user's own dashboard)."""

import csv

from django.conf import settings
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from analytics.dashboard import dashboard_charts, executive_dashboard
from analytics.exports import TABLES, dashboard_table_rows
from analytics.forms import DashboardFilterForm, DrilldownForm
from analytics.selectors.drilldown import DRILLDOWN_METRICS, metric_deals
from analytics.selectors.reps import rep_month_numbers
from crm.http import is_htmx, querystring_without
from crm.permissions.analytics import require_dashboard
from crm.roles import Role, role_of
from leads import selectors as lead_selectors
from leads.models import Grade
from sales import selectors as sale_selectors

PAGE_SIZE = 25
HOT_LEADS_ON_HOME = 10


@require_GET
def dashboard(request):
    require_dashboard(request.user)
    form = DashboardFilterForm(request.GET, user=request.user)
    filters = form.filters()
    # The form offers only what the user may see; a team or rep out of reach answers 404
    # (crm.permissions.analytics).
    data = executive_dashboard(user=request.user, filters=filters)
    context = {
        "form": form,
        "ignored": form.ignored(),
        "filters_label": form.describe(filters),
        "dashboard": data,
        "charts": dashboard_charts(data),
        "filter_query": filters.querystring(),
        "tables": TABLES,
    }
    template = (
        "analytics/partials/_dashboard_body.html"
        if is_htmx(request)
        else "analytics/dashboard.html"
    )
    return render(request, template, context)


@require_GET
def export(request, table: str):
    """One dashboard table as CSV, with the page's filters. Filters the user may not use
    are refused (404) rather than dropped: a file does not show a warning."""
    require_dashboard(request.user)
    if table not in TABLES:
        raise Http404("No such table.")
    form = DashboardFilterForm(request.GET, user=request.user)
    filters = form.filters()
    if form.errors:
        raise Http404("No such dashboard.")
    rows = dashboard_table_rows(user=request.user, filters=filters, table=table)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = f'attachment; filename="{table}-{stamp}.csv"'
    csv.writer(response).writerows(rows)
    return response


@require_GET
def deals(request):
    """The deals behind one dashboard number, listed with the same conditions."""
    require_dashboard(request.user)
    form = DrilldownForm(request.GET, user=request.user)
    filters = form.filters()
    if form.errors:
        raise Http404("No such list.")
    cleaned = form.cleaned_data
    sales = metric_deals(
        user=request.user,
        metric=cleaned["metric"],
        scope=filters.scope,
        days=cleaned.get("days") or filters.period,
        month=form.month_date(),
        currency=cleaned.get("currency") or "",
        status=cleaned.get("status") or "",
        owner_id=cleaned.get("owner"),
    )
    page = Paginator(sales, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "page": page,
        "metric_label": DRILLDOWN_METRICS[cleaned["metric"]],
        "totals": sale_selectors.sale_totals(sales),
        "cleaned": cleaned,
        "days": cleaned.get("days") or filters.period,
        "filter_query": filters.querystring(),
        "querystring": querystring_without(request, "page"),
    }
    return render(request, "analytics/deal_list.html", context)


@require_GET
def home(request):
    """Everyone's start page: my pipeline, my tasks, my hot leads and my numbers this
    month against last month (a manager also finds the executive dashboard from here)."""
    user = request.user
    # A manager's home shows the team (a manager rarely owns deals); a rep's their own.
    team = role_of(user) == Role.MANAGER
    hot_filters = {"grade": Grade.HOT} if team else {"grade": Grade.HOT, "owner": user.pk}
    summary = sale_selectors.home_summary(user=user, currency=settings.DEFAULT_CURRENCY)
    context = {
        "mine": "My team's" if team else "My",
        "summary": summary,
        "pipeline": summary["pipeline"],
        "pipeline_currency": settings.DEFAULT_CURRENCY,
        "task_slice": ":10",
        "tasks": sale_selectors.my_tasks(user=user),
        "hot_leads": list(
            lead_selectors.lead_list(user=user, filters=hot_filters)[:HOT_LEADS_ON_HOME]
        ),
        "hot_leads_query": f"grade={Grade.HOT.value}" + ("" if team else f"&owner={user.pk}"),
        "deals_query": "status=open" + ("" if team else f"&owner={user.pk}"),
        "numbers": rep_month_numbers(user=user),
    }
    return render(request, "analytics/home.html", context)
