"""The fake SendGrid server, driven by the real `sendgrid` client so that the fake is
checked against what the client actually sends and how it reports errors."""

import json
import time
import urllib.error
import urllib.request

import pytest
from python_http_client.exceptions import (
    BadRequestsError,
    InternalServerError,
    TooManyRequestsError,
    UnauthorizedError,
)
from sendgrid import SendGridAPIClient

from tests.fakes.sendgrid_server import FakeSendGrid, running_fake_sendgrid, validate_mail_send


@pytest.fixture
def fake():
    with running_fake_sendgrid() as server:
        yield server


def client_for(fake, api_key="test-key"):
    sg = SendGridAPIClient(api_key, host=fake.url)
    sg.client.timeout = 5
    return sg


def send(fake, payload, **kwargs):
    return client_for(fake).client.mail.send.post(request_body=payload, **kwargs)


def mail(*recipients, **extra):
    payload = {
        "personalizations": [{"to": [{"email": email}]} for email in recipients],
        "from": {"email": "sales@example.com", "name": "Sales"},
        "subject": "Hello",
        "content": [
            {"type": "text/plain", "value": "Hi"},
            {"type": "text/html", "value": "<p>Hi</p>"},
        ],
    }
    payload.update(extra)
    return payload


def error_fields(exc_info):
    return [error["field"] for error in exc_info.value.to_dict["errors"]]


def test_valid_send_is_accepted_and_recorded(fake):
    payload = mail("ann@example.com", "bob@example.org", custom_args={"campaign": "7"})

    response = send(fake, payload)

    assert response.status_code == 202
    assert response.body == b""
    message_id = response.headers["X-Message-Id"]
    assert message_id
    [record] = fake.accepted
    assert record.payload == payload
    assert record.message_id == message_id
    assert record.received_at.tzinfo is not None
    assert fake.recipients() == ["ann@example.com", "bob@example.org"]
    assert fake.requests_seen == 1


def test_every_send_gets_a_fresh_message_id(fake):
    ids = {send(fake, mail("ann@example.com")).headers["X-Message-Id"] for _ in range(3)}

    assert len(ids) == 3
    assert fake.recipients() == ["ann@example.com"] * 3


def test_more_than_1000_personalizations_is_refused(fake):
    emails = [f"user{i}@example.com" for i in range(1001)]

    with pytest.raises(BadRequestsError) as exc_info:
        send(fake, mail(*emails))

    assert exc_info.value.status_code == 400
    assert error_fields(exc_info) == ["personalizations"]
    assert fake.accepted == []
    assert fake.requests_seen == 1


def test_1000_personalizations_are_accepted(fake):
    emails = [f"user{i}@example.com" for i in range(1000)]

    assert send(fake, mail(*emails)).status_code == 202
    assert fake.recipients() == emails


def test_missing_from_is_refused(fake):
    payload = mail("ann@example.com")
    del payload["from"]

    with pytest.raises(BadRequestsError) as exc_info:
        send(fake, payload)

    body = exc_info.value.to_dict
    assert body["errors"][0]["field"] == "from"
    assert body["errors"][0]["help"] is None
    assert fake.accepted == []


def _cc_everyone(payload):
    payload["personalizations"][0]["cc"] = [{"email": f"c{i}@example.com"} for i in range(1000)]


def _drop(key):
    def mutate(payload):
        del payload[key]

    return mutate


def _set(key, value):
    def mutate(payload):
        payload[key] = value

    return mutate


def _set_personalization(key, value):
    def mutate(payload):
        payload["personalizations"][0][key] = value

    return mutate


P0 = "personalizations.0"
HTML_FIRST = [{"type": "text/html", "value": "<p>Hi</p>"}, {"type": "text/plain", "value": "Hi"}]


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (_drop("personalizations"), "personalizations"),
        (_set("personalizations", []), "personalizations"),
        (_cc_everyone, "personalizations"),
        (_set_personalization("to", []), f"{P0}.to"),
        (_set_personalization("to", [{"email": "not-an-address"}]), f"{P0}.to.0.email"),
        (_set_personalization("to", [{"email": "a b@example.com"}]), f"{P0}.to.0.email"),
        (_set_personalization("to", [{"email": "a@localhost"}]), f"{P0}.to.0.email"),
        (_set_personalization("bcc", [{"email": "ANN@example.com"}]), f"{P0}.bcc.0.email"),
        (_set("from", {"email": "nobody"}), "from.email"),
        (_drop("subject"), "subject"),
        (_drop("content"), "content"),
        (_set("content", [{"type": "text/plain", "value": ""}]), "content.0.value"),
        (_set("content", [{"value": "Hi"}]), "content.0.type"),
        (_set("content", HTML_FIRST), "content"),
        (_set("custom_args", {"lead_id": 42}), "custom_args.lead_id"),
        (_set_personalization("substitutions", {"-n-": 1}), f"{P0}.substitutions.-n-"),
        (_set_personalization("substitutions", {"-x-": "y" * 10000}), f"{P0}.substitutions"),
    ],
)
def test_invalid_payloads_are_refused_with_the_failing_field(fake, mutate, field):
    payload = mail("ann@example.com")
    mutate(payload)

    with pytest.raises(BadRequestsError) as exc_info:
        send(fake, payload)

    assert field in error_fields(exc_info)
    assert fake.accepted == []


