"""Reads for the sequence pages, scoped through crm.permissions.campaigns. The funnel reads
each step's campaign counters (kept by the sender) and one grouped count of enrolments, so
no page counts emails."""

from dataclasses import dataclass

from django.db.models import Count, Q, QuerySet

from campaigns.models import EmailDraft, Sequence, SequenceEnrollment, SequenceStep
from crm.permissions.campaigns import visible_drafts, visible_enrollments, visible_sequences

Enrollment = SequenceEnrollment.Status


def sequence_list(*, user) -> QuerySet[Sequence]:
    """Every sequence with its step count and active enrolments (of customers the user sees
    for a rep; all for managers and admins, who run them)."""
    return (
        visible_sequences(user)
        .select_related("created_by")
        .annotate(
            step_count=Count("steps", distinct=True),
        )
        .order_by("name")
    )


def active_counts(*, user, sequence_ids: list[int]) -> dict[int, int]:
    """{sequence id: active enrolments the user sees}: one grouped query."""
    return dict(
        visible_enrollments(user)
        .filter(sequence_id__in=sequence_ids, status=Enrollment.ACTIVE)
        .order_by()
        .values("sequence_id")
        .annotate(n=Count("pk"))
        .values_list("sequence_id", "n")
    )


@dataclass
class FunnelStep:
    step: SequenceStep
    reached: int  # enrolments (that the user sees) that were sent this step or later
    sent: int
    opened: int
    clicked: int
    unsubscribed: int

    def rate(self, count: int) -> float:
        return round(100 * count / self.sent, 1) if self.sent else 0.0

    @property
    def open_rate(self) -> float:
        return self.rate(self.opened)

    @property
    def click_rate(self) -> float:
        return self.rate(self.clicked)


def sequence_funnel(*, user, sequence: Sequence) -> list[FunnelStep]:
    """Per step: how many enrolments got it, and the step campaign's counters."""
    steps = list(sequence.steps.select_related("template", "campaign").order_by("position"))
    positions = dict(
        visible_enrollments(user)
        .filter(sequence=sequence)
        .order_by()
        .values("next_position")
        .annotate(n=Count("pk"))
        .values_list("next_position", "n")
    )
    funnel = []
    for step in steps:
        reached = sum(n for position, n in positions.items() if position > step.position)
        campaign = step.campaign
        funnel.append(
            FunnelStep(
                step=step,
                reached=reached,
                sent=campaign.sent_count,
                opened=campaign.opened_count,
                clicked=campaign.clicked_count,
                unsubscribed=campaign.unsubscribed_count,
            )
        )
    return funnel


def status_counts(*, user, sequence: Sequence) -> dict[str, int]:
    return dict(
        visible_enrollments(user)
        .filter(sequence=sequence)
        .order_by()
        .values("status")
        .annotate(n=Count("pk"))
        .values_list("status", "n")
    )


def sequence_enrollments(*, user, sequence: Sequence, status: str = "", q: str = ""):
    enrollments = (
        visible_enrollments(user)
        .filter(sequence=sequence)
        .select_related("customer", "enrolled_by")
        .order_by("-enrolled_at", "-id")
    )
    if status:
        enrollments = enrollments.filter(status=status)
    if q:
        enrollments = enrollments.filter(
            Q(customer__name__icontains=q) | Q(customer__email__icontains=q)
        )
    return enrollments


def customer_enrollments(*, customer, limit: int = 20) -> QuerySet[SequenceEnrollment]:
    """One customer's enrolments (the caller checked access to the customer)."""
    return customer.sequence_enrollments.select_related("sequence").order_by("-enrolled_at", "-id")[
        :limit
    ]


def drafts_for(*, user, status: str = EmailDraft.Status.DRAFT) -> QuerySet[EmailDraft]:
    drafts = visible_drafts(user).select_related("customer", "rep")
    return drafts.filter(status=status) if status else drafts
