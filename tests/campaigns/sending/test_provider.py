"""campaigns.sending.provider: any class with the Provider methods can send a campaign; the
machinery hands it provider-neutral batches."""

import pytest

from campaigns.models import EmailMessage
from campaigns.sending import provider
from campaigns.sending.provider import Accepted, OutgoingBatch, OutgoingEmail

pytestmark = pytest.mark.django_db


class Recording:
    """A provider that accepts everything and remembers it."""

    batches: list[OutgoingBatch] = []

    def send_batch(self, batch: OutgoingBatch) -> Accepted:
        Recording.batches.append(batch)
        return Accepted(message_id=f"rec-{len(Recording.batches)}")

    def send_email(self, email: OutgoingEmail) -> Accepted:
        return Accepted(message_id="rec-single")

    def was_accepted(self, in_flight) -> bool:
        return any(batch.key == in_flight.key for batch in Recording.batches)

    def timeout_seconds(self) -> float:
        return 1

    @staticmethod
    def is_configured() -> bool:
        return True


def test_a_new_provider_is_one_class_listed_in_providers(
    send_now, campaign, audience, settings, monkeypatch
):
    settings.SENDGRID_API_KEY = ""
    settings.CAMPAIGN_BATCH_SIZE = 3
    Recording.batches = []
    monkeypatch.setitem(provider.PROVIDERS, "outbox", f"{__name__}.Recording")
    campaign = send_now(campaign)
    assert [len(batch.recipients) for batch in Recording.batches] == [3, 2]
    first = Recording.batches[0]
    assert first.campaign_id == campaign.pk and first.key.startswith("batch-")
    bob = next(r for b in Recording.batches for r in b.recipients if r.email == "bob@b.example")
    assert bob.name == "Bob <b>Baker</b>" and "/u/" in bob.unsubscribe_url
    assert "B &amp; Co" in bob.substitutions.values()  # the HTML value, escaped
    assert campaign.status == "sent" and campaign.sent_count == 5
    assert set(EmailMessage.objects.values_list("provider_message_id", flat=True)) == {
        "rec-1",
        "rec-2",
    }


def test_the_provider_is_sendgrid_with_a_key_and_the_outbox_without(settings):
    settings.SENDGRID_API_KEY = "SG.x"
    assert type(provider.current_provider()).__name__ == "SendGrid"
    settings.SENDGRID_API_KEY = ""
    assert type(provider.current_provider()).__name__ == "Outbox"
