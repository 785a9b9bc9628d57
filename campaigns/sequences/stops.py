"""The stop conditions, judged at a step's edge: for the enrolments about to be sent a step,
just before it goes. Each is one UPDATE over the due enrolments with its reason; the gate's
refusals (unsubscribed, suppressed, consent withdrawn or missing) are one more, per reason.
A manual stop happens at once (enrolment.enrollment_stop)."""

from datetime import datetime

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from campaigns.models import Sequence, SequenceEnrollment
from customers.email_gate import EmailKind, Refusal, with_email_refusal
from leads.models import ActivityType, Grade, LeadActivity
from sales.models import Sale, SaleActivity

Enrollment = SequenceEnrollment.Status

# A lead that answered: an activity logged by the rep or recorded by tracking since it was
# enrolled. (The same signal as sales' "customer replied" pipeline rule.)
REPLY_LEAD_ACTIVITIES = [ActivityType.MEETING_SCHEDULED, ActivityType.CALL_ANSWERED]
REPLY_SALE_ACTIVITIES = [SaleActivity.Kind.EMAIL, SaleActivity.Kind.MEETING,
                         SaleActivity.Kind.CALL]  # fmt: skip
GRADES_AT_LEAST = {Sequence.StopGrade.WARM: [Grade.WARM, Grade.HOT],
                   Sequence.StopGrade.HOT: [Grade.HOT]}  # fmt: skip


def _replied() -> Q:
    since = OuterRef("enrolled_at")
    customer = OuterRef("customer_id")
    return Q(
        Exists(LeadActivity.objects.filter(customer_id=customer, timestamp__gte=since,
                                           activity_type__in=REPLY_LEAD_ACTIVITIES))
    ) | Q(
        Exists(SaleActivity.objects.filter(sale__customer_id=customer, occurred_at__gte=since,
                                           kind__in=REPLY_SALE_ACTIVITIES))
    )  # fmt: skip


def _deal_created() -> Q:
    return Q(
        Exists(
            Sale.objects.filter(customer_id=OuterRef("customer_id"),
                                created_at__gte=OuterRef("enrolled_at"))
        )
    )  # fmt: skip


def conditions(sequence: Sequence) -> list[tuple[str, Q]]:
    """(reason, condition over SequenceEnrollment), in the order they are judged."""
    found = [
        ("Replied or meeting logged", _replied()),
        ("Deal created", _deal_created()),
    ]
    grades = GRADES_AT_LEAST.get(sequence.stop_at_grade)
    if grades:
        found.append(
            (f"Lead turned {' or '.join(grades)}", Q(customer__lead_score__grade__in=grades))
        )
    return found


def _stop(enrollments: QuerySet, reason: str, now: datetime) -> int:
    return enrollments.update(status=Enrollment.STOPPED, stop_reason=reason[:120],
                              next_send_at=None, finished_at=now)  # fmt: skip


def due_enrollments_stop(*, sequence: Sequence, due: QuerySet, now: datetime | None = None) -> int:
    """Stop those of the `due` enrolments a condition holds for, or the gate refuses, each
    with its reason. Returns how many stopped."""
    now = now or timezone.now()
    stopped = 0
    for reason, condition in conditions(sequence):
        ids = due.filter(condition).values("pk")
        stopped += _stop(SequenceEnrollment.objects.filter(pk__in=ids), reason, now)
    refused = dict(
        with_email_refusal(due, EmailKind.MARKETING, prefix="customer__")
        .filter(email_refusal__isnull=False)
        .values_list("pk", "email_refusal")
    )
    by_reason: dict[str, list[int]] = {}
    for pk, refusal in refused.items():
        by_reason.setdefault(refusal, []).append(pk)
    for refusal, ids in by_reason.items():
        reason = f"Not emailed: {Refusal(refusal).label}"
        stopped += _stop(SequenceEnrollment.objects.filter(pk__in=ids), reason, now)
    return stopped
