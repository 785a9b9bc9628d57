"""campaigns.sending.recipients: who a run goes to."""

import pytest
from django.utils import timezone

from campaigns.models import EmailMessage
from customers.models import Suppression
from tests.factories import CustomerFactory, unreachable_customers

pytestmark = pytest.mark.django_db


def test_suppressed_unsubscribed_and_invalid_addresses_are_dropped(
    send_now, campaign, audience, fake_sendgrid
):
    ann, bob, cy, di, _ed = audience["mine"]
    Suppression.objects.create(email="ann@a.example", reason="bounce")
    bob.unsubscribed_at = timezone.now()
    bob.save()
    type(cy).objects.filter(pk=cy.pk).update(email="not-an-address")
    type(di).objects.filter(pk=di.pk).update(email="DI@D.example")
    Suppression.objects.create(email="di@d.example", reason="spam")  # case-insensitive
    send_now(campaign)
    assert fake_sendgrid.recipients() == ["ed@e.example"]


def test_the_email_gate_skips_every_unreachable_address_and_the_run_counts_each_reason(
    send_now, campaign, audience, fake_sendgrid, rep
):
    unreachable = unreachable_customers(owner=rep)
    CustomerFactory(owner=rep, email="unknown@x.example", email_consent="unknown")
    campaign = send_now(campaign)
    sent_to = set(fake_sendgrid.recipients())
    assert sent_to == {
        "ann@a.example",
        "bob@b.example",
        "cy@c.example",
        "di@d.example",
        "ed@e.example",
    }
    assert not EmailMessage.objects.filter(email__endswith="@never.example").exists()
    run = campaign.runs.get()
    assert run.skipped == {
        **{refusal: 1 for _customer, refusal in unreachable.values()},
        "no_consent": 1,
    }
    assert run.total == 5


def test_without_the_consent_setting_unknown_consent_gets_marketing_but_withdrawn_never(
    send_now, campaign, audience, fake_sendgrid, rep, settings
):
    settings.MARKETING_REQUIRES_CONSENT = False
    CustomerFactory(owner=rep, email="unknown@x.example", email_consent="unknown")
    unreachable_customers(owner=rep)
    send_now(campaign)
    assert "unknown@x.example" in fake_sendgrid.recipients()
    assert not any(r.endswith("@never.example") for r in fake_sendgrid.recipients())
    assert campaign.runs.get().skipped.get("no_consent") is None
