"""Sequence pages, a lead's sequences panel, the lead email settings and the workflows'
email drafts: thin views over campaigns.sequences and campaigns.drafts."""

from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from campaigns import drafts as draft_services
from campaigns import selectors as campaign_selectors
from campaigns import services as campaign_services
from campaigns.forms import (
    EnrolForm,
    LeadEmailSettingsForm,
    SegmentEnrolForm,
    SequenceForm,
    StepFormSet,
)
from campaigns.models import EmailDraft, LeadEmailSettings, SequenceEnrollment
from campaigns.segments import criteria_clean, segment_customers
from campaigns.sequences import builder, enrolment, selectors
from crm.errors import ValidationFailed
from crm.http import add_service_error, querystring_without, safe_next_url
from crm.permissions import access_customer_by_id
from crm.permissions.campaigns import (
    access_draft_by_id,
    access_enrollment_by_id,
    access_segment_by_id,
    access_sequence_by_id,
    can_change_sequence,
    can_run_campaigns,
    require_campaign_manager,
    visible_sequences,
    visible_templates,
)

PAGE_SIZE = 25


def sequence_list(request):
    sequences = selectors.sequence_list(user=request.user)
    page = Paginator(sequences, PAGE_SIZE).get_page(request.GET.get("page"))
    counts = selectors.active_counts(
        user=request.user, sequence_ids=[s.pk for s in page.object_list]
    )
    for sequence in page.object_list:
        sequence.active_count = counts.get(sequence.pk, 0)
    context = {
        "page": page,
        "querystring": querystring_without(request, "page"),
        "can_manage": can_run_campaigns(request.user),
    }
    return render(request, "campaigns/sequence_list.html", context)


@require_http_methods(["GET", "POST"])
def sequence_edit(request, pk: int | None = None):
    require_campaign_manager(request.user)
    sequence = access_sequence_by_id(request.user, pk, for_change=True) if pk else None
    templates = visible_templates(request.user).filter(is_active=True).order_by("name")
    form = SequenceForm(request.POST or None, instance=sequence)
    initial = (
        [{"template": s.template_id, "delay_days": s.delay_days} for s in sequence.steps.all()]
        if sequence
        else []
    )
    steps = StepFormSet(
        request.POST or None, initial=initial, prefix="steps", form_kwargs={"templates": templates}
    )
    if request.method == "POST" and form.is_valid() and steps.is_valid():
        drafts = [
            builder.StepDraft(template=f.cleaned_data["template"],
                              delay_days=f.cleaned_data["delay_days"])
            for f in steps.forms
            if f.cleaned_data and not f.cleaned_data.get("DELETE")
        ]  # fmt: skip
        try:
            sequence = builder.sequence_save(
                actor=request.user, data=form.cleaned_data, steps=drafts, sequence=sequence
            )
        except ValidationFailed as error:
            add_service_error(form, error)
        else:
            messages.success(request, f"Sequence “{sequence.name}” saved.")
            return redirect(sequence)
    context = {
        "form": form,
        "steps": steps,
        "sequence": sequence,
        "has_templates": templates.exists(),
    }
    status = 422 if (form.errors or steps.total_error_count()) else 200
    return render(request, "campaigns/sequence_form.html", context, status=status)


def sequence_detail(request, pk: int):
    sequence = access_sequence_by_id(request.user, pk)
    status = request.GET.get("status", "")
    if status not in SequenceEnrollment.Status.values:
        status = ""
    q = request.GET.get("q", "").strip()[:100]
    enrollments = selectors.sequence_enrollments(
        user=request.user, sequence=sequence, status=status, q=q
    )
    can_change = can_change_sequence(request.user, sequence)
    context = {
        "sequence": sequence,
        "funnel": selectors.sequence_funnel(user=request.user, sequence=sequence),
        "status_counts": selectors.status_counts(user=request.user, sequence=sequence),
        "page": Paginator(enrollments, PAGE_SIZE).get_page(request.GET.get("page")),
        "querystring": querystring_without(request, "page"),
        "statuses": SequenceEnrollment.Status.choices,
        "status": status,
        "q": q,
        "can_change": can_change,
        "segment_form": SegmentEnrolForm(user=request.user) if can_change else None,
    }
    return render(request, "campaigns/sequence_detail.html", context)


def sequence_step_preview(request, pk: int, position: int):
    """A step's email rendered for a customer the manager sees (htmx panel)."""
    require_campaign_manager(request.user)
    sequence = access_sequence_by_id(request.user, pk)
    step = sequence.steps.select_related("template").filter(position=position).first()
    customer = campaign_selectors.preview_customer_first(user=request.user)
    preview = (
        campaign_services.template_preview(template=step.template, customer=customer)
        if step and customer
        else None
    )
    return render(
        request,
        "campaigns/partials/_template_preview.html",
        {"template": step.template if step else None, "customer": customer, "preview": preview},
    )


@require_POST
def sequence_toggle(request, pk: int):
    sequence = access_sequence_by_id(request.user, pk, for_change=True)
    active = not sequence.is_active
    builder.sequence_set_active(actor=request.user, sequence=sequence, active=active)
    messages.success(request, f"Sequence “{sequence.name}” {'resumed' if active else 'paused'}.")
    return redirect(sequence)


