"""Email consent on Customer: set through the services with its source and time, audited,
withdrawn by unsubscribing, filtered on the list, and set from unsubscribes by migration."""

import importlib

import pytest
from django.apps import apps
from django.urls import reverse
from django.utils import timezone

from crm.models import AuditEvent
from customers import services
from customers.models import ConsentSource, Customer, EmailConsent
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def test_a_new_customer_records_where_its_consent_came_from(rep, teams):
    customer = services.customer_create(
        actor=rep,
        data={"name": "Ada", "email": "ada@x.example", "email_consent": EmailConsent.GRANTED},
    )
    assert customer.email_consent == EmailConsent.GRANTED
    assert customer.email_consent_source == ConsentSource.FORM
    assert customer.email_consent_at is not None
    event = AuditEvent.objects.get(object_id=str(customer.pk), verb="create")
    assert event.changes["email_consent"] == "granted"
    assert event.changes["email_consent_source"] == "form"


def test_a_new_customer_without_consent_is_unknown_with_no_source(rep, teams):
    customer = services.customer_create(actor=rep, data={"name": "Bo", "email": "bo@x.example"})
    assert (customer.email_consent, customer.email_consent_source) == ("unknown", "")
    assert customer.email_consent_at is None


def test_changing_consent_is_audited_with_its_source(rep, teams):
    customer = CustomerFactory(owner=rep, email_consent=EmailConsent.UNKNOWN)
    services.customer_update(
        actor=rep,
        customer=customer,
        data={"email_consent": EmailConsent.WITHDRAWN},
        consent_source=ConsentSource.API,
    )
    customer.refresh_from_db()
    assert customer.email_consent == "withdrawn"
    assert customer.email_consent_source == "api"
    assert customer.email_consent_at is not None
    event = AuditEvent.objects.get(object_id=str(customer.pk), verb="update")
    assert event.changes["email_consent"] == ["unknown", "withdrawn"]
    assert event.changes["email_consent_source"] == ["", "api"]


def test_an_unchanged_consent_keeps_its_source_and_time(rep, teams):
    customer = CustomerFactory(
        owner=rep, email_consent="granted", email_consent_source="import", email_consent_at=None
    )
    services.customer_update(
        actor=rep, customer=customer, data={"email_consent": "granted", "phone": "123"}
    )
    customer.refresh_from_db()
    assert (customer.email_consent_source, customer.email_consent_at) == ("import", None)


def test_the_form_cannot_set_the_consent_source_itself(rep, teams):
    customer = CustomerFactory(owner=rep, email_consent="unknown")
    services.customer_update(
        actor=rep, customer=customer, data={"email_consent_source": "webhook", "phone": "1"}
    )
    customer.refresh_from_db()
    assert customer.email_consent_source == ""


def test_unsubscribing_withdraws_consent_with_its_source(rep, teams):
    earlier = timezone.now() - timezone.timedelta(days=3)
    ann = CustomerFactory(email="ann@a.example", email_consent="granted")
    bob = CustomerFactory(email="bob@b.example", unsubscribed_at=earlier, email_consent="unknown")
    changed = services.customers_mark_unsubscribed(
        emails=["ANN@a.example", "bob@b.example"], source=ConsentSource.WEBHOOK
    )
    assert changed == 2
    ann.refresh_from_db()
    bob.refresh_from_db()
    assert (ann.email_consent, ann.email_consent_source) == ("withdrawn", "webhook")
    assert ann.unsubscribed_at is not None
    assert bob.email_consent == "withdrawn"
    assert bob.unsubscribed_at == earlier  # the first unsubscribe keeps its date


def test_the_customer_form_edits_consent_and_the_page_shows_it(rep_client, rep):
    customer = CustomerFactory(owner=rep, email_consent="unknown")
    response = rep_client.post(
        reverse("customers:edit", args=[customer.pk]),
        {
            "name": customer.name,
            "email": customer.email,
            "owner": rep.pk,
            "source": "web",
            "lifecycle_stage": "lead",
            "engagement_level": "MEDIUM",
            "email_consent": "granted",
        },
    )
    assert response.status_code == 302
    customer.refresh_from_db()
    assert (customer.email_consent, customer.email_consent_source) == ("granted", "form")
    page = rep_client.get(reverse("customers:detail", args=[customer.pk])).content.decode()
    assert 'data-email-consent="granted"' in page
    assert "Customer form" in page or "customer form" in page


def test_the_customer_list_filters_by_consent(rep_client, rep):
    CustomerFactory(owner=rep, name="Granted Gail", email_consent="granted")
    CustomerFactory(owner=rep, name="Withdrawn Will", email_consent="withdrawn")
    page = rep_client.get(reverse("customers:list"), {"email_consent": "withdrawn"})
    body = page.content.decode()
    assert "Withdrawn Will" in body
    assert "Granted Gail" not in body


def test_the_migration_withdraws_consent_of_whoever_unsubscribed():
    migration = importlib.import_module("customers.migrations.0006_email_consent")
    at = timezone.now() - timezone.timedelta(days=10)
    gone = CustomerFactory(unsubscribed_at=at, email_consent="unknown")
    stays = CustomerFactory(email_consent="unknown")
    migration.consent_from_unsubscribes(apps, None)
    gone.refresh_from_db()
    stays.refresh_from_db()
    assert (gone.email_consent, gone.email_consent_source, gone.email_consent_at) == (
        "withdrawn",
        "unsubscribe",
        at,
    )
    assert (stays.email_consent, stays.email_consent_source) == ("unknown", "")
    assert Customer._meta.get_field("email_consent").default == "unknown"
