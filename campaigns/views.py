"""Campaign pages: thin views over campaigns.services and campaigns.selectors."""

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from campaigns import selectors, services
from campaigns.forms import CampaignForm, PreviewForm, ScheduleForm, SegmentForm, TemplateForm
from campaigns.models import EmailCampaign, EmailMessage
from campaigns.segments import criteria_clean
from campaigns.states import Action, campaign_actions
from crm.errors import ValidationFailed
from crm.http import add_service_error, is_htmx, looks_like_id, querystring_without
from crm.permissions import access_customer_by_id, visible_customers
from crm.permissions.campaigns import (
    access_campaign_by_id,
    access_outbox_message_by_id,
    access_segment_by_id,
    access_template_by_id,
    can_change_campaign,
    can_run_campaigns,
    require_campaign_manager,
)

PAGE_SIZE = 25


# Campaigns ------------------------------------------------------------------------------


def campaign_list(request):
    status = request.GET.get("status", "")
    if status not in EmailCampaign.Status.values:
        status = ""
    campaigns = selectors.campaign_list(
        user=request.user,
        status=status,
        q=request.GET.get("q", "").strip()[:100],
        sort=request.GET.get("sort", "-created"),
    )
    context = {
        "page": Paginator(campaigns, PAGE_SIZE).get_page(request.GET.get("page")),
        "querystring": querystring_without(request, "page"),
        "statuses": EmailCampaign.Status.choices,
        "status": status,
        "q": request.GET.get("q", ""),
        "sort": request.GET.get("sort", "-created"),
        "can_manage": can_run_campaigns(request.user),
    }
    template = (
        "campaigns/partials/_campaign_table.html"
        if is_htmx(request)
        else "campaigns/campaign_list.html"
    )
    return render(request, template, context)


