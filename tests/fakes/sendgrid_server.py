"""A local stand-in for SendGrid's v3 HTTP API, so tests drive the real `sendgrid` client
over real HTTP without touching the network.

Covered: `POST /v3/mail/send` (auth, SendGrid's documented payload rules, 202 with an
`X-Message-Id`) and `GET /v3/messages` (Email Activity, `unique_args['KEY']="VALUE"` queries
joined by AND). Tests can inject failures (`fail_next`) and latency (`delay`).

    with running_fake_sendgrid() as fake:
        sg = SendGridAPIClient("test-key", host=fake.url)
        sg.client.mail.send.post(request_body=payload)
        assert fake.recipients() == ["a@example.com"]
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fakes.base import FakeServer, QuietHandler, Reply

MAX_PERSONALIZATIONS = 1000
MAX_RECIPIENTS = 1000
MAX_SUBSTITUTION_BYTES = 10000
DEFAULT_ACTIVITY_LIMIT = 10
MAX_ACTIVITY_LIMIT = 1000

MAIL_SEND_PATH = "/v3/mail/send"
MESSAGES_PATH = "/v3/messages"

_QUERY_CLAUSE = re.compile(r"""unique_args\['([^']+)'\]\s*=\s*"([^"]*)\"""")
_QUERY_AND = re.compile(r"\s+AND\s+")


@dataclass(frozen=True)
class AcceptedRequest:
    payload: dict[str, Any]
    message_id: str
    received_at: datetime


def _error(message: str, field_name: str | None = None) -> dict[str, Any]:
    return {"message": message, "field": field_name, "help": None}


def _errors_body(*errors: dict[str, Any]) -> dict[str, Any]:
    return {"errors": list(errors)}


def _json_reply(status: int, body: Any, headers: dict[str, str] | None = None) -> Reply:
    return Reply(
        status,
        json.dumps(body).encode(),
        {"Content-Type": "application/json", **(headers or {})},
    )


def is_valid_email(value: Any) -> bool:
    """A cheap syntactic check: one '@', a dotted domain, no whitespace. Deliberately not a
    regex, so a 1,000-recipient request stays fast."""
    if not isinstance(value, str) or len(value) > 320:
        return False
    local, at, domain = value.partition("@")
    if not at or not local or "@" in domain:
        return False
    if "." not in domain or domain[0] == "." or domain[-1] == ".":
        return False
    # str.split() with no argument splits on any whitespace, in C.
    return value.split() == [value]


def _check_string_map(
    errors: list[dict[str, Any]], value: Any, field_name: str, what: str
) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        errors.append(_error(f"The {what} must be an object.", field_name))
        return {}
    for key, item in value.items():
        if not isinstance(item, str):
            errors.append(
                _error(
                    f"Invalid type. Expected: string, given: {type(item).__name__}.",
                    f"{field_name}.{key}",
                )
            )
    return value


# Headers mail/send refuses in `headers` (its API reference): each has a field of its own.
RESERVED_HEADERS = {"x-sg-id", "x-sg-eid", "received", "dkim-signature", "content-type",
                    "content-transfer-encoding", "to", "from", "subject", "reply-to", "cc",
                    "bcc"}  # fmt: skip


def _check_headers(errors: list[dict[str, Any]], headers: Any, where: str) -> None:
    for name in _check_string_map(errors, headers, where, "headers"):
        if str(name).lower() in RESERVED_HEADERS:
            errors.append(_error(f"The header {name} is reserved and cannot be set.", where))


