from datetime import UTC, datetime

import pytest
import time_machine
from django.core import signing
from django.test import Client
from django.urls import reverse

from campaigns import sending
from campaigns.models import EmailCampaign, EmailMessage
from campaigns.tokens import (
    unsubscribe_token,
    unsubscribe_token_read,
    unsubscribe_url,
    unsubscribe_url_maker,
)
from customers.models import Suppression

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent(campaign, fake_sendgrid):
    campaign.status = EmailCampaign.Status.SENDING
    campaign.save()
    run = sending.run_start(campaign_id=campaign.pk, run_key="once")
    sending.run_send(run_id=run.pk)
    return campaign


def _link_of(fake_sendgrid, email):
    payload = fake_sendgrid.accepted[0].payload
    (personalization,) = [p for p in payload["personalizations"] if p["to"][0]["email"] == email]
    return personalization["headers"]["List-Unsubscribe"].strip("<>").split("8000", 1)[1]


def test_get_only_asks_and_a_csrf_less_one_click_post_unsubscribes(sent, fake_sendgrid, audience):
    ann = audience["mine"][0]
    path = _link_of(fake_sendgrid, "ann@a.example")
    browser = Client(enforce_csrf_checks=True)
    page = browser.get(path)
    assert page.status_code == 200 and "Stop marketing emails to" in page.content.decode()
    ann.refresh_from_db()
    assert ann.unsubscribed_at is None  # link scanners prefetching GETs unsubscribe nobody
    response = browser.post(path, {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200 and "is unsubscribed" in response.content.decode()
    ann.refresh_from_db()
    assert ann.unsubscribed_at is not None
    assert (ann.email_consent, ann.email_consent_source) == ("withdrawn", "unsubscribe")
    assert Suppression.objects.filter(email="ann@a.example", reason="unsubscribe").exists()
    message = EmailMessage.objects.get(email="ann@a.example")
    assert message.status == "unsubscribed"
    sent.refresh_from_db()
    assert sent.unsubscribed_count == 1


def test_unsubscribed_customers_get_no_further_campaign(
    sent, fake_sendgrid, audience, manager, django_capture_on_commit_callbacks
):
    from campaigns.services import campaign_send_now
    from tests.factories import EmailCampaignFactory

    Client().post(_link_of(fake_sendgrid, "ann@a.example"))
    fake_sendgrid.reset()
    second = EmailCampaignFactory(created_by=manager, segment=sent.segment, template=sent.template)
    with django_capture_on_commit_callbacks(execute=True):
        campaign_send_now(actor=manager, campaign=second)
    assert "ann@a.example" not in fake_sendgrid.recipients()
    assert len(fake_sendgrid.recipients()) == 4


def test_a_tampered_token_is_refused(client, audience):
    token = unsubscribe_token(audience["mine"][0].pk)
    response = client.post(reverse("unsubscribe", args=[token[:-2] + "xx"]))
    assert response.status_code == 400 and "not valid" in response.content.decode()
    assert not Suppression.objects.exists()


def test_a_token_for_a_deleted_customer_says_so(client, audience):
    ann = audience["mine"][0]
    token = unsubscribe_token(ann.pk)
    ann.delete()
    response = client.post(reverse("unsubscribe", args=[token]))
    assert response.status_code == 400 and "no longer" in response.content.decode()


@pytest.mark.parametrize("message_id", [None, 7, 123_456_789])
def test_a_batchs_links_carry_the_very_tokens_unsubscribe_token_signs(message_id, settings):
    """The links of a campaign's batch are made once per batch's key and timestamp; each is
    the token the signer makes for the same second, so every link sent before still reads,
    and a link sent now reads with the signer's own check (and its age limit)."""
    with time_machine.travel(datetime(2026, 12, 6, 5, 0, tzinfo=UTC), tick=False):
        link = unsubscribe_url_maker()(42, message_id)
        assert link == unsubscribe_url(42, message_id)
        token = link.rstrip("/").rsplit("/", 1)[1]
        assert token == unsubscribe_token(42, message_id)
        assert unsubscribe_token_read(token) == (42, message_id)
    settings.SECRET_KEY = "another-key"
    with pytest.raises(signing.BadSignature):
        unsubscribe_token_read(token)
