"""A local stand-in for Mailgun's HTTP API, so tests drive the official `mailgun` SDK over
real HTTP without touching the network.

Covered, as Mailgun documents them:
- `POST /v3/{domain}/messages` (basic auth `api:KEY`, form-encoded or multipart): the
  required fields, at most 1,000 recipients, addresses, `recipient-variables` as a JSON
  object, at most 3 `o:tag`s; 200 with an `id` and "Queued. Thank you.". Each accepted
  request is delivered the way Mailgun would: with recipient-variables, one message per
  `to` address, To: that address alone, `%recipient.KEY%` substituted in the subject,
  bodies, `v:` variables and `h:` headers; without them, one message To: everyone (what a
  batch send must never do, and what `deliveries` lets a test catch).
- `GET /v3/{domain}/events` (and its `paging.next` pages): the `accepted` event of every
  delivery plus any event a test adds, filtered by event, recipient, tags, message-id and
  begin/end, up to 300 per page.
- `GET /v3/{domain}/bounces|complaints|unsubscribes`: the suppression lists, paged the way
  Mailgun pages them (`page=next&address=LAST`), up to 1,000 per page (10,000 for Mailgun;
  the fake keeps pages small enough to exercise paging).

Failures (`fail_next`) and latency (`delay`) can be injected.

    with FakeMailgun(api_key="key-x", domain="mg.example.com") as fake:
        Client(auth=("api", "key-x"), api_url=fake.url).messages.create(data=..., domain=...)
        assert [d.to for d in fake.deliveries()] == [["ann@example.com"]]
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime, getaddresses
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from tests.fakes.base import FakeServer, QuietHandler, Reply, json_reply
from tests.fakes.sendgrid_server import is_valid_email

MAX_RECIPIENTS = 1000
MAX_TAGS = 3
MAX_TAG_LENGTH = 128
MAX_EVENTS_LIMIT = 300
DEFAULT_EVENTS_LIMIT = 100
MAX_SUPPRESSIONS_LIMIT = 1000
DEFAULT_SUPPRESSIONS_LIMIT = 100
SUPPRESSION_LISTS = ("bounces", "complaints", "unsubscribes")

_RECIPIENT_VARIABLE = re.compile(r"%recipient\.([A-Za-z0-9_\-]+)%")
_PATH = re.compile(r"^/v3/(?P<domain>[^/]+)/(?P<resource>[a-z]+)(?:/(?P<token>[^/]+))?/?$")


@dataclass(frozen=True)
class AcceptedRequest:
    fields: list[tuple[str, str]]
    message_id: str
    received_at: float

    def values(self, name: str) -> list[str]:
        return [value for key, value in self.fields if key == name]

    def value(self, name: str, default: str = "") -> str:
        values = self.values(name)
        return values[0] if values else default


@dataclass(frozen=True)
class Delivery:
    """One message as its recipient gets it."""

    to: list[str]  # the addresses in its To: header
    subject: str
    text: str
    html: str
    variables: dict[str, str]  # the `v:` custom variables, substituted
    headers: dict[str, str]  # the `h:` headers, substituted
    tags: list[str]
    message_id: str


def _message(status: int, message: str) -> Reply:
    return json_reply(status, {"message": message})


def _substitute(text: str, values: dict[str, Any], address: str) -> str:
    text = text.replace("%recipient%", address)
    return _RECIPIENT_VARIABLE.sub(lambda m: str(values.get(m.group(1), "")), text)


# `"Name" <address>` or a bare address: the shapes a client sends one `to` per field in.
_SIMPLE_ADDRESS = re.compile(r'^\s*(?:"(?:[^"\\]|\\.)*"\s*)?<([^<>\s,]+)>\s*$|^\s*([^<>\s,"]+)\s*$')


def _addresses(values: list[str]) -> list[str]:
    """The addresses of `to` fields (each may list several, comma-separated). The common
    shapes by a regex; anything else by email.utils.getaddresses, which is correct but too
    slow for 1,000 recipients a request in a benchmark."""
    found = []
    for value in values:
        match = _SIMPLE_ADDRESS.match(value)
        if match:
            found.append(match.group(1) or match.group(2))
        else:
            found.extend(email for _name, email in getaddresses([value]))
    return found


def parse_form(content_type: str, raw: bytes) -> list[tuple[str, str]] | None:
    """The fields of a form-encoded or multipart body, in order; None when unreadable."""
    kind = content_type.split(";")[0].strip().lower()
    try:
        if kind == "application/x-www-form-urlencoded":
            return parse_qsl(raw.decode(), keep_blank_values=True, strict_parsing=False)
        if kind == "multipart/form-data":
            return _parse_multipart(content_type, raw)
    except (UnicodeDecodeError, ValueError, LookupError):
        return None
    return None


_BOUNDARY = re.compile(r'boundary="?([^";]+)"?')
_FIELD_NAME = re.compile(rb'name="([^"]*)"')


def _parse_multipart(content_type: str, raw: bytes) -> list[tuple[str, str]] | None:
    """RFC 7578 form fields (not email.parser: a 1,000-recipient request has a thousand
    parts, and the fake must not be the slow end of a benchmark)."""
    match = _BOUNDARY.search(content_type)
    if not match:
        return None
    delimiter = b"--" + match.group(1).encode()
    fields = []
    for part in raw.split(delimiter)[1:]:
        if part.startswith(b"--"):
            break  # the closing delimiter
        head, separator, body = part.partition(b"\r\n\r\n")
        name = _FIELD_NAME.search(head)
        if not separator or not name:
            return None
        fields.append((name.group(1).decode(), body.removesuffix(b"\r\n").decode()))
    return fields


def validate_message(fields: list[tuple[str, str]]) -> str | None:
    """Mailgun's 400 message for a Messages API request, or None when it is valid."""
    names = [name for name, _ in fields]

    def values(name: str) -> list[str]:
        return [value for key, value in fields if key == name]

    if not values("from"):
        return "from parameter is missing"
    from_addresses = _addresses(values("from"))
    if not from_addresses or not is_valid_email(from_addresses[0]):
        return "from parameter is not a valid address. please check documentation"
    if not values("to"):
        return "to parameter is missing"
    recipients = []
    for kind in ("to", "cc", "bcc"):
        for address in _addresses(values(kind)):
            if not is_valid_email(address):
                return f"{kind} parameter is not a valid address. please check documentation"
            recipients.append(address)
    if len(recipients) > MAX_RECIPIENTS:
        return f"Too many recipients: at most {MAX_RECIPIENTS} per message"
    if not any(values("subject")) and "template" not in names:
        return "subject parameter is missing"
    if not any(n in names for n in ("text", "html", "amp-html", "template")):
        return "Need at least one of 'text', 'html', 'amp-html' or 'template' parameters specified"
    raw_variables = values("recipient-variables")
    if raw_variables:
        try:
            variables = json.loads(raw_variables[0])
        except ValueError:
            return "recipient-variables parameter is not a valid JSON"
        if not isinstance(variables, dict) or not all(
            isinstance(value, dict) for value in variables.values()
        ):
            return "recipient-variables parameter is not a valid JSON"
    tags = values("o:tag")
    if len(tags) > MAX_TAGS:
        return f"Too many tags: at most {MAX_TAGS} per message"
    for tag in tags:
        if not tag or len(tag) > MAX_TAG_LENGTH or not tag.isascii():
            return "o:tag parameter is not valid: tags are ASCII, at most 128 characters"
    for name, value in fields:
        if name.startswith("h:") and ("\r" in value or "\n" in value):
            return f"{name} parameter is not valid"
    return None


