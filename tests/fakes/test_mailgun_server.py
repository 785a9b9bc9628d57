"""The fake Mailgun server, driven by the official `mailgun` SDK, so that the fake is
checked against what the SDK actually sends."""

import json

import pytest
from mailgun.client import Client
from mailgun.config import RetryPolicy

from tests.fakes.mailgun_server import FakeMailgun, parse_form, validate_message

KEY, DOMAIN = "key-fake", "mg.example.com"


@pytest.fixture
def fake():
    with FakeMailgun(api_key=KEY, domain=DOMAIN) as server:
        yield server


def client_for(fake, key=KEY):
    return Client(
        auth=("api", key), api_url=fake.url, timeout=(2.0, 5.0),
        retry_policy=RetryPolicy(max_retries=0),
    )  # fmt: skip


def send(fake, fields, *, key=KEY, domain=DOMAIN):
    with client_for(fake, key) as client:
        return client.messages.create(data=fields, domain=domain)


def batch(*addresses, **extra):
    fields = [("from", "CRM <crm@example.com>"), ("subject", "Hi %recipient.first%"),
              ("text", "Hello %recipient.first%, this is for %recipient%")]  # fmt: skip
    fields += [("to", address) for address in addresses]
    variables = {a: {"first": a.split("@")[0].title()} for a in addresses}
    fields.append(("recipient-variables", json.dumps(variables)))
    fields += list(extra.items())
    return fields


def test_a_batch_with_recipient_variables_is_one_message_per_recipient(fake):
    response = send(fake, batch("ann@a.example", "bob@b.example", **{"v:n": "%recipient.first%"}))
    assert response.status_code == 200
    body = response.json()
    assert body["message"] == "Queued. Thank you." and body["id"].endswith(f"@{DOMAIN}>")
    ann, bob = fake.deliveries()
    assert (ann.to, ann.subject, ann.text) == (
        ["ann@a.example"], "Hi Ann", "Hello Ann, this is for ann@a.example"
    )  # fmt: skip
    assert bob.to == ["bob@b.example"] and bob.variables == {"n": "Bob"}


def test_without_recipient_variables_everybody_is_in_everybodys_to(fake):
    fields = [f for f in batch("ann@a.example", "bob@b.example") if f[0] != "recipient-variables"]
    send(fake, fields)
    (delivery,) = fake.deliveries()
    assert delivery.to == ["ann@a.example", "bob@b.example"]


def test_the_events_api_lists_accepted_events_by_recipient(fake):
    send(fake, batch("ann@a.example", "bob@b.example", **{"v:batch_key": "batch-1"}))
    with client_for(fake) as client:
        response = client.events.get(
            domain=DOMAIN, filters={"event": "accepted", "recipient": "bob@b.example", "limit": 300}
        )
    (item,) = response.json()["items"]
    assert item["user-variables"] == {"batch_key": "batch-1"}
    assert item["message"]["headers"]["to"] == "bob@b.example"
    assert "next" in response.json()["paging"]


def test_the_events_api_refuses_a_limit_over_300(fake):
    with client_for(fake) as client:
        response = client.events.get(domain=DOMAIN, filters={"limit": 301})
    assert response.status_code == 400


def test_suppression_lists_are_paged_by_address(fake):
    for i in range(5):
        fake.add_suppression("bounces", f"u{i}@x.example")
    pages, filters = [], {"limit": 2}
    with client_for(fake) as client:
        while True:
            body = client.bounces.get(domain=DOMAIN, filters=filters).json()
            if not body["items"]:
                break
            pages.append([item["address"] for item in body["items"]])
            from urllib.parse import parse_qsl, urlsplit

            filters = dict(parse_qsl(urlsplit(body["paging"]["next"]).query))
    assert pages == [["u0@x.example", "u1@x.example"], ["u2@x.example", "u3@x.example"],
                     ["u4@x.example"]]  # fmt: skip


@pytest.mark.parametrize(
    "fields, message",
    [
        ([("to", "a@b.example"), ("subject", "s"), ("text", "t")], "from parameter is missing"),
        ([("from", "a@b.example"), ("subject", "s"), ("text", "t")], "to parameter is missing"),
        ([("from", "a@b.example"), ("to", "c@d.example"), ("text", "t")],
         "subject parameter is missing"),
        ([("from", "a@b.example"), ("to", "c@d.example"), ("subject", "s")],
         "Need at least one of 'text', 'html', 'amp-html' or 'template' parameters specified"),
        ([("from", "a@b.example"), ("to", "not an address"), ("subject", "s"), ("text", "t")],
         "to parameter is not a valid address. please check documentation"),
        ([("from", "a@b.example"), ("to", "c@d.example"), ("subject", "s"), ("text", "t"),
          ("recipient-variables", "{not json")],
         "recipient-variables parameter is not a valid JSON"),
        ([("from", "a@b.example"), ("to", "c@d.example"), ("subject", "s"), ("text", "t"),
          *[("o:tag", f"t{i}") for i in range(4)]], "Too many tags: at most 3 per message"),
    ],
)  # fmt: skip
def test_invalid_requests_get_mailguns_400(fake, fields, message):
    response = send(fake, fields)
    assert (response.status_code, response.json()) == (400, {"message": message})
    assert not fake.accepted and fake.requests_seen == 1


def test_more_than_1000_recipients_is_refused():
    fields = batch(*[f"u{i}@x.example" for i in range(1001)])
    assert validate_message(fields) == "Too many recipients: at most 1000 per message"
    assert validate_message(batch(*[f"u{i}@x.example" for i in range(1000)])) is None


def test_a_wrong_key_or_domain_is_refused(fake):
    assert send(fake, batch("a@b.example"), key="key-other").status_code == 401
    response = send(fake, batch("a@b.example"), domain="other.example.com")
    assert response.status_code == 404 and "Domain not found" in response.json()["message"]


def test_injected_failures_and_multipart_bodies(fake):
    fake.fail_next(429)
    assert send(fake, batch("a@b.example")).status_code == 429
    assert send(fake, batch("a@b.example")).status_code == 200
    boundary = "XyZ"
    raw = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="to"\r\n\r\nann@a.example\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="o:tag"\r\n\r\nt1\r\n'
        f"--{boundary}--\r\n"
    ).encode()
    assert parse_form(f"multipart/form-data; boundary={boundary}", raw) == [
        ("to", "ann@a.example"),
        ("o:tag", "t1"),
    ]