@require_http_methods(["GET", "POST"])
def campaign_edit(request, pk: int | None = None):
    require_campaign_manager(request.user)
    campaign = access_campaign_by_id(request.user, pk, for_change=True) if pk else None
    form = CampaignForm(request.POST or None, instance=campaign, user=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            campaign = services.campaign_save(
                actor=request.user, data=form.cleaned_data, campaign=campaign
            )
        except ValidationFailed as error:
            add_service_error(form, error)
        else:
            messages.success(request, f"Campaign “{campaign.name}” saved.")
            return redirect(campaign)
    status = 422 if form.errors else 200
    return render(
        request, "campaigns/campaign_form.html", {"form": form, "campaign": campaign}, status=status
    )


def campaign_detail(request, pk: int):
    campaign = access_campaign_by_id(request.user, pk)
    status = request.GET.get("status", "")
    if status not in EmailMessage.Status.values:
        status = ""
    recipients = selectors.campaign_recipients(user=request.user, campaign=campaign, status=status)
    can_manage = can_change_campaign(request.user, campaign)
    context = {
        "campaign": campaign,
        "funnel": selectors.campaign_funnel(campaign=campaign),
        "skipped": selectors.campaign_skipped(campaign=campaign),
        "timeline": selectors.campaign_timeline(campaign=campaign),
        "progress": selectors.campaign_progress(campaign=campaign),
        "failed_batches": selectors.campaign_failed_batches(campaign=campaign),
        "runs": selectors.campaign_runs(campaign=campaign),
        "page": Paginator(recipients, PAGE_SIZE).get_page(request.GET.get("page")),
        "querystring": querystring_without(request, "page"),
        "message_statuses": EmailMessage.Status.choices,
        "status": status,
        "can_manage": can_manage,
        # The buttons: exactly the actions the services accept for this campaign now.
        "actions": campaign_actions(campaign) if can_manage else frozenset(),
        "schedule_form": ScheduleForm() if can_manage else None,
    }
    if Action.SEND_NOW in context["actions"]:
        # Who it would go to now (the email gate applied), for the confirmation.
        context["reach"] = selectors.segment_reach(
            user=campaign.created_by, criteria=criteria_clean(campaign.segment.criteria)
        )
    if is_htmx(request) and request.GET.get("part") == "recipients":
        return render(request, "campaigns/partials/_recipients.html", context)
    return render(request, "campaigns/campaign_detail.html", context)


def campaign_progress(request, pk: int):
    """Polled while the campaign sends. Once it stops sending, the whole page is reloaded,
    so that its badge, buttons, funnel and recipients agree with the progress."""
    campaign = access_campaign_by_id(request.user, pk)
    if is_htmx(request) and campaign.status != EmailCampaign.Status.SENDING:
        response = HttpResponse(status=204)
        response["HX-Refresh"] = "true"
        return response
    context = {"campaign": campaign, "progress": selectors.campaign_progress(campaign=campaign)}
    return render(request, "campaigns/partials/_progress.html", context)


ACTIONS = {
    Action.SEND_NOW: (services.campaign_send_now, "Sending has started."),
    Action.PAUSE: (services.campaign_pause, "Campaign paused."),
    Action.RESUME: (services.campaign_resume, "Campaign resumed."),
    Action.CANCEL: (services.campaign_cancel, "Campaign cancelled."),
}


@require_POST
def campaign_action(request, pk: int, action: str):
    require_campaign_manager(request.user)
    campaign = access_campaign_by_id(request.user, pk, for_change=True)
    if action not in ACTIONS:
        raise Http404("No such action.")
    service, done = ACTIONS[action]
    try:
        service(actor=request.user, campaign=campaign)
    except ValidationFailed as error:
        messages.error(request, error.message)
    else:
        messages.success(request, done)
    return redirect(campaign)


@require_POST
def campaign_schedule(request, pk: int):
    require_campaign_manager(request.user)
    campaign = access_campaign_by_id(request.user, pk, for_change=True)
    form = ScheduleForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            if data["when"] == "at":
                services.campaign_schedule(
                    actor=request.user, campaign=campaign, send_at=data["send_at"]
                )
            else:
                services.campaign_schedule(actor=request.user, campaign=campaign, cron=data["cron"])
        except ValidationFailed as error:
            add_service_error(form, error)
        else:
            messages.success(request, "Campaign scheduled.")
            return redirect(campaign)
    for field, errors in form.errors.items():
        for error in errors:
            messages.error(
                request, error if field == "__all__" else f"{form[field].label}: {error}"
            )
    return redirect(campaign)


@require_http_methods(["GET", "POST"])
def campaign_delete(request, pk: int):
    require_campaign_manager(request.user)
    campaign = access_campaign_by_id(request.user, pk, for_change=True)
    if request.method == "POST":
        try:
            services.campaign_delete(actor=request.user, campaign=campaign)
        except ValidationFailed as error:
            messages.error(request, error.message)
            return redirect(campaign)
        messages.success(request, f"Campaign “{campaign.name}” deleted.")
        return redirect("campaigns:campaign_list")
    context = {"campaign": campaign, "message_count": campaign.messages.count()}
    return render(request, "campaigns/campaign_confirm_delete.html", context)


def customer_emails(request, pk: int):
    """The campaign emails one customer received, for its page (htmx panel)."""
    customer = access_customer_by_id(request.user, pk)
    emails = selectors.customer_campaign_messages(customer=customer)
    return render(
        request,
        "campaigns/partials/_customer_emails.html",
        {"customer": customer, "emails": emails},
    )


# Templates ------------------------------------------------------------------------------


def template_list(request):
    require_campaign_manager(request.user)
    templates = selectors.templates_list(user=request.user)
    page = Paginator(templates, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "campaigns/template_list.html", {"page": page})


@require_http_methods(["GET", "POST"])
def template_edit(request, pk: int | None = None):
    require_campaign_manager(request.user)
    template = access_template_by_id(request.user, pk) if pk else None
    form = TemplateForm(request.POST or None, instance=template)
    if request.method == "POST" and form.is_valid():
        try:
            template = services.template_save(
                actor=request.user, data=form.cleaned_data, template=template
            )
        except ValidationFailed as error:
            add_service_error(form, error)
        else:
            messages.success(request, f"Template “{template.name}” saved.")
            return redirect(template)
    preview_form = (
        PreviewForm(customers=selectors.preview_customers(user=request.user)) if template else None
    )
    context = {"form": form, "template": template, "preview_form": preview_form}
    return render(
        request, "campaigns/template_form.html", context, status=422 if form.errors else 200
    )


def _preview_customer(request):
    """The chosen customer if the user may see them, else the first one the form offers."""
    customer_id = request.GET.get("customer") or request.POST.get("customer")
    customers = visible_customers(request.user)
    customer = customers.filter(pk=customer_id).first() if looks_like_id(customer_id) else None
    return customer or selectors.preview_customer_first(user=request.user)


def template_preview(request, pk: int):
    require_campaign_manager(request.user)
    template = access_template_by_id(request.user, pk)
    customer = _preview_customer(request)
    preview = services.template_preview(template=template, customer=customer) if customer else None
    return render(
        request,
        "campaigns/partials/_template_preview.html",
        {"template": template, "customer": customer, "preview": preview},
    )


@require_POST
def template_send_test(request, pk: int):
    require_campaign_manager(request.user)
    template = access_template_by_id(request.user, pk)
    customer = _preview_customer(request)
    if customer is None:
        messages.error(request, "There is no customer to render the test email for.")
        return redirect(template)
    try:
        to = services.template_send_test(actor=request.user, template=template, customer=customer)
    except ValidationFailed as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"Test email sent to {to}.")
    return redirect(template)


