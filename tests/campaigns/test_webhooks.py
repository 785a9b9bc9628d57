import base64
import json
import random
import time
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from campaigns import webhooks
from campaigns.models import EmailCampaign, EmailEvent, EmailMessage
from campaigns.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER
from customers.models import Customer, Suppression
from leads.models import LeadActivity

pytestmark = pytest.mark.django_db

T0 = 1_780_000_000  # the events' own times (seconds since the epoch)


def _public_key_setting(private_key) -> str:
    """What SendGrid shows as the verification key: base64 DER SubjectPublicKeyInfo."""
    der = private_key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


@pytest.fixture
def key(settings):
    private_key = ec.generate_private_key(ec.SECP256R1())
    settings.SENDGRID_WEBHOOK_PUBLIC_KEY = _public_key_setting(private_key)
    settings.SENDGRID_WEBHOOK_MAX_AGE_SECONDS = 300
    return private_key


def _sign(private_key, timestamp: str, body: bytes) -> str:
    signature = private_key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return base64.b64encode(signature).decode()


def _post(client, body, private_key=None, *, timestamp=None, headers=None):
    """POST the raw body, signed with `private_key` unless `headers` are given."""
    if not isinstance(body, bytes):
        body = json.dumps(body).encode()
    timestamp = str(int(time.time())) if timestamp is None else timestamp
    if headers is None:
        headers = {TIMESTAMP_HEADER: timestamp}
        if private_key is not None:
            headers[SIGNATURE_HEADER] = _sign(private_key, timestamp, body)
    return client.post(
        reverse("sendgrid_webhook"), data=body, content_type="application/json", headers=headers
    )


@pytest.fixture
def deliver(client, key, django_capture_on_commit_callbacks):
    """Post a signed batch and run what it queues after commit (processing, rescoring)."""

    def post(events):
        with django_capture_on_commit_callbacks(execute=True):
            response = _post(client, events, key)
        assert response.status_code == 200, response.content
        return response.json()

    return post


_ids = iter(range(10**9))


def _event(message, kind, *, at=0, **extra):
    return {
        "email": message.email if isinstance(message, EmailMessage) else message,
        "timestamp": T0 + at,
        "event": kind,
        "sg_event_id": f"ev-{next(_ids)}",
        "sg_message_id": "provider-id.filter0001",
        **({"email_message_id": str(message.pk)} if isinstance(message, EmailMessage) else {}),
        **extra,
    }


def _at(seconds):
    return datetime.fromtimestamp(T0 + seconds, tz=UTC)


def _state():
    """Everything a replayed batch must leave alone."""
    campaign = EmailCampaign.objects.get()
    return {
        "events": EmailEvent.objects.count(),
        "activities": LeadActivity.objects.count(),
        "suppressions": Suppression.objects.count(),
        "messages": list(EmailMessage.objects.order_by("pk").values()),
        "counters": [
            campaign.sent_count,
            campaign.delivered_count,
            campaign.opened_count,
            campaign.clicked_count,
            campaign.bounced_count,
            campaign.unsubscribed_count,
            campaign.total_recipients,
        ],
        "unsubscribed": list(Customer.objects.order_by("pk").values_list("pk", "unsubscribed_at")),
    }


def _batch(sent):
    ann, bob, cy, di, ed = (sent[n] for n in ("ann", "bob", "cy", "di", "ed"))
    return [
        _event(ann, "processed", at=0),
        _event(ann, "delivered", at=5),
        _event(ann, "open", at=60, useragent="Mail"),
        _event(ann, "open", at=90),
        _event(ann, "click", at=120, url="https://example.com/offer?a=1"),
        _event(bob, "deferred", at=3, response="try later"),
        _event(bob, "delivered", at=10),
        _event(bob, "bounce", at=11, reason="550 5.1.1 no such user", type="bounce"),
        _event(cy, "delivered", at=7),
        _event(cy, "open", at=30),
        _event(cy, "spamreport", at=40),
        _event(di, "delivered", at=8),
        _event(di, "unsubscribe", at=50),
        _event(ed, "dropped", at=2, reason="Invalid"),
    ]


# Processing --------------------------------------------------------------------------------