class _Handler(QuietHandler):
    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        fake = self.server.fake
        match = _PATH.match(urlsplit(self.path).path)
        if not match or match["resource"] != "messages" or match["token"]:
            self.write(_message(404, "Not Found"))
            return
        reply = fake._messages_post(
            self.headers.get("Authorization"),
            match["domain"],
            self.headers.get("Content-Type", ""),
            raw,
        )
        fake.sleep()
        self.write(reply)

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        match = _PATH.match(parts.path)
        fake = self.server.fake
        if not match:
            self.write(_message(404, "Not Found"))
            return
        self.write(
            fake._get(
                self.headers.get("Authorization"),
                match["domain"],
                match["resource"],
                match["token"],
                dict(parse_qsl(parts.query)),
            )
        )


class FakeMailgun(FakeServer):
    """A Mailgun server on 127.0.0.1. `api_key` and `domain`, when given, are the only ones
    accepted (401 "Forbidden" and 404 "Domain not found" otherwise). `delay` makes every
    accepted send wait before answering, after it was recorded (a slow server that has
    accepted the mail)."""

    name = "fake-mailgun"
    handler = _Handler

    def __init__(self, *, api_key: str | None = None, domain: str | None = None) -> None:
        self.api_key = api_key
        self.domain = domain
        super().__init__()
        self._lock = threading.Lock()
        self._accepted: list[AcceptedRequest] = []
        self._events: list[dict[str, Any]] = []
        self._suppressions: dict[str, list[dict[str, Any]]] = {k: [] for k in SUPPRESSION_LISTS}
        self._failures: deque[tuple[int, Any, str]] = deque()
        self._requests_seen = 0
        self.suppression_pages_served = 0

    # What tests read

    @property
    def accepted(self) -> list[AcceptedRequest]:
        with self._lock:
            return list(self._accepted)

    @property
    def requests_seen(self) -> int:
        """Every messages call, including refused ones and injected failures."""
        with self._lock:
            return self._requests_seen

    def deliveries(self) -> list[Delivery]:
        """Every message as recipients get it, oldest first."""
        return [d for request in self.accepted for d in self.render(request)]

    def recipients(self) -> list[str]:
        """Every address that got a message, duplicates kept."""
        return [address for delivery in self.deliveries() for address in delivery.to]

    @staticmethod
    def render(request: AcceptedRequest) -> list[Delivery]:
        """What Mailgun makes of one accepted request."""
        to = _addresses(request.values("to"))
        raw = request.value("recipient-variables")
        variables = json.loads(raw) if raw else None
        custom = {k[2:]: v for k, v in request.fields if k.startswith("v:")}
        headers = {k[2:]: v for k, v in request.fields if k.startswith("h:")}
        tags = request.values("o:tag")

        def one(addresses: list[str], values: dict[str, Any], address: str) -> Delivery:
            return Delivery(
                to=addresses,
                subject=_substitute(request.value("subject"), values, address),
                text=_substitute(request.value("text"), values, address),
                html=_substitute(request.value("html"), values, address),
                variables={k: _substitute(v, values, address) for k, v in custom.items()},
                headers={k: _substitute(v, values, address) for k, v in headers.items()},
                tags=tags,
                message_id=request.message_id,
            )

        if variables is None:  # no batch sending: one message, everybody in To
            return [one(to, {}, to[0] if to else "")]
        return [one([address], variables.get(address, {}), address) for address in to]

    # Controls

    def fail_next(self, status: int, count: int = 1, message: str | None = None) -> None:
        """Answer the next `count` messages calls with `status` and {"message": ...}
        without recording them."""
        with self._lock:
            self._failures.extend([(status, message or f"fake failure {status}", "")] * count)

    def add_event(self, event: dict[str, Any]) -> dict[str, Any]:
        """An event the Events API will list (id and timestamp filled in when absent)."""
        event = {"id": uuid.uuid4().hex[:22], "timestamp": time.time(), **event}
        with self._lock:
            self._events.append(event)
        return event

    def add_suppression(self, kind: str, address: str, **extra: Any) -> None:
        created = format_datetime(datetime.now(UTC), usegmt=True).replace("GMT", "UTC")
        item = {"address": address, "created_at": created, **extra}
        if kind == "bounces":
            item = {"code": "550", "error": "No such mailbox", **item}
        if kind == "unsubscribes":
            item = {"tags": ["*"], **item}
        with self._lock:
            self._suppressions[kind].append(item)

    def reset(self) -> None:
        with self._lock:
            self._accepted.clear()
            self._events.clear()
            self._failures.clear()
            for items in self._suppressions.values():
                items.clear()
            self._requests_seen = 0
            self.suppression_pages_served = 0
        self.delay = 0.0

    # Request handling, called from the server's threads

    def _authorized(self, header: str | None, domain: str) -> Reply | None:
        scheme, _, encoded = (header or "").partition(" ")
        try:
            user, _, key = base64.b64decode(encoded.strip()).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            user, key = "", ""
        if scheme != "Basic" or user != "api" or not key:
            return Reply(401, b"Forbidden", {"Content-Type": "text/plain"})
        if self.api_key is not None and key != self.api_key:
            return Reply(401, b"Forbidden", {"Content-Type": "text/plain"})
        if self.domain is not None and domain != self.domain:
            return _message(404, f"Domain not found: {domain}")
        return None

    def _messages_post(
        self, authorization: str | None, domain: str, content_type: str, raw: bytes
    ) -> Reply:
        with self._lock:
            self._requests_seen += 1
            failure = self._failures.popleft() if self._failures else None
        if failure is not None:
            status, message, _ = failure
            return _message(status, message)
        refused = self._authorized(authorization, domain)
        if refused is not None:
            return refused
        fields = parse_form(content_type, raw)
        if fields is None:
            return _message(400, "Bad request: the body is not a form")
        problem = validate_message(fields)
        if problem:
            return _message(400, problem)
        message_id = f"{datetime.now(UTC):%Y%m%d%H%M%S}.{uuid.uuid4().hex[:16]}@{domain}"
        request = AcceptedRequest(fields, message_id, time.time())
        events = self._accepted_events(request)
        with self._lock:
            self._accepted.append(request)
            self._events.extend(events)
        return json_reply(200, {"id": f"<{message_id}>", "message": "Queued. Thank you."})

    @staticmethod
    def _accepted_events(request: AcceptedRequest) -> list[dict[str, Any]]:
        """An `accepted` event per recipient, as the Events API lists them (only what an
        event carries is substituted: the bodies are rendered when a test asks)."""
        to = _addresses(request.values("to"))
        raw = request.value("recipient-variables")
        variables = json.loads(raw) if raw else None
        custom = {k[2:]: v for k, v in request.fields if k.startswith("v:")}
        tags = request.values("o:tag")
        events = []
        for address in to:  # only `v:` values are substituted: few and short
            values = variables.get(address, {}) if variables is not None else {}
            events.append(
                {
                    "id": uuid.uuid4().hex[:22],
                    "event": "accepted",
                    "timestamp": request.received_at,
                    "recipient": address,
                    "tags": tags,
                    "user-variables": {
                        k: _substitute(v, values, address) for k, v in custom.items()
                    },
                    "message": {
                        "headers": {
                            "message-id": request.message_id,
                            "to": address if variables is not None else ", ".join(to),
                        }
                    },
                }
            )
        return events

    def _get(
        self,
        authorization: str | None,
        domain: str,
        resource: str,
        token: str | None,
        query: dict[str, str],
    ) -> Reply:
        refused = self._authorized(authorization, domain)
        if refused is not None:
            return refused
        if resource == "events":
            return self._events_get(domain, token, query)
        if resource in SUPPRESSION_LISTS and not token:
            return self._suppressions_get(domain, resource, query)
        return _message(404, "Not Found")

    def _events_get(self, domain: str, token: str | None, query: dict[str, str]) -> Reply:
        if token:  # a paging URL: the query it stands for, and where to start
            try:
                query = json.loads(base64.urlsafe_b64decode(token.encode()).decode())
            except (ValueError, UnicodeDecodeError):
                return _message(400, "Invalid page token")
        try:
            limit = int(query.get("limit", DEFAULT_EVENTS_LIMIT))
            begin = float(query["begin"]) if "begin" in query else None
            end = float(query["end"]) if "end" in query else None
            offset = int(query.get("offset", 0))
        except ValueError:
            return _message(400, "Invalid query parameter")
        if not 1 <= limit <= MAX_EVENTS_LIMIT:
            return _message(400, f"limit must be between 1 and {MAX_EVENTS_LIMIT}")
        if query.get("ascending", "yes") not in ("yes", "no"):
            return _message(400, "ascending must be yes or no")
        with self._lock:
            events = list(self._events)
        wanted = []
        for event in events:
            headers = (event.get("message") or {}).get("headers") or {}
            if "event" in query and event.get("event") not in query["event"].split(" OR "):
                continue
            if "recipient" in query and event.get("recipient") != query["recipient"]:
                continue
            if "tags" in query and query["tags"] not in (event.get("tags") or []):
                continue
            if "message-id" in query and headers.get("message-id") != query["message-id"]:
                continue
            if begin is not None and event["timestamp"] < begin:
                continue
            if end is not None and event["timestamp"] > end:
                continue
            wanted.append(event)
        wanted.sort(key=lambda e: e["timestamp"], reverse=query.get("ascending") == "no")
        page = wanted[offset : offset + limit]
        following = {**query, "offset": offset + limit}
        next_token = base64.urlsafe_b64encode(json.dumps(following).encode()).decode()
        base = f"{self.url}/v3/{domain}/events"
        return json_reply(
            200,
            {
                "items": page,
                "paging": {"next": f"{base}/{next_token}", "previous": f"{base}/{next_token}"},
            },
        )

    def _suppressions_get(self, domain: str, kind: str, query: dict[str, str]) -> Reply:
        try:
            limit = int(query.get("limit", DEFAULT_SUPPRESSIONS_LIMIT))
        except ValueError:
            return _message(400, "limit must be an integer")
        if not 1 <= limit <= MAX_SUPPRESSIONS_LIMIT:
            return _message(400, f"limit must be between 1 and {MAX_SUPPRESSIONS_LIMIT}")
        with self._lock:
            items = sorted(self._suppressions[kind], key=lambda item: item["address"])
            self.suppression_pages_served += 1
        if query.get("page") == "next" and query.get("address"):
            items = [item for item in items if item["address"] > query["address"]]
        page = items[:limit]
        base = f"{self.url}/v3/{domain}/{kind}"
        last = page[-1]["address"] if page else query.get("address", "")
        return json_reply(
            200,
            {
                "items": page,
                "paging": {
                    "first": f"{base}?{urlencode({'page': 'first', 'limit': limit})}",
                    "last": f"{base}?{urlencode({'page': 'last', 'limit': limit})}",
                    "next": f"{base}?"
                    + urlencode({"page": "next", "address": last, "limit": limit}),
                    "previous": f"{base}?"
                    + urlencode({"page": "previous", "address": last, "limit": limit}),
                },
            },
        )


def signed_webhook(signing_key: str, event_data: dict[str, Any], *, timestamp: int | None = None,
                   token: str | None = None) -> dict[str, Any]:  # fmt: skip
    """A webhook body as Mailgun posts it, signed with `signing_key`."""
    import hashlib
    import hmac

    timestamp = int(time.time()) if timestamp is None else timestamp
    token = token or uuid.uuid4().hex + uuid.uuid4().hex[:18]
    digest = hmac.new(
        signing_key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256
    ).hexdigest()
    return {
        "signature": {"timestamp": str(timestamp), "token": token, "signature": digest},
        "event-data": event_data,
    }
