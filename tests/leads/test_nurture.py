"""leads.services.nurture: the weekly sequence of cold leads, stopped when they warm up or
unsubscribe."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from customers.models import Customer, Suppression
from leads.models import LeadScore, NurtureEnrollment, WorkflowRun
from leads.services.nurture import NURTURE_STEPS, nurture_send_due
from leads.services.rescore import leads_rescore
from tests.factories import CustomerFactory, unreachable_customers
from tests.leads.helpers import WARM, on_commit_now


def _lead(owner, **fields):
    return CustomerFactory(owner=owner, lifecycle_stage="lead", **fields)


@pytest.mark.django_db
def test_cold_lead_is_nurtured_weekly_until_the_sequence_ends(team):
    lead = _lead(team["owner"])
    leads_rescore(customer_ids=[lead.pk])
    enrollment = NurtureEnrollment.objects.get(customer=lead)
    assert enrollment.status == "active"
    now = timezone.now()
    with on_commit_now():
        for week in range(NURTURE_STEPS):
            assert nurture_send_due(now=now + timedelta(days=7 * week, minutes=1)) == 1
            assert nurture_send_due(now=now + timedelta(days=7 * week, hours=1)) == 0
    enrollment.refresh_from_db()
    assert (enrollment.status, enrollment.step) == ("completed", NURTURE_STEPS)
    assert len(mail.outbox) == NURTURE_STEPS
    assert not WorkflowRun.objects.exists()  # cold needs no rep work


@pytest.mark.django_db
def test_nurture_stops_when_the_lead_warms_up_or_unsubscribes(team):
    warming, leaving = _lead(team["owner"]), _lead(team["owner"])
    leads_rescore(customer_ids=[warming.pk, leaving.pk])
    Customer.objects.filter(pk=warming.pk).update(**WARM)
    leads_rescore(customer_ids=[warming.pk])
    assert NurtureEnrollment.objects.get(customer=warming).status == "stopped"
    Customer.objects.filter(pk=leaving.pk).update(unsubscribed_at=timezone.now())
    with on_commit_now():
        assert nurture_send_due(now=timezone.now() + timedelta(minutes=1)) == 0
    assert NurtureEnrollment.objects.get(customer=leaving).stop_reason == "Unsubscribed"
    assert mail.outbox == []


@pytest.mark.django_db
def test_the_email_gate_keeps_unreachable_leads_out_of_nurture(team):
    unreachable = unreachable_customers(owner=team["owner"], lifecycle_stage="lead")
    ids = [customer.pk for customer, _refusal in unreachable.values()]
    with on_commit_now():
        leads_rescore(customer_ids=ids)
        assert nurture_send_due(now=timezone.now() + timedelta(minutes=1)) == 0
    assert not NurtureEnrollment.objects.exists()
    assert mail.outbox == []


@pytest.mark.django_db
def test_a_lead_that_becomes_unreachable_is_stopped_with_the_gates_reason(team):
    unreachable = unreachable_customers(owner=team["owner"], lifecycle_stage="lead")
    # Enrolled while still reachable, then each became unreachable in its own way.
    Customer.objects.filter(pk__in=[c.pk for c, _r in unreachable.values()]).update(
        email_consent="granted", unsubscribed_at=None
    )
    suppressions = list(Suppression.objects.values_list("email", "reason"))
    Suppression.objects.all().delete()
    leads_rescore(customer_ids=[c.pk for c, _r in unreachable.values()])
    assert NurtureEnrollment.objects.filter(status="active").count() == 5
    Customer.objects.filter(email="withdrawn@never.example").update(email_consent="withdrawn")
    Customer.objects.filter(email="unsubscribed@never.example").update(
        unsubscribed_at=timezone.now()
    )
    Suppression.objects.bulk_create([Suppression(email=e, reason=r) for e, r in suppressions])
    with on_commit_now():
        assert nurture_send_due(now=timezone.now() + timedelta(minutes=1)) == 0
    assert mail.outbox == []
    stopped = dict(NurtureEnrollment.objects.values_list("customer__email", "stop_reason"))
    assert stopped == {
        "withdrawn@never.example": "Consent withdrawn",
        "unsubscribed@never.example": "Unsubscribed",
        "bounced@never.example": "Bounced",
        "dropped@never.example": "Dropped by the provider",
        "spam@never.example": "Spam report",
    }


@pytest.mark.django_db
def test_nurture_needs_granted_consent_only_when_the_setting_says_so(team, settings):
    unknown = _lead(team["owner"], email_consent="unknown")
    settings.MARKETING_REQUIRES_CONSENT = True
    leads_rescore(customer_ids=[unknown.pk])
    assert not NurtureEnrollment.objects.exists()
    settings.MARKETING_REQUIRES_CONSENT = False
    LeadScore.objects.all().delete()
    leads_rescore(customer_ids=[unknown.pk])
    assert NurtureEnrollment.objects.filter(customer=unknown, status="active").exists()