def test_a_good_batch_is_stored_and_processed(sent, deliver, campaign):
    events = _batch(sent)
    assert deliver(events) == {"received": 14, "new": 14}
    assert EmailEvent.objects.count() == 14
    assert not EmailEvent.objects.filter(processed_at__isnull=True).exists()

    statuses = dict(EmailMessage.objects.values_list("email", "status"))
    assert statuses == {
        "ann@a.example": "clicked",
        "bob@b.example": "bounced",
        "cy@c.example": "unsubscribed",
        "di@d.example": "unsubscribed",
        "ed@e.example": "dropped",
    }
    ann = EmailMessage.objects.get(pk=sent["ann"].pk)
    assert (ann.delivered_at, ann.opened_at, ann.clicked_at) == (_at(5), _at(60), _at(120))
    assert ann.sent_at <= sent["ann"].sent_at  # the provider's "processed" time, or ours
    bob = EmailMessage.objects.get(pk=sent["bob"].pk)
    assert (bob.delivered_at, bob.bounced_at, bob.opened_at) == (_at(10), _at(11), None)
    assert EmailMessage.objects.get(pk=sent["cy"].pk).unsubscribed_at == _at(40)
    assert EmailMessage.objects.get(pk=sent["di"].pk).unsubscribed_at == _at(50)
    assert EmailMessage.objects.get(pk=sent["ed"].pk).dropped_at == _at(2)

    campaign.refresh_from_db()
    assert (
        campaign.total_recipients,
        campaign.sent_count,
        campaign.delivered_count,
        campaign.opened_count,
        campaign.clicked_count,
        campaign.bounced_count,
        campaign.unsubscribed_count,
        campaign.failed_count,
    ) == (5, 5, 4, 2, 1, 1, 2, 0)


def test_opens_and_clicks_become_lead_activities_of_the_messages_customer(sent, deliver):
    deliver(_batch(sent))
    activities = LeadActivity.objects.order_by("timestamp")
    assert [(a.customer_id, a.activity_type, a.timestamp) for a in activities] == [
        (sent["cy"].customer_id, "email_open", _at(30)),
        (sent["ann"].customer_id, "email_open", _at(60)),
        (sent["ann"].customer_id, "email_open", _at(90)),
        (sent["ann"].customer_id, "email_click", _at(120)),
    ]
    click = activities.last()
    assert click.details == {
        "email_message_id": sent["ann"].pk,
        "url": "https://example.com/offer?a=1",
    }
    assert activities.first().details == {"email_message_id": sent["cy"].pk}


def test_bounces_spam_reports_and_unsubscribes_are_suppressed(sent, deliver, audience):
    deliver(_batch(sent))
    assert dict(Suppression.objects.values_list("email", "reason")) == {
        "bob@b.example": "bounce",
        "cy@c.example": "spam",
        "di@d.example": "unsubscribe",
        "ed@e.example": "invalid",  # dropped, reason "Invalid"
    }
    assert Suppression.objects.get(email="bob@b.example").detail == "550 5.1.1 no such user"
    unsubscribed = set(
        Customer.objects.filter(unsubscribed_at__isnull=False).values_list("email", flat=True)
    )
    assert unsubscribed == {"cy@c.example", "di@d.example"}  # a bounce is not an unsubscribe
    withdrawn = Customer.objects.filter(email_consent="withdrawn", email_consent_source="webhook")
    assert set(withdrawn.values_list("email", flat=True)) == unsubscribed


@pytest.mark.parametrize(
    "reason, suppression, unsubscribed",
    [
        ("Bounced Address", "bounce", False),
        ("Invalid", "invalid", False),
        ("Spam Reporting Address", "spam", True),
        ("Unsubscribed Address", "unsubscribe", True),
        ("invalid", "invalid", False),  # SendGrid's capitalisation is not relied on
        ("Invalid SMTPAPI header", "dropped", False),
        ("", "dropped", False),
    ],
)
def test_a_dropped_event_suppresses_its_address_with_the_reason_it_gives(
    sent, deliver, reason, suppression, unsubscribed
):
    bob = sent["bob"]
    deliver([_event(bob, "dropped", at=9, reason=reason)])
    row = Suppression.objects.get(email=bob.email)
    assert (row.reason, row.detail) == (suppression, reason)
    assert EmailMessage.objects.get(pk=bob.pk).status == "dropped"
    customer = Customer.objects.get(pk=bob.customer_id)
    assert (customer.unsubscribed_at is not None) is unsubscribed


