"""leads.services.nurture: the weekly sequence of cold leads, stopped when they warm up or
unsubscribe."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from customers.models import Customer
from leads.models import NurtureEnrollment, WorkflowRun
from leads.services.nurture import NURTURE_STEPS, nurture_send_due
from leads.services.rescore import leads_rescore
from tests.factories import CustomerFactory
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