@require_http_methods(["GET", "POST"])
def sequence_delete(request, pk: int):
    sequence = access_sequence_by_id(request.user, pk, for_change=True)
    if request.method == "POST":
        try:
            builder.sequence_delete(actor=request.user, sequence=sequence)
        except ValidationFailed as error:
            messages.error(request, error.message)
            return redirect(sequence)
        messages.success(request, f"Sequence “{sequence.name}” deleted.")
        return redirect("campaigns:sequence_list")
    return render(request, "campaigns/sequence_confirm_delete.html", {"sequence": sequence})


@require_http_methods(["GET", "POST"])
def sequence_enrol_segment(request, pk: int):
    """GET: the gate's counts for the chosen segment; POST: enrol them."""
    sequence = access_sequence_by_id(request.user, pk, for_change=True)
    form = SegmentEnrolForm(request.POST or request.GET or None, user=request.user)
    audience = None
    if form.is_bound and form.is_valid():
        segment = access_segment_by_id(request.user, form.cleaned_data["segment"].pk)
        customers = segment_customers(user=request.user, criteria=criteria_clean(segment.criteria))
        if request.method == "POST":
            try:
                enrolled = enrolment.segment_enrol(
                    actor=request.user, sequence=sequence, segment=segment
                )
            except ValidationFailed as error:
                messages.error(request, error.message)
            else:
                messages.success(
                    request, f"{enrolled} customer{'s' if enrolled != 1 else ''} of "
                    f"“{segment.name}” enrolled in “{sequence.name}”."
                )  # fmt: skip
            return redirect(sequence)
        audience = enrolment.audience_count(sequence=sequence, customers=customers)
    context = {"sequence": sequence, "form": form, "audience": audience}
    return render(request, "campaigns/sequence_enrol_segment.html", context)


# One lead's sequences -------------------------------------------------------------------


def customer_sequences(request, pk: int):
    """The lead page's panel: its enrolments, stop buttons, and enrolling it (htmx)."""
    customer = access_customer_by_id(request.user, pk)
    sequences = visible_sequences(request.user).filter(is_active=True, steps__isnull=False)
    context = {
        "customer": customer,
        "enrollments": selectors.customer_enrollments(customer=customer),
        "enrol_form": EnrolForm(sequences=sequences.distinct().order_by("name")),
        "back": safe_next_url(request, reverse("leads:detail", args=[customer.pk])),
    }
    return render(request, "campaigns/partials/_customer_sequences.html", context)


@require_POST
def customer_enrol(request, pk: int):
    customer = access_customer_by_id(request.user, pk)
    sequences = visible_sequences(request.user).filter(is_active=True)
    form = EnrolForm(request.POST, sequences=sequences)
    back = safe_next_url(request, reverse("leads:detail", args=[customer.pk]))
    if not form.is_valid():
        messages.error(request, "Choose an active sequence.")
        return redirect(back)
    sequence = form.cleaned_data["sequence"]
    try:
        enrolment.customer_enrol(actor=request.user, sequence=sequence, customer=customer)
    except ValidationFailed as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"{customer.name} enrolled in “{sequence.name}”.")
    return redirect(back)


@require_POST
def enrollment_stop(request, pk: int):
    enrollment = access_enrollment_by_id(request.user, pk)
    if enrolment.enrollment_stop(actor=request.user, enrollment=enrollment):
        messages.success(request, "Sequence stopped for this lead.")
    else:
        messages.info(request, "This enrolment had already ended.")
    return redirect(safe_next_url(request, enrollment.sequence.get_absolute_url()))


# Lead email settings and drafts ---------------------------------------------------------


@require_http_methods(["GET", "POST"])
def lead_email_settings(request):
    require_campaign_manager(request.user)
    current = LeadEmailSettings.current()
    form = LeadEmailSettingsForm(request.POST or None, instance=current, user=request.user)
    if request.method == "POST" and form.is_valid():
        draft_services.lead_email_settings_save(actor=request.user, data=form.cleaned_data)
        messages.success(request, "Lead email settings saved.")
        return redirect("campaigns:lead_email_settings")
    status = 422 if form.errors else 200
    return render(request, "campaigns/lead_email_settings.html", {"form": form}, status=status)


def draft_list(request):
    status = request.GET.get("status", EmailDraft.Status.DRAFT)
    if status not in EmailDraft.Status.values:
        status = ""
    drafts = selectors.drafts_for(user=request.user, status=status)
    context = {
        "page": Paginator(drafts, PAGE_SIZE).get_page(request.GET.get("page")),
        "querystring": querystring_without(request, "page"),
        "statuses": EmailDraft.Status.choices,
        "status": status,
    }
    return render(request, "campaigns/draft_list.html", context)


def draft_detail(request, pk: int):
    draft = access_draft_by_id(request.user, pk)
    return render(request, "campaigns/draft_detail.html", {"draft": draft})


@require_POST
def draft_send(request, pk: int):
    draft = access_draft_by_id(request.user, pk)
    try:
        sent = draft_services.draft_send(actor=request.user, draft=draft)
    except ValidationFailed as error:
        messages.error(request, error.message)
    else:
        if sent.status == EmailDraft.Status.SENT:
            messages.success(request, f"Email sent to {sent.customer.email}.")
        else:
            messages.error(request, sent.error)
    return redirect(draft)


@require_POST
def draft_discard(request, pk: int):
    draft = access_draft_by_id(request.user, pk)
    if draft_services.draft_discard(actor=request.user, draft=draft):
        messages.success(request, "Draft discarded.")
    return redirect(draft)