@pytest.mark.parametrize(
    "kind, field, status, suppression, unsubscribed",
    [
        ("processed", None, "sent", None, False),
        ("deferred", None, "sent", None, False),
        ("delivered", "delivered_at", "delivered", None, False),
        ("open", "opened_at", "opened", None, False),
        ("click", "clicked_at", "clicked", None, False),
        ("bounce", "bounced_at", "bounced", "bounce", False),
        ("dropped", "dropped_at", "dropped", "dropped", False),  # no reason given
        ("spamreport", "unsubscribed_at", "unsubscribed", "spam", True),
        ("unsubscribe", "unsubscribed_at", "unsubscribed", "unsubscribe", True),
        ("group_unsubscribe", "unsubscribed_at", "unsubscribed", "unsubscribe", True),
        ("group_resubscribe", None, "sent", None, False),
        ("some_future_event", None, "sent", None, False),
    ],
)
def test_each_event_type(sent, deliver, kind, field, status, suppression, unsubscribed):
    bob = sent["bob"]
    deliver([_event(bob, kind, at=9)])
    message = EmailMessage.objects.get(pk=bob.pk)
    assert message.status == status
    if field:
        assert getattr(message, field) == _at(9)
    assert Suppression.objects.filter(email=bob.email).values_list("reason", flat=True).first() == (
        suppression
    )
    assert (Customer.objects.get(pk=bob.customer_id).unsubscribed_at is not None) is unsubscribed
    assert EmailEvent.objects.get().processed_at is not None


def test_the_furthest_step_wins_whatever_the_order_in_the_batch(sent, deliver):
    ann = sent["ann"]
    events = [
        _event(ann, "delivered", at=1),
        _event(ann, "open", at=2),
        _event(ann, "click", at=3),
        _event(ann, "open", at=4),
        _event(ann, "delivered", at=5),  # a duplicate delivery report, later
    ]
    deliver(list(reversed(events)))
    message = EmailMessage.objects.get(pk=ann.pk)
    assert message.status == "clicked"
    assert (message.delivered_at, message.opened_at, message.clicked_at) == (
        _at(1),
        _at(2),
        _at(3),
    )


def test_order_does_not_matter_across_batches_either(sent, deliver, campaign):
    ann = sent["ann"]
    deliver([_event(ann, "click", at=30)])
    deliver([_event(ann, "open", at=20)])
    deliver([_event(ann, "delivered", at=10)])
    deliver([_event(ann, "open", at=15)])  # an earlier open, reported late
    message = EmailMessage.objects.get(pk=ann.pk)
    assert message.status == "clicked"
    assert (message.delivered_at, message.opened_at, message.clicked_at) == (
        _at(10),
        _at(15),
        _at(30),
    )
    campaign.refresh_from_db()
    assert (campaign.delivered_count, campaign.opened_count, campaign.clicked_count) == (1, 1, 1)


def test_a_shuffled_batch_gives_the_same_result(sent, deliver):
    events = _batch(sent)
    random.Random(7).shuffle(events)
    deliver(events)
    statuses = dict(EmailMessage.objects.values_list("email", "status"))
    assert statuses["ann@a.example"] == "clicked"
    assert statuses["bob@b.example"] == "bounced"
    assert statuses["ed@e.example"] == "dropped"


def test_replaying_a_batch_changes_nothing(sent, deliver):
    events = _batch(sent)
    deliver(events)
    before = _state()
    assert deliver(events) == {"received": 14, "new": 0}
    assert _state() == before


def test_a_replay_finishes_what_a_lost_processing_task_left(sent, deliver):
    events = _batch(sent)
    webhooks.events_store(events)  # stored, but its processing task never ran
    assert deliver(events) == {"received": 14, "new": 0}
    assert not EmailEvent.objects.filter(processed_at__isnull=True).exists()
    assert EmailMessage.objects.get(pk=sent["ann"].pk).status == "clicked"


def test_a_replay_mixed_with_new_events_only_adds_the_new_ones(sent, deliver, campaign):
    events = _batch(sent)
    deliver(events[:5])
    assert deliver(events) == {"received": 14, "new": 9}
    assert EmailEvent.objects.count() == 14
    assert LeadActivity.objects.count() == 4
    campaign.refresh_from_db()
    assert (campaign.opened_count, campaign.clicked_count) == (2, 1)


def test_the_same_event_twice_in_one_batch_is_stored_once(sent, deliver):
    event = _event(sent["ann"], "open", at=1)
    assert deliver([event, dict(event)]) == {"received": 2, "new": 1}
    assert LeadActivity.objects.count() == 1


