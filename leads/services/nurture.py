"""The nurture sequence of cold leads: an email a week, NURTURE_STEPS of them, stopped when
the lead warms up or the email gate refuses it (DESIGN.md "Leads"). Nurture is marketing
email: customers.email_gate decides who is enrolled and who is sent each step."""

from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from crm.services import send_email
from customers.email_gate import EmailKind, Refusal, with_email_refusal
from customers.models import Customer
from leads.models import NurtureEnrollment

NURTURE_STEPS = 4
NURTURE_INTERVAL = timedelta(days=7)
NURTURE_SUBJECTS = [
    "Getting started: three things teams like yours automate first",
    "How {company} could save a day a week",
    "A customer story from your industry",
    "Still curious? Book 15 minutes with us",
]


def nurture_enrol(*, customer_ids: list[int], now: datetime) -> None:
    """Enrol these leads (those the email gate lets through) with their first email due now."""
    allowed = with_email_refusal(
        Customer.objects.filter(pk__in=customer_ids), EmailKind.MARKETING
    ).filter(email_refusal__isnull=True)
    NurtureEnrollment.objects.bulk_create(
        [
            NurtureEnrollment(customer_id=pk, next_send_at=now, enrolled_at=now)
            for pk in allowed.values_list("pk", flat=True)
        ],
        ignore_conflicts=True,  # already enrolled (one active enrollment per customer)
    )


def nurture_stop(*, customer_ids: list[int], reason: str) -> None:
    """Stop the active nurture sequences of these leads."""
    NurtureEnrollment.objects.filter(
        customer_id__in=customer_ids, status=NurtureEnrollment.Status.ACTIVE
    ).update(status=NurtureEnrollment.Status.STOPPED, stop_reason=reason)


def nurture_send_due(*, now: datetime | None = None, limit: int = 500) -> int:
    """Send the nurture emails that are due; each enrollment moves a step a week apart."""
    now = now or timezone.now()
    sent = 0
    with transaction.atomic():
        due = list(
            with_email_refusal(
                NurtureEnrollment.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("customer")
                .filter(status=NurtureEnrollment.Status.ACTIVE, next_send_at__lte=now),
                EmailKind.MARKETING,
                prefix="customer__",
            ).order_by("next_send_at")[:limit]
        )
        for enrollment in due:
            customer = enrollment.customer
            if enrollment.email_refusal:
                # Refused now (unsubscribed, withdrawn, suppressed since...): stop, saying why.
                enrollment.status = NurtureEnrollment.Status.STOPPED
                enrollment.stop_reason = Refusal(enrollment.email_refusal).label.capitalize()
            else:
                subject = NURTURE_SUBJECTS[enrollment.step].format(
                    company=customer.company or "your team"
                )
                email, name = customer.email, customer.name
                transaction.on_commit(
                    lambda email=email, subject=subject, name=name: send_email(
                        to=email, subject=subject, text=f"Hi {name},\n\n{subject}."
                    )
                )
                sent += 1
                enrollment.step += 1
                if enrollment.step >= NURTURE_STEPS:
                    enrollment.status = NurtureEnrollment.Status.COMPLETED
                    enrollment.next_send_at = None
                else:
                    enrollment.next_send_at = now + NURTURE_INTERVAL
        NurtureEnrollment.objects.bulk_update(
            due, ["status", "stop_reason", "step", "next_send_at"]
        )
    return sent