# Segments -------------------------------------------------------------------------------


def segment_list(request):
    require_campaign_manager(request.user)
    segments = selectors.segments_list(user=request.user)
    page = Paginator(segments, PAGE_SIZE).get_page(request.GET.get("page"))
    summaries = selectors.segment_summaries(page.object_list)
    for segment in page.object_list:
        segment.summary = summaries[segment.pk]
    return render(request, "campaigns/segment_list.html", {"page": page})


@require_http_methods(["GET", "POST"])
def segment_edit(request, pk: int | None = None):
    require_campaign_manager(request.user)
    segment = access_segment_by_id(request.user, pk) if pk else None
    initial = SegmentForm.initial_from(segment) if segment else None
    form = SegmentForm(request.POST or None, initial=initial, user=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            segment = services.segment_save(
                actor=request.user,
                data={**form.cleaned_data, "criteria": form.criteria()},
                segment=segment,
            )
        except ValidationFailed as error:
            add_service_error(form, error)
        else:
            messages.success(
                request, f"Segment “{segment.name}” saved: {segment.customer_count} customers."
            )
            return redirect("campaigns:segment_list")
    context = {"form": form, "segment": segment}
    return render(
        request, "campaigns/segment_form.html", context, status=422 if form.errors else 200
    )


@require_POST
def segment_count(request):
    """The live count while a segment is edited (htmx)."""
    require_campaign_manager(request.user)
    form = SegmentForm(request.POST, user=request.user)
    form.is_valid()  # the name may be missing while editing; criteria errors matter
    errors = [e for key in SegmentForm.CRITERIA_FIELDS for e in form.errors.get(key, [])]
    reach = None
    if not errors:
        try:
            criteria = criteria_clean(form.criteria())
        except ValidationFailed as error:
            errors = [error.message]
        else:
            reach = selectors.segment_reach(user=request.user, criteria=criteria)
    return render(
        request, "campaigns/partials/_segment_count.html", {"reach": reach, "errors": errors}
    )


# Outbox ---------------------------------------------------------------------------------


def outbox(request):
    require_campaign_manager(request.user)
    q = request.GET.get("q", "").strip()[:100]
    messages_ = selectors.outbox_list(user=request.user, q=q)
    page = Paginator(messages_, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "campaigns/outbox.html",
        {"page": page, "q": q, "querystring": querystring_without(request, "page")},
    )


def outbox_message(request, pk: int):
    require_campaign_manager(request.user)
    message = access_outbox_message_by_id(request.user, pk)
    return render(request, "campaigns/outbox_message.html", {"message": message})