@pytest.mark.parametrize("message_id", ["987654321", "abc", None, 1.5, True, 2**80, {"x": 1}])
def test_events_for_unknown_messages_are_stored_but_change_no_message(sent, deliver, message_id):
    event = _event("stranger@x.example", "open", at=1, email_message_id=message_id)
    deliver([event, _event("Stranger@X.example", "bounce", at=2, email_message_id=message_id)])
    assert EmailEvent.objects.filter(message__isnull=True).count() == 2
    assert set(EmailMessage.objects.values_list("status", flat=True)) == {"sent"}
    assert LeadActivity.objects.count() == 0
    # An address that bounced is suppressed whichever message the event names.
    assert Suppression.objects.filter(email="stranger@x.example").exists()


def test_an_event_without_an_email_suppresses_nobody(sent, deliver):
    deliver(
        [
            {"event": "bounce", "sg_event_id": "e1", "timestamp": T0},
            {"event": "spamreport", "sg_event_id": "e2", "timestamp": T0, "email": None},
            {"event": "unsubscribe", "sg_event_id": "e3", "timestamp": T0, "email": 42},
        ]
    )
    assert not Suppression.objects.exists()
    assert set(EmailEvent.objects.values_list("email", flat=True)) == {""}


def test_events_of_another_campaign_leave_this_one_alone(sent, deliver, campaign, manager):
    from tests.factories import EmailCampaignFactory

    other = EmailCampaignFactory(created_by=manager)
    other_message = EmailMessage.objects.create(
        campaign=other,
        run=sent["ann"].run,
        customer=None,
        email="someone@x.example",
        status="sent",
        sent_at=_at(0),
    )
    deliver([_event(other_message, "open", at=1)])
    campaign.refresh_from_db()
    other.refresh_from_db()
    assert campaign.opened_count == 0
    assert other.opened_count == 1
    assert LeadActivity.objects.count() == 0  # the message has no customer


def test_processing_is_set_based(sent, key):
    """The queries to process a chunk do not grow with the number of events in it."""
    people = list(sent.values())
    kinds = ["delivered", "open", "click", "bounce", "dropped", "spamreport", "unsubscribe"]

    def store_and_process(count):
        events = []
        for i in range(count):
            message = people[i % len(people)]
            kind = kinds[i % len(kinds)]
            events.append(_event(message, kind, at=i))
            events.append(_event(f"bounce-{count}-{i}@x.example", "bounce", at=i))
        webhooks.events_store(events)
        with CaptureQueriesContext(connection) as queries:
            assert webhooks.events_process() == 2 * count
        return len(queries)

    small, large = store_and_process(20), store_and_process(200)
    assert large == small
    assert large < 40


def test_processing_works_through_chunks(sent):
    events = [_event(sent["ann"], "open", at=i) for i in range(7)]
    webhooks.events_store(events)
    assert webhooks.events_process(chunk=3) == 7
    assert webhooks.events_process(chunk=3) == 0
    assert LeadActivity.objects.count() == 7
    assert EmailMessage.objects.get(pk=sent["ann"].pk).opened_at == _at(0)


# Verification --------------------------------------------------------------------------------


def _nothing_stored():
    return not EmailEvent.objects.exists()


def test_unsigned_is_refused(client, key, sent):
    response = _post(client, _batch(sent), headers={})
    assert response.status_code == 403 and _nothing_stored()
    response = _post(client, _batch(sent), None, timestamp=str(int(time.time())))
    assert response.status_code == 403 and _nothing_stored()


def test_a_signature_by_another_key_is_refused(client, key, sent):
    forger = ec.generate_private_key(ec.SECP256R1())
    response = _post(client, _batch(sent), forger)
    assert response.status_code == 403 and _nothing_stored()


def test_a_body_changed_after_signing_is_refused(client, key, sent):
    body = json.dumps(_batch(sent)).encode()
    timestamp = str(int(time.time()))
    headers = {SIGNATURE_HEADER: _sign(key, timestamp, body), TIMESTAMP_HEADER: timestamp}
    tampered = body.replace(b'"open"', b'"click"')
    assert _post(client, tampered, headers=headers).status_code == 403
    assert _nothing_stored()


def test_a_signature_for_another_timestamp_is_refused(client, key, sent):
    body = json.dumps(_batch(sent)).encode()
    now = int(time.time())
    headers = {SIGNATURE_HEADER: _sign(key, str(now), body), TIMESTAMP_HEADER: str(now - 1)}
    assert _post(client, body, headers=headers).status_code == 403


