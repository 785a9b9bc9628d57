"""Mailgun's webhooks at POST /webhooks/mailgun/: the HMAC signature with the webhook
signing key, stale and replayed deliveries, every event type mapped into the same storage,
statuses, counters, lead activities and suppressions as SendGrid's."""

import json
import time

import pytest
from django.core.cache import cache
from django.urls import reverse

from campaigns import sending
from campaigns.models import EmailCampaign, EmailEvent, EmailMessage
from customers.models import Customer, Suppression
from leads.models import LeadActivity
from tests.campaigns.test_webhooks import T0, _at
from tests.conftest import MAILGUN_TEST_SIGNING_KEY
from tests.factories import CustomerSegmentFactory, EmailCampaignFactory, EmailTemplateFactory
from tests.fakes.mailgun_server import signed_webhook

pytestmark = pytest.mark.django_db

_ids = iter(range(10**9))


@pytest.fixture(autouse=True)
def signing_key(settings):
    settings.MAILGUN_WEBHOOK_SIGNING_KEY = MAILGUN_TEST_SIGNING_KEY
    settings.MAILGUN_WEBHOOK_MAX_AGE_SECONDS = 300
    cache.clear()  # the replay memory


def _event(message, kind, *, at=0, **extra):
    """Mailgun's event-data for `message` (an EmailMessage, or an address)."""
    own = isinstance(message, EmailMessage)
    return {
        "id": f"mg-{next(_ids)}",
        "event": kind,
        "timestamp": T0 + at + 0.25,
        "recipient": message.email if own else message,
        "user-variables": (
            {"email_message_id": str(message.pk), "batch_key": "batch-1"} if own else {}
        ),
        "tags": ["campaign-1"],
        **extra,
    }


def _post(client, body, **headers):
    if not isinstance(body, bytes):
        body = json.dumps(body).encode()
    return client.post(
        reverse("mailgun_webhook"), data=body, content_type="application/json", headers=headers
    )


@pytest.fixture
def deliver(client, django_capture_on_commit_callbacks):
    """Post one signed event and run what it queues after commit (processing)."""

    def post(event, **signing):
        with django_capture_on_commit_callbacks(execute=True):
            response = _post(client, signed_webhook(MAILGUN_TEST_SIGNING_KEY, event, **signing))
        assert response.status_code == 200, response.content
        return response.json()

    return post


FAILED_PERMANENT = {"severity": "permanent", "reason": "bounce",
                    "delivery-status": {"code": 550, "message": "5.1.1 No such user"}}  # fmt: skip


@pytest.mark.parametrize(
    "kind, extra, field, status, suppression, unsubscribed",
    [
        ("accepted", {}, None, "sent", None, False),
        ("delivered", {}, "delivered_at", "delivered", None, False),
        ("opened", {}, "opened_at", "opened", None, False),
        ("clicked", {"url": "https://example.com/x"}, "clicked_at", "clicked", None, False),
        ("failed", FAILED_PERMANENT, "bounced_at", "bounced", "bounce", False),
        ("failed", {"severity": "temporary", "reason": "generic"}, None, "sent", None, False),
        ("failed", {"severity": "permanent", "reason": "suppress-bounce"}, "dropped_at",
         "dropped", "bounce", False),
        ("failed", {"severity": "permanent", "reason": "old"}, "dropped_at", "dropped",
         "dropped", False),
        ("unsubscribed", {}, "unsubscribed_at", "unsubscribed", "unsubscribe", True),
        ("complained", {}, "unsubscribed_at", "unsubscribed", "spam", True),
        ("stored", {}, None, "sent", None, False),
    ],
)  # fmt: skip
def test_each_event_type(sent, deliver, kind, extra, field, status, suppression, unsubscribed):
    bob = sent["bob"]
    assert deliver(_event(bob, kind, at=9, **extra)) == {"received": 1, "new": 1}
    message = EmailMessage.objects.get(pk=bob.pk)
    assert message.status == status
    if field:
        assert getattr(message, field) == _at(9.25)
    row = Suppression.objects.filter(email=bob.email).first()
    assert (row.reason if row else None) == suppression
    if row:
        assert row.source == "mailgun"
    assert (Customer.objects.get(pk=bob.customer_id).unsubscribed_at is not None) is unsubscribed
    event = EmailEvent.objects.get()
    assert (event.provider, event.message_id, event.processed_at is not None) == (
        "mailgun",
        bob.pk,
        True,
    )
    assert event.payload["event"] == kind  # stored as received


