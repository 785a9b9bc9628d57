"""campaigns.sending.recipients: who a run goes to."""

import pytest
from django.utils import timezone

from customers.models import Suppression

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