@pytest.mark.parametrize("offset", [-310, -3600, 310, 10**9])
def test_a_stale_or_future_timestamp_is_refused(client, key, sent, offset):
    timestamp = str(int(time.time()) + offset)
    response = _post(client, _batch(sent), key, timestamp=timestamp)
    assert response.status_code == 403 and _nothing_stored()


def test_a_timestamp_within_the_allowed_age_is_accepted(
    client, key, sent, django_capture_on_commit_callbacks
):
    timestamp = str(int(time.time()) - 250)
    with django_capture_on_commit_callbacks(execute=True):
        assert _post(client, _batch(sent), key, timestamp=timestamp).status_code == 200


def test_without_a_configured_key_everything_is_refused(client, key, sent, settings, caplog):
    settings.SENDGRID_WEBHOOK_PUBLIC_KEY = ""
    response = _post(client, _batch(sent), key)
    assert response.status_code == 403 and _nothing_stored()
    # The caller learns nothing about the configuration; the log says what is wrong.
    assert "SENDGRID_WEBHOOK_PUBLIC_KEY" not in response.json()["error"]
    assert "SENDGRID_WEBHOOK_PUBLIC_KEY is not set" in caplog.text


@pytest.mark.parametrize(
    "public_key",
    [
        "not base64 at all!",
        base64.b64encode(b"garbage").decode(),
        # A PEM-armoured key where the bare base64 is expected.
        "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----",
    ],
)
def test_a_misconfigured_key_refuses_rather_than_crashes(client, key, sent, settings, public_key):
    settings.SENDGRID_WEBHOOK_PUBLIC_KEY = public_key
    assert _post(client, _batch(sent), key).status_code == 403


def test_an_rsa_key_configured_by_mistake_refuses_rather_than_crashes(client, key, settings):
    from cryptography.hazmat.primitives.asymmetric import rsa

    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    settings.SENDGRID_WEBHOOK_PUBLIC_KEY = _public_key_setting(rsa_key)
    assert _post(client, [], key).status_code == 403


@pytest.mark.parametrize(
    "headers",
    [
        {SIGNATURE_HEADER: "", TIMESTAMP_HEADER: ""},
        {SIGNATURE_HEADER: "abc", TIMESTAMP_HEADER: "yesterday"},
        {SIGNATURE_HEADER: "abc", TIMESTAMP_HEADER: "9" * 400},
        {SIGNATURE_HEADER: "abc", TIMESTAMP_HEADER: "9" * 5000},
        {SIGNATURE_HEADER: "abc", TIMESTAMP_HEADER: "-" + "9" * 400},
        {SIGNATURE_HEADER: "abc", TIMESTAMP_HEADER: "1e10"},
        {SIGNATURE_HEADER: "abc", TIMESTAMP_HEADER: "nan"},
        {SIGNATURE_HEADER: "%%%not-base64%%%", TIMESTAMP_HEADER: "NOW"},
        {SIGNATURE_HEADER: "ZZZ", TIMESTAMP_HEADER: "NOW"},  # not padded base64
        {SIGNATURE_HEADER: "AAAA", TIMESTAMP_HEADER: "NOW"},  # not a DER signature
        {SIGNATURE_HEADER: "é", TIMESTAMP_HEADER: "NOW"},
    ],
)
def test_bad_signature_headers_are_refused_never_a_500(client, key, headers):
    now = str(int(time.time()))
    headers = {name: now if value == "NOW" else value for name, value in headers.items()}
    assert _post(client, b"[]", headers=headers).status_code == 403


def test_get_is_not_allowed(client, key):
    assert client.get(reverse("sendgrid_webhook")).status_code == 405