def test_subject_may_come_from_every_personalization(fake):
    payload = mail("ann@example.com", "bob@example.org")
    del payload["subject"]
    for personalization in payload["personalizations"]:
        personalization["subject"] = "Hi there"

    assert send(fake, payload).status_code == 202

    payload["personalizations"][1]["subject"] = ""
    with pytest.raises(BadRequestsError) as exc_info:
        send(fake, payload)
    assert error_fields(exc_info) == ["subject"]


def test_a_template_replaces_content(fake):
    payload = mail("ann@example.com", template_id="d-123")
    del payload["content"]

    assert send(fake, payload).status_code == 202


def test_body_that_is_not_json_is_refused(fake):
    sg = client_for(fake)
    with pytest.raises(BadRequestsError):
        sg.client.mail.send.post(
            request_body="{not json", request_headers={"Content-Type": "text/plain"}
        )


def test_a_client_without_api_key_is_unauthorized(fake, monkeypatch):
    # The client then falls back to $SENDGRID_API_KEY, and without it sends "Bearer None".
    monkeypatch.delenv("SENDGRID_API_KEY", raising=False)
    with pytest.raises(UnauthorizedError) as exc_info:
        client_for(fake, api_key="").client.mail.send.post(request_body=mail("ann@example.com"))

    assert exc_info.value.status_code == 401
    assert "errors" in exc_info.value.to_dict
    assert fake.accepted == []
    assert fake.requests_seen == 1