def validate_mail_send(payload: Any) -> list[dict[str, Any]]:
    """The errors SendGrid would report for a mail/send body; empty when it is valid."""
    if not isinstance(payload, dict):
        return [_error("Bad Request")]
    errors: list[dict[str, Any]] = []
    has_template = bool(payload.get("template_id"))

    sender = payload.get("from")
    if not isinstance(sender, dict) or "email" not in sender:
        errors.append(
            _error(
                "The from object must be provided for every email send. It is an object "
                "that requires an email parameter, but may also contain a name parameter.",
                "from",
            )
        )
    elif not is_valid_email(sender["email"]):
        errors.append(_error("The from email does not contain a valid address.", "from.email"))

    subject = payload.get("subject")
    has_subject = isinstance(subject, str) and subject != ""
    if subject is not None and not isinstance(subject, str):
        errors.append(_error("The subject must be a string.", "subject"))

    _check_string_map(errors, payload.get("custom_args"), "custom_args", "custom_args")
    _check_headers(errors, payload.get("headers"), "headers")
    reply_to = payload.get("reply_to")
    if reply_to is not None and not (
        isinstance(reply_to, dict) and is_valid_email(reply_to.get("email"))
    ):
        errors.append(_error("The reply_to email does not contain a valid address.", "reply_to"))

    personalizations = payload.get("personalizations")
    if not isinstance(personalizations, list) or not personalizations:
        errors.append(
            _error(
                "The personalizations field is required and must have at least one "
                "personalization.",
                "personalizations",
            )
        )
        personalizations = []
    elif len(personalizations) > MAX_PERSONALIZATIONS:
        errors.append(
            _error(
                f"You may not have more than {MAX_PERSONALIZATIONS} personalizations per request.",
                "personalizations",
            )
        )
        # Checking each of thousands of items would only bury the one error that matters.
        personalizations = []

    total_recipients = 0
    every_personalization_has_subject = bool(personalizations)
    for index, personalization in enumerate(personalizations):
        where = f"personalizations.{index}"
        if not isinstance(personalization, dict):
            errors.append(_error("A personalization must be an object.", where))
            every_personalization_has_subject = False
            continue
        to = personalization.get("to")
        if not isinstance(to, list) or not to:
            errors.append(
                _error(
                    "The to array is required for all personalization objects, and must "
                    "have at least one email object with a valid email address.",
                    f"{where}.to",
                )
            )
        seen: set[str] = set()
        for kind in ("to", "cc", "bcc"):
            items = personalization.get(kind)
            if items is None:
                continue
            if not isinstance(items, list):
                errors.append(_error(f"The {kind} field must be an array.", f"{where}.{kind}"))
                continue
            total_recipients += len(items)
            for position, item in enumerate(items):
                email = item.get("email") if isinstance(item, dict) else None
                if not is_valid_email(email):
                    errors.append(
                        _error(
                            "Does not contain a valid address.",
                            f"{where}.{kind}.{position}.email",
                        )
                    )
                elif email.lower() in seen:
                    errors.append(
                        _error(
                            "Each email address in the personalization block should be "
                            "unique between to, cc, and bcc.",
                            f"{where}.{kind}.{position}.email",
                        )
                    )
                else:
                    seen.add(email.lower())

        own_subject = personalization.get("subject")
        if own_subject is not None and not isinstance(own_subject, str):
            errors.append(_error("The subject must be a string.", f"{where}.subject"))
        if not (isinstance(own_subject, str) and own_subject):
            every_personalization_has_subject = False

        _check_string_map(
            errors, personalization.get("custom_args"), f"{where}.custom_args", "custom_args"
        )
        _check_headers(errors, personalization.get("headers"), f"{where}.headers")
        substitutions = _check_string_map(
            errors, personalization.get("substitutions"), f"{where}.substitutions", "substitutions"
        )
        size = sum(
            len(str(key).encode()) + len(str(value).encode())
            for key, value in substitutions.items()
        )
        if size > MAX_SUBSTITUTION_BYTES:
            errors.append(
                _error(
                    f"The total size of your substitutions must be less than "
                    f"{MAX_SUBSTITUTION_BYTES} bytes per personalization object.",
                    f"{where}.substitutions",
                )
            )

    if total_recipients > MAX_RECIPIENTS:
        errors.append(
            _error(
                f"The total number of recipients (to, cc and bcc across all personalizations) "
                f"must be no more than {MAX_RECIPIENTS}.",
                "personalizations",
            )
        )

    # SendGrid lets a template supply the subject and the content.
    if not (has_subject or every_personalization_has_subject or has_template):
        errors.append(
            _error(
                "The subject is required. You can get around this requirement if you use a "
                "template with a subject defined or if every single personalization has a "
                "subject defined.",
                "subject",
            )
        )
    if not has_template:
        errors.extend(_validate_content(payload.get("content")))
    return errors


