"""campaigns.sending.outbox: without a provider key, the local outbox gets the emails."""

import pytest

from campaigns.models import (
    OutboxMessage,
)

pytestmark = pytest.mark.django_db


def test_without_an_api_key_the_outbox_gets_the_rendered_emails(
    send_now, campaign, audience, settings
):
    settings.SENDGRID_API_KEY = ""
    send_now(campaign)
    bob = OutboxMessage.objects.get(to_email="bob@b.example")
    assert bob.subject == "News for B & Co"
    assert "<p>B &amp; Co</p>" in bob.html_body
    assert "/u/" in bob.text_body and bob.headers["List-Unsubscribe-Post"]
    assert OutboxMessage.objects.count() == 5