def test_a_request_without_authorization_header_is_unauthorized(fake):
    request = urllib.request.Request(
        f"{fake.url}/v3/mail/send",
        data=json.dumps(mail("ann@example.com")).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as exc_info:
        urllib.request.urlopen(request, timeout=5)

    assert exc_info.value.code == 401
    assert fake.accepted == []


def test_a_configured_api_key_must_match():
    with running_fake_sendgrid(api_key="right") as fake:
        with pytest.raises(UnauthorizedError):
            client_for(fake, api_key="wrong").client.mail.send.post(
                request_body=mail("ann@example.com")
            )
        response = client_for(fake, api_key="right").client.mail.send.post(
            request_body=mail("ann@example.com")
        )
        assert response.status_code == 202


def test_fail_next_429_then_success(fake):
    fake.fail_next(429)

    with pytest.raises(TooManyRequestsError) as exc_info:
        send(fake, mail("ann@example.com"))
    assert exc_info.value.status_code == 429
    assert "Retry-After" not in exc_info.value.headers
    assert fake.accepted == []

    assert send(fake, mail("ann@example.com")).status_code == 202
    assert fake.recipients() == ["ann@example.com"]
    assert fake.requests_seen == 2


def test_fail_next_500_with_count(fake):
    fake.fail_next(500, count=2)

    for _ in range(2):
        with pytest.raises(InternalServerError) as exc_info:
            send(fake, mail("ann@example.com"))
        assert exc_info.value.status_code == 500

    assert send(fake, mail("ann@example.com")).status_code == 202
    assert fake.requests_seen == 3
    assert len(fake.accepted) == 1


def test_fail_next_with_a_custom_body(fake):
    body = {"errors": [{"message": "The from address does not match", "field": "from"}]}
    fake.fail_next(400, body=body)

    with pytest.raises(BadRequestsError) as exc_info:
        send(fake, mail("ann@example.com"))

    assert exc_info.value.to_dict == body
    assert fake.accepted == []


def query_activity(fake, query, limit=10):
    response = client_for(fake).client.messages.get(query_params={"query": query, "limit": limit})
    assert response.status_code == 200
    return response.to_dict["messages"]


def test_activity_query_finds_a_send_by_custom_arg(fake):
    first = send(fake, mail("ann@example.com", "bob@example.org", custom_args={"batch": "b-1"}))
    send(fake, mail("cid@example.com", custom_args={"batch": "b-2"}))

    messages = query_activity(fake, "unique_args['batch']=\"b-1\"")

    assert [m["to_email"] for m in messages] == ["ann@example.com", "bob@example.org"]
    assert {m["status"] for m in messages} == {"delivered"}
    message_id = first.headers["X-Message-Id"]
    assert all(m["msg_id"].startswith(f"{message_id}.") for m in messages)
    assert query_activity(fake, "unique_args['batch']=\"b-3\"") == []
    assert len(query_activity(fake, "unique_args['batch']=\"b-1\"", limit=1)) == 1


def test_activity_query_clauses_can_be_joined_with_and(fake):
    send(fake, mail("ann@example.com", custom_args={"batch": "b-1", "lead": "1"}))
    send(fake, mail("bob@example.org", custom_args={"batch": "b-1", "lead": "2"}))

    messages = query_activity(fake, "unique_args['batch']=\"b-1\" AND unique_args['lead']=\"2\"")

    assert [m["to_email"] for m in messages] == ["bob@example.org"]


@pytest.mark.parametrize(
    "query", ["", 'status="delivered"', "unique_args['batch']='b-1'", "unique_args.batch=b-1"]
)
def test_activity_query_with_unknown_syntax_is_refused(fake, query):
    with pytest.raises(BadRequestsError) as exc_info:
        client_for(fake).client.messages.get(query_params={"query": query, "limit": 10})

    assert error_fields(exc_info) == ["query"]


def test_delay_records_the_request_before_a_slow_answer(fake):
    fake.delay = 1
    sg = client_for(fake)

    started = time.monotonic()
    with pytest.raises((TimeoutError, urllib.error.URLError)):
        sg.client.mail.send.post(request_body=mail("ann@example.com"), timeout=0.2)

    assert time.monotonic() - started < 0.9
    assert fake.recipients() == ["ann@example.com"]
    assert fake.requests_seen == 1


def test_delay_still_answers_202(fake):
    fake.delay = 0.1

    started = time.monotonic()
    response = send(fake, mail("ann@example.com"))

    assert response.status_code == 202
    assert time.monotonic() - started >= 0.1


def test_stop_does_not_wait_for_a_delayed_request():
    fake = FakeSendGrid().start()
    fake.delay = 30
    with pytest.raises((TimeoutError, urllib.error.URLError)):
        client_for(fake).client.mail.send.post(request_body=mail("ann@example.com"), timeout=0.2)

    started = time.monotonic()
    fake.stop()

    assert time.monotonic() - started < 2


def test_reset_forgets_everything(fake):
    send(fake, mail("ann@example.com"))
    fake.fail_next(500)
    fake.delay = 5

    fake.reset()

    assert fake.accepted == []
    assert fake.recipients() == []
    assert fake.requests_seen == 0
    assert fake.delay == 0
    assert send(fake, mail("ann@example.com")).status_code == 202


def test_it_works_as_a_context_manager_and_can_restart():
    fake = FakeSendGrid()
    with fake:
        assert fake.url.startswith("http://127.0.0.1:")
        assert send(fake, mail("ann@example.com")).status_code == 202
    with pytest.raises(RuntimeError):
        _ = fake.url
    with fake:
        assert send(fake, mail("bob@example.org")).status_code == 202
    assert fake.recipients() == ["ann@example.com", "bob@example.org"]


def test_a_full_batch_of_1000_personalizations_validates():
    # Its speed is measured where it matters, end to end: bench campaign_send_100k.
    payload = mail(*[f"user{i}@example.com" for i in range(1000)])
    for index, personalization in enumerate(payload["personalizations"]):
        personalization["substitutions"] = {"-name-": f"User {index}"}
        personalization["custom_args"] = {"lead_id": str(index)}
    assert validate_mail_send(payload) == []


def test_reserved_headers_are_refused_and_reply_to_is_its_own_field():
    assert validate_mail_send(mail("ann@example.com", reply_to={"email": "rep@example.com"})) == []
    errors = validate_mail_send(mail("ann@example.com", headers={"Reply-To": "rep@example.com"}))
    assert [e["field"] for e in errors] == ["headers"]
    bad = validate_mail_send(mail("ann@example.com", reply_to={"email": "nope"}))
    assert [e["field"] for e in bad] == ["reply_to"]