def _validate_content(content: Any) -> list[dict[str, Any]]:
    if not isinstance(content, list) or not content:
        return [
            _error(
                "Unless a valid template_id is provided, the content parameter is required. "
                "There must be at least one defined content block.",
                "content",
            )
        ]
    errors = []
    types = []
    for index, block in enumerate(content):
        block = block if isinstance(block, dict) else {}
        if not isinstance(block.get("type"), str) or not block["type"]:
            errors.append(
                _error(
                    "The content type must be a string at least one character in length.",
                    f"content.{index}.type",
                )
            )
        else:
            types.append(block["type"])
        if not isinstance(block.get("value"), str) or not block["value"]:
            errors.append(
                _error(
                    "The content value must be a string at least one character in length.",
                    f"content.{index}.value",
                )
            )
    if types and "text/plain" in types and types[0] != "text/plain":
        errors.append(
            _error(
                "If present, text/plain content must be first, followed by text/html, "
                "followed by any other content.",
                "content",
            )
        )
    return errors


def _parse_activity_query(query: str) -> list[tuple[str, str]] | None:
    """`unique_args['k']="v"` clauses joined by AND; None for anything else."""
    clauses = []
    for part in _QUERY_AND.split(query.strip()):
        match = _QUERY_CLAUSE.fullmatch(part.strip())
        if match is None:
            return None
        clauses.append((match.group(1), match.group(2)))
    return clauses


class _Handler(QuietHandler):
    def do_POST(self) -> None:
        body = self.body()
        fake = self.server.fake
        if urlsplit(self.path).path.rstrip("/") != MAIL_SEND_PATH:
            self.write(_json_reply(404, _errors_body(_error("Not found"))))
            return
        reply = fake._mail_send(self.headers.get("Authorization"), body)
        fake.sleep()
        self.write(reply)

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.path.rstrip("/") != MESSAGES_PATH:
            self.write(_json_reply(404, _errors_body(_error("Not found"))))
            return
        self.write(self.server.fake._messages(self.headers.get("Authorization"), parts.query))


