"""Enrolling customers in a sequence and stopping them. Only customers the email gate lets
through (marketing) are enrolled; the others are counted by reason, for the page that asked.
Nobody is enrolled twice in one sequence at a time (a partial unique constraint)."""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import CharField, Count, DateTimeField, IntegerField, QuerySet
from django.db.models import Value as V
from django.db.models.functions import Cast
from django.utils import timezone

from campaigns.models import LeadEmailSettings, Sequence, SequenceEnrollment
from campaigns.segments import criteria_clean, segment_customers
from campaigns.sequences.window import next_in_window
from crm.bulk import insert_from_select
from crm.errors import ValidationFailed
from crm.permissions import visible_customers
from crm.services import audit_record
from customers.email_gate import EmailKind, Refusal, refusals_summary, with_email_refusal
from customers.models import Customer

Enrollment = SequenceEnrollment.Status
MANUAL_STOP = "Stopped by hand"


@dataclass
class Audience:
    """Who of a set of customers a sequence would take: the gate's counts, before enrolling."""

    allowed: int = 0
    already: int = 0
    refused: dict[str, int] = field(default_factory=dict)

    @property
    def refused_summary(self) -> tuple[int, list[tuple[str, int]]]:
        return refusals_summary(self.refused)


def first_send_at(sequence: Sequence, now: datetime) -> datetime | None:
    first = sequence.steps.order_by("position").first()
    if first is None:
        return None
    return next_in_window(
        start=sequence.window_start,
        end=sequence.window_end,
        moment=now + timedelta(days=first.delay_days),
    )


def _gated(sequence: Sequence, customers: QuerySet) -> QuerySet:
    active = SequenceEnrollment.objects.filter(sequence=sequence, status=Enrollment.ACTIVE)
    return with_email_refusal(
        customers.exclude(pk__in=active.values("customer_id")), EmailKind.MARKETING
    )


def audience_count(*, sequence: Sequence, customers: QuerySet) -> Audience:
    """How many of `customers` would be enrolled, are enrolled already, and are refused by
    the gate (per reason): two grouped queries."""
    already = SequenceEnrollment.objects.filter(
        sequence=sequence, status=Enrollment.ACTIVE, customer__in=customers.values("pk")
    ).count()
    counts = dict(
        _gated(sequence, customers)
        .order_by()
        .values("email_refusal")
        .annotate(n=Count("pk"))
        .values_list("email_refusal", "n")
    )
    allowed = counts.pop(None, 0)
    return Audience(allowed=allowed, already=already, refused=counts)


def customers_enrol(
    *, sequence: Sequence, customers: QuerySet, actor=None, now: datetime | None = None
) -> int:
    """Enrol those of `customers` the gate lets through and who are not enrolled already,
    their first step due after its delay, in the send window: one INSERT ... SELECT (a
    segment of 100,000 is one statement). Returns how many were enrolled."""
    now = now or timezone.now()
    if not sequence.is_active:
        raise ValidationFailed("This sequence is paused; resume it before enrolling anyone.")
    send_at = first_send_at(sequence, now)
    if send_at is None:
        raise ValidationFailed("This sequence has no steps yet.")
    select = (
        _gated(sequence, customers)
        .filter(email_refusal__isnull=True)
        .order_by()
        .annotate(
            e_sequence=V(sequence.pk, output_field=IntegerField()),
            e_status=V(Enrollment.ACTIVE, output_field=CharField()),
            e_position=V(0, output_field=IntegerField()),
            e_send_at=V(send_at, output_field=DateTimeField()),
            e_blank=V("", output_field=CharField()),
            e_now=V(now, output_field=DateTimeField()),
            e_by=Cast(V(actor.pk if actor else None), output_field=IntegerField()),
        )
        .values_list(
            "e_sequence", "pk", "e_status", "e_position", "e_send_at", "e_blank", "e_now", "e_by"
        )
    )
    columns = ["sequence_id", "customer_id", "status", "next_position", "next_send_at",
               "stop_reason", "enrolled_at", "enrolled_by_id"]  # fmt: skip
    return insert_from_select(SequenceEnrollment, columns, select)


def customer_enrol(*, actor, sequence: Sequence, customer: Customer) -> SequenceEnrollment:
    """Enrol one customer from its page; a refusal says why."""
    with transaction.atomic():
        customers = visible_customers(actor).filter(pk=customer.pk)
        audience = audience_count(sequence=sequence, customers=customers)
        if audience.already:
            raise ValidationFailed(f"{customer.name} is already in {sequence.name}.")
        if audience.refused:
            reason = next(iter(audience.refused))
            raise ValidationFailed(f"{customer.name} cannot be emailed: {Refusal(reason).label}.")
        customers_enrol(sequence=sequence, customers=customers, actor=actor)
        enrollment = SequenceEnrollment.objects.get(
            sequence=sequence, customer=customer, status=Enrollment.ACTIVE
        )
        audit_record(actor=actor, verb="create", instance=enrollment,
                     changes={"sequence": sequence.name, "customer": customer.name})  # fmt: skip
    return enrollment


def segment_enrol(*, actor, sequence: Sequence, segment) -> int:
    """Enrol every member of the segment, as the actor sees it, that the gate lets through."""
    customers = segment_customers(user=actor, criteria=criteria_clean(segment.criteria))
    with transaction.atomic():
        enrolled = customers_enrol(sequence=sequence, customers=customers, actor=actor)
        audit_record(actor=actor, verb="update", instance=sequence,
                     changes={"enrolled_segment": segment.name, "enrolled": enrolled})  # fmt: skip
    return enrolled


def enrollment_stop(*, actor, enrollment: SequenceEnrollment, reason: str = MANUAL_STOP) -> bool:
    """Stop an active enrolment; False when it had already ended."""
    stopped = SequenceEnrollment.objects.filter(
        pk=enrollment.pk, status=Enrollment.ACTIVE
    ).update(status=Enrollment.STOPPED, stop_reason=reason, next_send_at=None,
             finished_at=timezone.now())  # fmt: skip
    if stopped:
        audit_record(actor=actor, verb="update", instance=enrollment,
                     changes={"status": [Enrollment.ACTIVE, Enrollment.STOPPED]})  # fmt: skip
    return bool(stopped)


def cold_leads_enrol(*, customer_ids: list[int], now: datetime) -> None:
    """crm.reactions LEADS_TURNED_COLD: leads graded cold enter the sequence the managers
    chose in the lead email settings (none chosen, or paused: nobody is enrolled)."""
    sequence = LeadEmailSettings.current().cold_sequence
    if sequence is None or not sequence.is_active or not sequence.steps.exists():
        return  # (a sequence without steps: only Django admin can make one)
    leads = Customer.objects.filter(pk__in=customer_ids)
    customers_enrol(sequence=sequence, customers=leads, now=now)