def test_a_bounce_keeps_mailguns_message_as_the_detail(sent, deliver):
    deliver(_event(sent["bob"], "failed", **FAILED_PERMANENT))
    assert Suppression.objects.get().detail == "5.1.1 No such user"


def test_opens_and_clicks_become_lead_activities_and_counters_move(sent, deliver, campaign):
    ann = sent["ann"]
    deliver(_event(ann, "delivered", at=1))
    deliver(_event(ann, "opened", at=60))
    deliver(_event(ann, "clicked", at=90, url="https://example.com/offer"))
    activities = list(
        LeadActivity.objects.filter(customer_id=ann.customer_id)
        .order_by("timestamp")
        .values_list("activity_type", "details")
    )
    assert activities == [
        ("email_open", {"email_message_id": ann.pk}),
        ("email_click", {"email_message_id": ann.pk, "url": "https://example.com/offer"}),
    ]
    campaign.refresh_from_db()
    assert (campaign.delivered_count, campaign.opened_count, campaign.clicked_count) == (1, 1, 1)


def test_the_same_event_delivered_twice_is_stored_once(sent, deliver):
    event = _event(sent["ann"], "opened")
    assert deliver(event)["new"] == 1
    assert deliver(event)["new"] == 0  # Mailgun retried with a fresh signature and token
    assert EmailEvent.objects.count() == 1
    assert LeadActivity.objects.count() == 1


def test_a_mailgun_bounce_keeps_a_sendgrid_campaign_away_from_the_address(
    sent,
    deliver,
    manager,
    audience,
    fake_sendgrid,
    django_capture_on_commit_callbacks,
):
    bob = sent["bob"]
    deliver(_event(bob, "failed", **FAILED_PERMANENT))
    second = EmailCampaignFactory(
        created_by=manager,
        template=EmailTemplateFactory(created_by=manager),
        segment=CustomerSegmentFactory(created_by=manager, criteria={}),
        status=EmailCampaign.Status.SENDING,
    )
    run = sending.run_start(campaign_id=second.pk, run_key="once")
    assert sending.run_send(run_id=run.pk) == "sent"
    run.refresh_from_db()
    assert run.provider == "sendgrid"
    assert sorted(fake_sendgrid.recipients()) == ["ann@a.example", "cy@c.example",
                                                  "di@d.example", "ed@e.example"]  # fmt: skip
    assert run.__class__.objects.get(pk=run.pk).skipped == {"bounced": 1}


# Signature -------------------------------------------------------------------------------


def test_a_forged_signature_is_refused(client, sent):
    body = signed_webhook("another-key", _event(sent["ann"], "opened"))
    response = _post(client, body)
    assert response.status_code == 403
    assert not EmailEvent.objects.exists()


def test_the_api_key_is_not_the_signing_key(client, sent, fake_mailgun):
    body = signed_webhook(fake_mailgun.api_key, _event(sent["ann"], "opened"))
    assert _post(client, body).status_code == 403


def test_a_signature_moved_to_another_token_is_refused(client, sent):
    body = signed_webhook(MAILGUN_TEST_SIGNING_KEY, _event(sent["ann"], "opened"))
    body["signature"]["token"] = body["signature"]["token"][::-1]
    assert _post(client, body).status_code == 403