class FakeSendGrid(FakeServer):
    """A SendGrid v3 server on 127.0.0.1. Use as a context manager or call start()/stop().

    `api_key`, when given, is the only bearer token accepted; otherwise any non-empty one is.
    `delay` (seconds) makes every mail/send wait before answering, after a valid request has
    already been recorded: a slow server that has accepted the mail.
    """

    name = "fake-sendgrid"
    handler = _Handler

    def __init__(self, *, api_key: str | None = None) -> None:
        self.api_key = api_key
        super().__init__()
        self._lock = threading.Lock()
        self._accepted: list[AcceptedRequest] = []
        self._failures: deque[tuple[int, Any]] = deque()
        self._requests_seen = 0

    # What tests read

    @property
    def accepted(self) -> list[AcceptedRequest]:
        """A snapshot of the accepted mail/send requests, oldest first."""
        with self._lock:
            return list(self._accepted)

    @property
    def requests_seen(self) -> int:
        """Every mail/send call, including rejected and injected failures."""
        with self._lock:
            return self._requests_seen

    def recipients(self) -> list[str]:
        """Every `to` address of every accepted request, in order, duplicates kept."""
        return [
            recipient["email"]
            for record in self.accepted
            for personalization in record.payload["personalizations"]
            for recipient in personalization["to"]
        ]

    # Controls

    def fail_next(self, status: int, count: int = 1, body: Any = None) -> None:
        """Answer the next `count` mail/send calls with `status` and `body` (a dict or list is
        sent as JSON, str/bytes as is; None gives a SendGrid errors body) without
        recording them."""
        if body is None:
            body = _errors_body(_error(f"fake failure {status}"))
        with self._lock:
            self._failures.extend([(status, body)] * count)

    def reset(self) -> None:
        """Forget recorded requests and pending failures and clear `delay`."""
        with self._lock:
            self._accepted.clear()
            self._failures.clear()
            self._requests_seen = 0
        self.delay = 0.0

    # Request handling, called from the server's threads

    def _authorized(self, header: str | None) -> Reply | None:
        scheme, _, token = (header or "").partition(" ")
        token = token.strip()
        # The sendgrid client sends "Bearer None" when no key is configured; SendGrid refuses
        # it, and a missing key is the misconfiguration tests most want to catch.
        if scheme != "Bearer" or token in ("", "None"):
            return _json_reply(401, _errors_body(_error("authorization required")))
        if self.api_key is not None and token != self.api_key:
            return _json_reply(
                401,
                _errors_body(
                    _error("The provided authorization grant is invalid, expired, or revoked")
                ),
            )
        return None

    def _mail_send(self, authorization: str | None, raw: bytes) -> Reply:
        with self._lock:
            self._requests_seen += 1
            failure = self._failures.popleft() if self._failures else None
        if failure is not None:
            status, body = failure
            if isinstance(body, dict | list):
                return _json_reply(status, body)
            return Reply(status, body.encode() if isinstance(body, str) else body)
        refused = self._authorized(authorization)
        if refused is not None:
            return refused
        try:
            payload = json.loads(raw)
        except ValueError:
            return _json_reply(400, _errors_body(_error("Bad Request")))
        errors = validate_mail_send(payload)
        if errors:
            return _json_reply(400, _errors_body(*errors))
        message_id = uuid.uuid4().hex[:22]
        with self._lock:
            self._accepted.append(AcceptedRequest(payload, message_id, datetime.now(UTC)))
        return Reply(202, b"", {"X-Message-Id": message_id})

    def _messages(self, authorization: str | None, raw_query: str) -> Reply:
        refused = self._authorized(authorization)
        if refused is not None:
            return refused
        params = parse_qs(raw_query)
        clauses = _parse_activity_query(params.get("query", [""])[0])
        if clauses is None:
            return _json_reply(400, _errors_body(_error("invalid query syntax", "query")))
        try:
            limit = int(params.get("limit", [DEFAULT_ACTIVITY_LIMIT])[0])
        except ValueError:
            limit = 0
        if not 1 <= limit <= MAX_ACTIVITY_LIMIT:
            return _json_reply(
                400,
                _errors_body(_error(f"limit must be between 1 and {MAX_ACTIVITY_LIMIT}", "limit")),
            )
        messages = []
        for record in self.accepted:
            top_args = record.payload.get("custom_args") or {}
            sequence = 0
            for personalization in record.payload["personalizations"]:
                # SendGrid stores top-level custom_args merged with the personalization's.
                args = {**top_args, **(personalization.get("custom_args") or {})}
                if any(args.get(key) != value for key, value in clauses):
                    continue
                for kind in ("to", "cc", "bcc"):
                    for recipient in personalization.get(kind) or []:
                        sequence += 1
                        messages.append(
                            {
                                # Real msg_ids are the X-Message-Id plus a per-recipient suffix.
                                "msg_id": f"{record.message_id}.fake.{sequence}",
                                "from_email": record.payload["from"]["email"],
                                "subject": personalization.get("subject")
                                or record.payload.get("subject", ""),
                                "to_email": recipient["email"],
                                "status": "delivered",
                                "opens_count": 0,
                                "clicks_count": 0,
                                "last_event_time": record.received_at.isoformat(),
                            }
                        )
        return _json_reply(200, {"messages": messages[:limit]})


@contextmanager
def running_fake_sendgrid(*, api_key: str | None = None) -> Iterator[FakeSendGrid]:
    """A started FakeSendGrid for the duration of the block, e.g. inside a pytest fixture."""
    fake = FakeSendGrid(api_key=api_key)
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()
