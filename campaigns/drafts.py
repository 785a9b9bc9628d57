"""The hot and warm leads' one-to-one emails: rendered from the managers' chosen template as a
draft on the rep's task, sent from the rep (reply-to the rep) with one click, or by itself
when the managers chose automatic sending. The email gate (one-to-one) decides at sending."""

from email.utils import formataddr, parseaddr

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.utils import timezone

from campaigns.models import EmailDraft, LeadEmailSettings
from campaigns.sending.recipients import recipient_values
from campaigns.templating import render, variables_used
from crm.errors import ValidationFailed
from crm.permissions.campaigns import require_campaign_manager
from crm.reactions import Event, Question, ask, react
from crm.services import audit_record
from customers.email_gate import EmailKind, email_refusal
from leads.models import Grade
from sales.models import Task

Draft = EmailDraft.Status
RECOMMENDED_VARIABLES = {"recommended_document_title", "recommended_document_url"}


def _rep_name(rep) -> str:
    return rep.get_full_name() or rep.username


def follow_up_draft_prepare(*, assigned_to, customer, grade: str, actions: list[str], **_) -> None:
    """crm.reactions LEAD_NEEDS_FOLLOW_UP: in the workflow's transaction, after sales made the
    rep's tasks. `actions` is the workflow run's record, added to."""
    choice = LeadEmailSettings.current()
    template = choice.hot_template if grade == Grade.HOT else choice.warm_template
    if template is None:
        actions.append("No email: no template is chosen in the lead email settings")
        return
    values = {
        **recipient_values(customer),
        "owner_name": _rep_name(assigned_to),
        "owner_email": assigned_to.email or "",
    }
    recommended_document_id = None
    if grade == Grade.WARM:
        # The case-study email offers the customer's top recommended document.
        recommended = ask(Question.RECOMMENDED_CONTENT, {}, customer=customer, user=assigned_to)
        document_id = recommended.pop("recommended_document_id", None)
        values |= recommended
        used = variables_used(template.subject, template.text_body, template.html_body)
        # Kept only when the email names the document: its sending then counts as a send.
        if RECOMMENDED_VARIABLES & set(used):
            recommended_document_id = document_id
    task = (
        Task.objects.filter(customer=customer, assigned_to=assigned_to, completed_at=None,
                            is_auto_created=True)
        .order_by("-created_at", "-id")
        .first()
    )  # fmt: skip
    draft = EmailDraft.objects.create(
        customer=customer,
        rep=assigned_to,
        task=task,
        template=template,
        subject=render(template.subject, values, html=False)[:300],
        text_body=render(template.text_body, values, html=False),
        html_body=render(template.html_body, values, html=True),
        recommended_document_id=recommended_document_id,
    )
    if task is not None:
        note = f"Email draft ready to send: {settings.SITE_URL}{draft.get_absolute_url()}"
        Task.objects.filter(pk=task.pk).update(description=f"{task.description}\n\n{note}".strip())
    if choice.send_automatically:
        from campaigns.tasks import send_draft

        transaction.on_commit(lambda: send_draft.delay(draft.pk))
        actions.append(f"Email to send automatically (the email gate decides): {draft.subject}")
    else:
        actions.append(f"Email draft for the rep: {draft.subject}")


def draft_send(*, actor, draft: EmailDraft) -> EmailDraft:
    """Send the draft from its rep; the gate may refuse (the draft records why)."""
    with transaction.atomic():
        locked = (
            EmailDraft.objects.select_for_update(of=("self",))
            .select_related("customer", "rep")
            .get(pk=draft.pk)
        )
        if locked.status != Draft.DRAFT:
            raise ValidationFailed(f"This email is {locked.get_status_display().lower()} already.")
        refusal = email_refusal(locked.customer, EmailKind.ONE_TO_ONE)
        if refusal is not None:
            locked.status, locked.error = Draft.REFUSED, f"Not sent: {refusal.label}."
            locked.save(update_fields=["status", "error"])
            audit_record(actor=actor, verb="update", instance=locked,
                         changes={"status": "refused", "reason": refusal.label})  # fmt: skip
            return locked
        locked.status, locked.sent_at = Draft.SENT, timezone.now()
        locked.save(update_fields=["status", "sent_at"])
        audit_record(actor=actor, verb="update", instance=locked, changes={"status": "sent"})
        # Sent inside the transaction: if the provider refuses, the draft stays a draft.
        _deliver(locked)
        if locked.recommended_document_id is not None:
            react(Event.RECOMMENDED_CONTENT_SENT, customer=locked.customer,
                  document_id=locked.recommended_document_id, sent_by=locked.rep)  # fmt: skip
    return locked


def draft_send_automatically(*, draft_id: int) -> None:
    draft = EmailDraft.objects.filter(pk=draft_id, status=Draft.DRAFT).first()
    if draft is not None:
        draft_send(actor=None, draft=draft)


def draft_discard(*, actor, draft: EmailDraft) -> bool:
    discarded = EmailDraft.objects.filter(pk=draft.pk, status=Draft.DRAFT).update(
        status=Draft.DISCARDED
    )
    if discarded:
        audit_record(actor=actor, verb="update", instance=draft, changes={"status": "discarded"})
    return bool(discarded)


def _deliver(draft: EmailDraft) -> None:
    """From the rep by name at the CRM's sending address (a provider sends only from
    verified domains), replies to the rep."""
    rep = draft.rep
    _default_name, address = parseaddr(settings.DEFAULT_FROM_EMAIL)
    message = EmailMultiAlternatives(
        subject=draft.subject,
        body=draft.text_body,
        from_email=formataddr((_rep_name(rep), address)),
        to=[draft.customer.email],
        reply_to=[rep.email] if rep.email else None,
    )
    if draft.html_body:
        message.attach_alternative(draft.html_body, "text/html")
    message.send()


def lead_email_settings_save(*, actor, data: dict) -> LeadEmailSettings:
    """The managers' choice of what the lead workflows email, audited with what changed."""
    require_campaign_manager(actor)
    current = LeadEmailSettings.current()
    fields = ("cold_sequence", "warm_template", "hot_template", "send_automatically")
    changes = {f: str(data[f]) for f in fields if f in data and getattr(current, f) != data[f]}
    for field in fields:
        if field in data:
            setattr(current, field, data[field])
    current.updated_by, current.updated_at = actor, timezone.now()
    current.save()
    audit_record(actor=actor, verb="update", instance=current, changes=changes)
    return current