# Parsing ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"",
        b'[{"event": "open"',
        b"\xff\xfe[]",
        b'{"event": "open", "sg_event_id": "a", "timestamp": 1780000000}',
        b'"a string"',
        b"null",
        b"[1, 2]",
        b'[{"event": "open", "timestamp": 1780000000}]',
        b'[{"event": "open", "sg_event_id": "", "timestamp": 1780000000}]',
        b'[{"event": "open", "sg_event_id": 7, "timestamp": 1780000000}]',
        b'[{"sg_event_id": "a", "timestamp": 1780000000}]',
        b'[{"event": null, "sg_event_id": "a", "timestamp": 1780000000}]',
        b'[{"event": "open", "sg_event_id": "a"}]',
        b'[{"event": "open", "sg_event_id": "a", "timestamp": "1780000000"}]',
        b'[{"event": "open", "sg_event_id": "a", "timestamp": true}]',
        b'[{"event": "open", "sg_event_id": "a", "timestamp": 1e300}]',
        b'[{"event": "open", "sg_event_id": "a", "timestamp": -1e300}]',
        b'[{"event": "open", "sg_event_id": "a", "timestamp": 1e400}]',
        b'[{"event": "open", "sg_event_id": "a", "timestamp": 99999999999999999999999}]',
        b'[{"event": "open", "sg_event_id": "a", "timestamp": 253402300800}]',
        b'[{"event": "open", "sg_event_id": "a", "timestamp": NaN}]',
        b'[{"event": "open", "sg_event_id": "a", "timestamp": Infinity}]',
        b'[{"event": "open", "sg_event_id": "a", "timestamp": 1780000000, "x": NaN}]',
        b'[{"event": "open", "sg_event_id": "a", "timestamp": 1780000000, "x": [1e999]}]',
        b'[{"event": "open", "sg_event_id": "a\\u0000", "timestamp": 1780000000}]',
        b'[{"event": "open", "sg_event_id": "a", "timestamp": 1780000000, "email": "\\u0000"}]',
        b'[{"event": "open", "sg_event_id": "a", "timestamp": 1780000000, "x": {"y": "\\u0000"}}]',
        b'[{"event": "open", "sg_event_id": "a", "timestamp": 1780000000, "\\u0000": 1}]',
        b'[{"event": "open", "sg_event_id": "\\ud800", "timestamp": 1780000000}]',
        b'[{"event": "open", "sg_event_id": "a", "timestamp": 1780000000, "x": "\\udfff"}]',
        b"[" * 100_000 + b"]" * 100_000,
        b'[{"event": "open", "sg_event_id": "a", "timestamp": 1780000000, "x": '
        + b"[" * 5000
        + b"]" * 5000
        + b"}]",
        b'[{"event": "open", "sg_event_id": "a", "timestamp": 1780000000, "n": 1'
        + b"0" * 5000
        + b"}]",
    ],
)
def test_a_bad_body_is_a_400_and_nothing_of_it_is_stored(
    client, key, body, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = _post(client, body, key)
    assert response.status_code == 400, response.content
    assert "error" in response.json()
    assert _nothing_stored()


def test_one_bad_event_refuses_the_whole_batch(client, key, sent):
    events = _batch(sent)
    del events[3]["sg_event_id"]
    response = _post(client, events, key)
    assert response.status_code == 400
    assert response.json() == {"error": "Event 3 has no sg_event_id."}
    assert _nothing_stored()


def test_too_many_events_are_refused(client, key, sent, monkeypatch):
    monkeypatch.setattr(webhooks, "MAX_EVENTS_PER_REQUEST", 3)
    assert _post(client, _batch(sent)[:4], key).status_code == 400
    assert _nothing_stored()


def test_an_empty_batch_is_fine(client, key, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = _post(client, [], key)
    assert response.status_code == 200
    assert response.json() == {"received": 0, "new": 0}


def test_odd_but_valid_values_are_stored_not_crashed_on(
    client, key, sent, django_capture_on_commit_callbacks
):
    ann = sent["ann"]
    events = [
        _event(ann, "open", at=0, url=["not", "a", "string"]),
        _event(ann, "click", at=1.75, url={"href": "x"}),
        _event(ann, "bounce", at=2, reason=None),
        _event(ann, "delivered", at=3, sg_event_id="x" * 500),
        _event(ann, "x" * 200, at=4),
        _event("ÄNN@A.example", "spamreport", at=5, category=["a", 1, None], extra=10**30),
        {**_event(ann, "open", at=6), "timestamp": 0},
    ]
    with django_capture_on_commit_callbacks(execute=True):
        response = _post(client, events, key)
    assert response.status_code == 200, response.content
    assert EmailEvent.objects.count() == 7
    assert EmailMessage.objects.get(pk=ann.pk).status == "bounced"
    click = LeadActivity.objects.get(activity_type="email_click")
    assert click.details["url"] == "{'href': 'x'}"
    assert Suppression.objects.filter(email="änn@a.example", reason="spam").exists()
