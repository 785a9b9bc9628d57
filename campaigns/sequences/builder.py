"""Saving a sequence and its steps. Each step owns a hidden EmailCampaign whose runs are the
step's sends (so the campaigns pipeline, its tracking and its counters serve sequences)."""

from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone

from campaigns.models import EmailCampaign, EmailMessage, EmailTemplate, Sequence, SequenceStep
from campaigns.sending.provider import ProviderNotConfigured, provider_for
from campaigns.states import Status
from crm.errors import ValidationFailed
from crm.permissions.campaigns import require_campaign_manager
from crm.services import audit_record

MAX_STEPS = 20


@dataclass(frozen=True)
class StepDraft:
    template: EmailTemplate
    delay_days: int


def _step_campaign_name(sequence: Sequence, position: int) -> str:
    return f"{sequence.name} – step {position + 1}"[:150]


def sequence_save(
    *, actor, data: dict, steps: list[StepDraft], sequence: Sequence | None = None
) -> Sequence:
    """Create or update the sequence and its steps, in order. A step that has sent emails
    cannot be removed (its funnel and messages would go with it); pause the sequence."""
    require_campaign_manager(actor)
    if not steps:
        raise ValidationFailed("A sequence needs at least one step.")
    if len(steps) > MAX_STEPS:
        raise ValidationFailed(f"A sequence has at most {MAX_STEPS} steps.")
    if data["window_start"] >= data["window_end"]:
        raise ValidationFailed("The send window must end after it starts.", field="window_end")
    if data.get("provider"):
        try:
            provider_for(data["provider"])
        except ProviderNotConfigured as error:
            raise ValidationFailed(str(error), field="provider") from None
    sequence = sequence or Sequence(created_by=actor)
    verb = "update" if sequence.pk else "create"
    for field in ("name", "description", "is_active", "window_start", "window_end",
                  "stop_at_grade", "provider"):  # fmt: skip
        if field in data:
            setattr(sequence, field, data[field])
    sequence.updated_at = timezone.now()
    try:
        with transaction.atomic():
            sequence.save()
            _steps_save(actor, sequence, steps)
            audit_record(
                actor=actor,
                verb=verb,
                instance=sequence,
                changes={
                    "name": sequence.name,
                    "steps": [[s.template.name, s.delay_days] for s in steps],
                },
            )
    except IntegrityError:
        raise ValidationFailed("A sequence with this name exists.", field="name") from None
    return sequence


def _steps_save(actor, sequence: Sequence, steps: list[StepDraft]) -> None:
    existing = {step.position: step for step in sequence.steps.select_related("campaign")}
    for position, draft in enumerate(steps):
        step = existing.pop(position, None)
        if step is None:
            campaign = EmailCampaign.objects.create(
                name=_step_campaign_name(sequence, position),
                campaign_type=EmailCampaign.Type.NURTURE,
                template=draft.template,
                segment=None,
                status=Status.SCHEDULED,  # never sent as a campaign: the tick starts its runs
                provider=sequence.provider,
                created_by=actor,
            )
            SequenceStep.objects.create(
                sequence=sequence,
                position=position,
                template=draft.template,
                delay_days=draft.delay_days,
                campaign=campaign,
            )
            continue
        step.template, step.delay_days = draft.template, draft.delay_days
        step.save(update_fields=["template", "delay_days"])
        EmailCampaign.objects.filter(pk=step.campaign_id).update(
            template=draft.template,
            name=_step_campaign_name(sequence, position),
            provider=sequence.provider,
            updated_at=timezone.now(),
        )
    for step in existing.values():  # the steps past the new last one
        if EmailMessage.objects.filter(campaign_id=step.campaign_id).exists():
            raise ValidationFailed(
                f"Step {step.position + 1} has sent emails and cannot be removed; "
                "pause the sequence or build a new one."
            )
        campaign_id = step.campaign_id
        step.delete()
        EmailCampaign.objects.filter(pk=campaign_id).delete()


def sequence_set_active(*, actor, sequence: Sequence, active: bool) -> Sequence:
    """Pause (nothing is sent; enrolments wait, due steps go when resumed) or resume."""
    require_campaign_manager(actor)
    Sequence.objects.filter(pk=sequence.pk).update(is_active=active, updated_at=timezone.now())
    sequence.is_active = active
    audit_record(actor=actor, verb="update", instance=sequence, changes={"is_active": active})
    return sequence


def sequence_delete(*, actor, sequence: Sequence) -> None:
    """Only a sequence that never sent: its emails' history stays otherwise (pause it)."""
    require_campaign_manager(actor)
    campaign_ids = list(sequence.steps.values_list("campaign_id", flat=True))
    if EmailMessage.objects.filter(campaign_id__in=campaign_ids).exists():
        raise ValidationFailed(
            "This sequence has sent emails; pause it instead, so their history stays."
        )
    with transaction.atomic():
        audit_record(actor=actor, verb="delete", instance=sequence, changes={"name": sequence.name})
        sequence.delete()
        EmailCampaign.objects.filter(pk__in=campaign_ids).delete()
