"""campaigns.sending.mailgun: campaigns and sequence steps sent through Mailgun's batch
sending (recipient-variables), through the official SDK, against the fake Mailgun."""

import pytest

from campaigns.models import EmailMessage, SendBatch
from campaigns.sending import provider

pytestmark = pytest.mark.django_db


def test_a_campaign_goes_out_in_batches_nobody_seeing_anyone_elses_address(
    send_now, campaign, audience, fake_mailgun, settings
):
    settings.SENDGRID_API_KEY = ""
    settings.CAMPAIGN_BATCH_SIZE = 3
    campaign = send_now(campaign)
    assert len(fake_mailgun.accepted) == 2
    deliveries = fake_mailgun.deliveries()
    mine = sorted(c.email for c in audience["mine"])
    assert sorted(address for d in deliveries for address in d.to) == mine
    assert all(len(d.to) == 1 for d in deliveries)  # To: only the recipient
    for delivery in deliveries:
        others = set(mine) - set(delivery.to)
        seen = delivery.subject + delivery.text + delivery.html + str(delivery.headers)
        assert not any(other in seen for other in others)
    bob = next(d for d in deliveries if d.to == ["bob@b.example"])
    message = EmailMessage.objects.get(email="bob@b.example")
    assert bob.variables["email_message_id"] == str(message.pk)
    assert bob.variables["batch_key"].startswith("batch-")
    assert bob.tags == [f"campaign-{campaign.pk}"]
    assert bob.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link = bob.headers["List-Unsubscribe"][1:-1]
    assert "/u/" in link and f'href="{link}"' in bob.html
    assert "B &amp; Co" in bob.html and "Hi Bob," in bob.html
    assert campaign.status == "sent" and campaign.sent_count == 5
    assert message.provider_message_id.endswith("@mg.example.com")
    assert set(SendBatch.objects.values_list("status", flat=True)) == {"sent"}
    assert provider.provider_name() == "mailgun"