@pytest.mark.parametrize("offset", [-301, 301, -(10**9)])
def test_a_stale_or_future_timestamp_is_refused(client, sent, offset):
    body = signed_webhook(
        MAILGUN_TEST_SIGNING_KEY, _event(sent["ann"], "opened"), timestamp=int(time.time()) + offset
    )
    response = _post(client, body)
    assert response.status_code == 403 and "timestamp" in response.json()["error"].lower()


def test_a_timestamp_within_five_minutes_is_accepted(deliver, sent):
    deliver(_event(sent["ann"], "opened"), timestamp=int(time.time()) - 290)
    assert EmailEvent.objects.count() == 1


def test_a_replayed_token_is_refused(client, sent, django_capture_on_commit_callbacks):
    body = signed_webhook(MAILGUN_TEST_SIGNING_KEY, _event(sent["ann"], "opened"))
    with django_capture_on_commit_callbacks(execute=True):
        assert _post(client, body).status_code == 200
    again = _post(client, body)
    assert again.status_code == 403 and "seen before" in again.json()["error"]
    # The same token with another event, signed again with the real key: still a replay.
    other = signed_webhook(
        MAILGUN_TEST_SIGNING_KEY,
        _event(sent["bob"], "opened"),
        timestamp=int(body["signature"]["timestamp"]),
        token=body["signature"]["token"],
    )
    assert _post(client, other).status_code == 403
    assert EmailEvent.objects.count() == 1


def test_without_a_configured_signing_key_everything_is_refused(client, sent, settings):
    settings.MAILGUN_WEBHOOK_SIGNING_KEY = ""
    body = signed_webhook("", _event(sent["ann"], "opened"))
    assert _post(client, body).status_code == 403


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"[]",
        b'{"signature": {}}',
        b'{"event-data": {}}',
        b'{"signature": "x", "event-data": {}}',
        b'{"signature": {"timestamp": 1, "token": "t", "signature": "s"}, "event-data": {}}',
        b'{"signature": {"timestamp": "99999999999999999999999", "token": "t", '
        b'"signature": "s"}, "event-data": {}}',
        b'{"signature": {"timestamp": [], "token": {}, "signature": 3}, "event-data": []}',
        "\ud800".encode("utf-8", "surrogatepass"),
        b"[" * 100000,
    ],
)
def test_garbage_is_a_4xx_never_a_500(client, body):
    response = _post(client, body)
    assert 400 <= response.status_code < 500


@pytest.mark.parametrize(
    "event",
    [
        {},
        {"id": "x", "event": "opened"},
        {"id": "x", "event": "opened", "timestamp": "now"},
        {"id": "x", "event": "opened", "timestamp": float("inf")},
        {"id": "x", "event": "opened", "timestamp": 1e300},
        {"id": "x", "event": 5, "timestamp": 1},
        {"id": "x" * 200, "event": "opened", "timestamp": 1},
        {"id": "x", "event": "opened", "timestamp": 1, "recipient": "a\x00b"},
    ],
)
def test_a_signed_but_malformed_event_is_a_400_and_nothing_is_stored(client, event):
    body = json.dumps(signed_webhook(MAILGUN_TEST_SIGNING_KEY, event), allow_nan=True).encode()
    response = _post(client, body)
    assert response.status_code == 400
    assert not EmailEvent.objects.exists()


def test_a_refused_delivery_does_not_burn_its_token(
    client, sent, django_capture_on_commit_callbacks
):
    bad = signed_webhook(MAILGUN_TEST_SIGNING_KEY, {"id": "x", "event": "opened"})
    assert _post(client, bad).status_code == 400
    good = signed_webhook(
        MAILGUN_TEST_SIGNING_KEY,
        _event(sent["ann"], "opened"),
        timestamp=int(bad["signature"]["timestamp"]),
        token=bad["signature"]["token"],
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert _post(client, good).status_code == 200


def test_get_is_not_allowed_and_no_login_is_needed(client):
    assert client.get(reverse("mailgun_webhook")).status_code == 405
    assert _post(client, b"{}").status_code == 400  # answered, not redirected to a login
