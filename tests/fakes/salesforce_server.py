"""A local stand-in for Salesforce's REST API, so tests drive `simple-salesforce` over real
HTTP without touching the network (simple-salesforce builds https:// URLs; the connection's
requests session routes them here, see integrations.clients.salesforce).

Covered, with Salesforce's limits and error shapes (a JSON array of {message, errorCode}):
- `POST /services/oauth2/token`: client credentials (HTTP Basic) and the username-password
  flow (password + security token); `invalid_client` / `invalid_grant` errors.
- `GET /services/data/vXX.X/query/?q=`: the SOQL the sync sends (SELECT fields FROM object
  [WHERE SystemModstamp >= / < datetime AND Id > 'id'] ORDER BY Id [LIMIT n]); batches of
  2,000 with `nextRecordsUrl` (query_more).
- `GET /services/data/vXX.X/sobjects/{type}/deleted/?start=&end=`: deleted records.
- `/services/data/vXX.X/composite/sobjects`: POST (create), PATCH (update), DELETE (?ids=):
  at most 200 records, per-record results with errors.
- Every answer carries `Sforce-Limit-Info: api-usage=n/limit`; past the daily limit, 403
  REQUEST_LIMIT_EXCEEDED. `fail_next` injects failures.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

PREFIXES = {"Account": "001", "Contact": "003", "User": "005", "Opportunity": "006", "Lead": "00Q"}
BATCH = 2000
MAX_COLLECTION = 200
SOQL = re.compile(
    r"^SELECT\s+(?P<fields>.+?)\s+FROM\s+(?P<object>\w+)"
    r"(?:\s+WHERE\s+(?P<where>.+?))?"
    r"(?:\s+ORDER\s+BY\s+(?P<order>\w+))?"
    r"(?:\s+LIMIT\s+(?P<limit>\d+))?\s*$",
    re.IGNORECASE | re.DOTALL,
)
CONDITION = re.compile(r"^(\w+)\s*(>=|<=|>|<|=|!=)\s*('(?:[^'\\]|\\.)*'|\S+)$")


def iso(moment: datetime) -> str:
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.")
        + f"{moment.microsecond // 1000:03d}+0000"
    )


def _parse_moment(text: str) -> datetime:
    text = text.strip("'")
    if re.search(r"[+-]\d{4}$", text):
        text = text[:-2] + ":" + text[-2:]
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass
class SObject:
    type: str
    id: str
    fields: dict[str, Any]
    modstamp: datetime
    deleted_at: datetime | None = None
    created: datetime = field(default_factory=lambda: datetime.now(UTC))

    def public(self, names: list[str]) -> dict:
        body: dict[str, Any] = {
            "attributes": {
                "type": self.type,
                "url": f"/services/data/v59.0/sobjects/{self.type}/{self.id}",
            }
        }
        for name in names:
            if name == "Id":
                body["Id"] = self.id
            elif name == "SystemModstamp" or name == "LastModifiedDate":
                body[name] = iso(self.modstamp)
            else:
                body[name] = self.fields.get(name)
        return body


class SalesforceError(Exception):
    def __init__(self, status: int, message: str, code: str, fields: list[str] | None = None):
        super().__init__(message)
        self.status = status
        self.body = [
            {"message": message, "errorCode": code, **({"fields": fields} if fields else {})}
        ]


class FakeSalesforce:
    def __init__(
        self,
        *,
        consumer_key: str = "test-consumer-key",
        consumer_secret: str = "test-consumer-secret",
        username: str = "admin@example.com",
        password: str = "secret",
        security_token: str = "TOKEN",
        daily_limit: int = 15_000,
    ) -> None:
        self.consumer_key = consumer_key
        self.consumer_secret = consumer_secret
        self.username = username
        self.password = password
        self.security_token = security_token
        self.daily_limit = daily_limit
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self.reset()

    def start(self) -> FakeSalesforce:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        server.daemon_threads = True
        server.fake = self  # type: ignore[attr-defined]
        self._server = server
        threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeSalesforce:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def reset(self) -> None:
        with self._lock:
            self.records: dict[str, dict[str, SObject]] = {t: {} for t in PREFIXES}
            self._counter = 0
            self.tokens: set[str] = set()
            self.used = 0
            self._failures: deque[tuple[int, list]] = deque()
            self.requests: list[tuple[str, str, float]] = []
            self._cursors: dict[str, tuple[list[dict], int]] = {}

    # -- the remote side -----------------------------------------------------------------------

    def _new_id(self, sobject: str) -> str:
        self._counter += 1
        return f"{PREFIXES[sobject]}{self._counter:012d}AAA"

    def put(
        self,
        sobject: str,
        fields: dict[str, Any],
        *,
        id: str | None = None,
        at: datetime | None = None,
    ) -> str:
        now = at or datetime.now(UTC)
        with self._lock:
            record = self.records[sobject].get(id) if id else None
            if record is None:
                record = SObject(sobject, id or self._new_id(sobject), {}, now, created=now)
                self.records[sobject][record.id] = record
            record.fields.update(fields)
            record.modstamp = now
            return record.id

    def delete(self, sobject: str, record_id: str, at: datetime | None = None) -> None:
        with self._lock:
            self.records[sobject][record_id].deleted_at = at or datetime.now(UTC)

    def live(self, sobject: str) -> list[SObject]:
        with self._lock:
            return [r for r in self.records[sobject].values() if r.deleted_at is None]

    def get(self, sobject: str, record_id: str) -> SObject:
        return self.records[sobject][record_id]

    def fail_next(self, status: int, count: int = 1) -> None:
        code = {503: "SERVER_UNAVAILABLE", 500: "UNKNOWN_EXCEPTION"}.get(
            status, "REQUEST_LIMIT_EXCEEDED"
        )
        with self._lock:
            self._failures.extend(
                [(status, [{"message": f"fake failure {status}", "errorCode": code}])] * count
            )

    def calls(self, part: str = "") -> int:
        with self._lock:
            return sum(1 for _, path, _ in self.requests if part in path)

    # -- requests ------------------------------------------------------------------------------

    def handle(self, method: str, raw_path: str, headers, raw: bytes):
        parts = urlsplit(raw_path)
        path = parts.path
        with self._lock:
            self.requests.append((method, path, time.monotonic()))
        if path == "/services/oauth2/token":
            return self._token(headers, raw)
        with self._lock:
            scheme, _, token = (headers.get("Authorization") or "").partition(" ")
            if scheme != "Bearer" or token not in self.tokens:
                return (
                    401,
                    [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}],
                    {},
                )
            if self._failures:
                status, body = self._failures.popleft()
                return status, body, {}
            self.used += 1
            limit = {"Sforce-Limit-Info": f"api-usage={self.used}/{self.daily_limit}"}
            if self.used > self.daily_limit:
                return (
                    403,
                    [
                        {
                            "message": "TotalRequests Limit exceeded.",
                            "errorCode": "REQUEST_LIMIT_EXCEEDED",
                        }
                    ],
                    limit,
                )
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            return 400, [{"message": "JSON parser error", "errorCode": "JSON_PARSER_ERROR"}], limit
        try:
            status, answer = self._route(method, path, parse_qs(parts.query), body)
        except SalesforceError as error:
            return error.status, error.body, limit
        return status, answer, limit

    def _token(self, headers, raw: bytes):
        form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
        grant = form.get("grant_type")
        if grant == "client_credentials":
            scheme, _, encoded = (headers.get("Authorization") or "").partition(" ")
            try:
                key, _, secret = base64.b64decode(encoded).decode().partition(":")
            except ValueError:
                key = secret = ""
            ok = scheme == "Basic" and (key, secret) == (self.consumer_key, self.consumer_secret)
            if not ok:
                return (
                    400,
                    {"error": "invalid_client", "error_description": "invalid client credentials"},
                    {},
                )
        elif grant == "password":
            if (form.get("client_id"), form.get("client_secret")) != (
                self.consumer_key,
                self.consumer_secret,
            ):
                return (
                    400,
                    {
                        "error": "invalid_client_id",
                        "error_description": "client identifier invalid",
                    },
                    {},
                )
            if (form.get("username"), form.get("password")) != (
                self.username,
                self.password + self.security_token,
            ):
                return (
                    400,
                    {"error": "invalid_grant", "error_description": "authentication failure"},
                    {},
                )
        else:
            return (
                400,
                {
                    "error": "unsupported_grant_type",
                    "error_description": "grant type not supported",
                },
                {},
            )
        token = f"00Dfake!{len(self.tokens) + 1:06d}"
        with self._lock:
            self.tokens.add(token)
        return (
            200,
            {
                "access_token": token,
                "instance_url": "https://fake.my.salesforce.com",
                "id": "https://login.salesforce.com/id/00Dfake/005fake",
                "token_type": "Bearer",
                "issued_at": str(int(time.time() * 1000)),
                "signature": "fake",
            },
            {},
        )

    def _route(self, method: str, path: str, query: dict, body: Any) -> tuple[int, Any]:
        match = re.match(r"^/services/data/v\d+\.\d+/(.*?)/?$", path)
        if not match:
            raise SalesforceError(404, "The requested resource does not exist", "NOT_FOUND")
        rest = match.group(1)
        if rest == "query" and method == "GET":
            return 200, self._query(query.get("q", [""])[0])
        if rest.startswith("query/") and method == "GET":
            return 200, self._query_more(rest.split("/", 1)[1])
        deleted = re.match(r"^sobjects/(\w+)/deleted$", rest)
        if deleted and method == "GET":
            return 200, self._deleted(deleted.group(1), query)
        if rest == "composite/sobjects":
            return 200, self._collection(method, query, body)
        if rest == "limits":
            return 200, {
                "DailyApiRequests": {
                    "Max": self.daily_limit,
                    "Remaining": self.daily_limit - self.used,
                }
            }
        raise SalesforceError(404, "The requested resource does not exist", "NOT_FOUND")

    def _query(self, soql: str) -> dict:
        parsed = SOQL.match(soql.strip())
        if not parsed:
            raise SalesforceError(400, f"unexpected token: {soql[:40]}", "MALFORMED_QUERY")
        sobject = parsed.group("object")
        if sobject not in PREFIXES:
            raise SalesforceError(
                400, f"sObject type '{sobject}' is not supported.", "INVALID_TYPE"
            )
        names = [n.strip() for n in parsed.group("fields").split(",")]
        counting = names == ["COUNT()"]
        conditions = []
        for clause in re.split(r"\s+AND\s+", parsed.group("where") or "", flags=re.IGNORECASE):
            if not clause:
                continue
            condition = CONDITION.match(clause.strip())
            if not condition:
                raise SalesforceError(400, f"unexpected token: {clause[:40]}", "MALFORMED_QUERY")
            conditions.append(condition.groups())
        with self._lock:
            matched = [
                r
                for r in self.records[sobject].values()
                if r.deleted_at is None and all(_holds(r, *c) for c in conditions)
            ]
            if parsed.group("order"):
                matched.sort(
                    key=lambda r: (
                        r.id
                        if parsed.group("order") == "Id"
                        else r.fields.get(parsed.group("order")) or ""
                    )
                )
            if parsed.group("limit"):
                matched = matched[: int(parsed.group("limit"))]
            if counting:
                return {"totalSize": len(matched), "done": True, "records": []}
            rows = [r.public(names) for r in matched]
            return self._batch(rows, 0)

    def _batch(self, rows: list[dict], start: int) -> dict:
        chunk = rows[start : start + BATCH]
        answer: dict[str, Any] = {
            "totalSize": len(rows),
            "done": start + BATCH >= len(rows),
            "records": chunk,
        }
        if not answer["done"]:
            cursor = f"01gfake{len(self._cursors):06d}"
            self._cursors[cursor] = (rows, start + BATCH)
            answer["nextRecordsUrl"] = f"/services/data/v59.0/query/{cursor}-{start + BATCH}"
        return answer

    def _query_more(self, locator: str) -> dict:
        cursor = locator.split("-")[0]
        with self._lock:
            if cursor not in self._cursors:
                raise SalesforceError(400, "invalid query locator", "INVALID_QUERY_LOCATOR")
            rows, start = self._cursors.pop(cursor)
            return self._batch(rows, start)

    def _deleted(self, sobject: str, query: dict) -> dict:
        try:
            start = _parse_moment(query["start"][0])
            end = _parse_moment(query["end"][0])
        except (KeyError, ValueError) as exc:
            raise SalesforceError(
                400, "start and end are required ISO dates", "INVALID_REPLICATION_DATE"
            ) from exc
        with self._lock:
            gone = [
                r
                for r in self.records.get(sobject, {}).values()
                if r.deleted_at and start <= r.deleted_at <= end
            ]
        return {
            "deletedRecords": [{"id": r.id, "deletedDate": iso(r.deleted_at)} for r in gone],
            "earliestDateAvailable": iso(datetime(2020, 1, 1, tzinfo=UTC)),
            "latestDateCovered": iso(end),
        }

    def _collection(self, method: str, query: dict, body: Any) -> list[dict]:
        if method == "DELETE":
            ids = [i for i in query.get("ids", [""])[0].split(",") if i]
            if len(ids) > MAX_COLLECTION:
                raise SalesforceError(
                    400, "Exceeded max limit of concurrent call", "EXCEEDED_ID_LIMIT"
                )
            results = []
            with self._lock:
                for record_id in ids:
                    record = next(
                        (t[record_id] for t in self.records.values() if record_id in t), None
                    )
                    if record is None or record.deleted_at:
                        results.append(
                            {
                                "id": record_id,
                                "success": False,
                                "errors": [
                                    {
                                        "statusCode": "ENTITY_IS_DELETED",
                                        "message": "entity is deleted",
                                        "fields": [],
                                    }
                                ],
                            }
                        )
                    else:
                        record.deleted_at = datetime.now(UTC)
                        results.append({"id": record_id, "success": True, "errors": []})
            return results
        records = (body or {}).get("records")
        if not isinstance(records, list) or not records:
            raise SalesforceError(400, "records is required", "INVALID_FIELD")
        if len(records) > MAX_COLLECTION:
            raise SalesforceError(
                400, f"Maximum of {MAX_COLLECTION} records allowed", "EXCEEDED_MAX_SIZE_REQUEST"
            )
        results = []
        now = datetime.now(UTC)
        with self._lock:
            for item in records:
                sobject = (item.get("attributes") or {}).get("type")
                if sobject not in PREFIXES:
                    results.append(
                        {
                            "success": False,
                            "errors": [
                                {
                                    "statusCode": "INVALID_TYPE",
                                    "message": "type is required",
                                    "fields": [],
                                }
                            ],
                        }
                    )
                    continue
                values = {k: v for k, v in item.items() if k not in ("attributes", "Id")}
                if method == "POST":
                    if sobject in ("Contact", "Lead") and not values.get("LastName"):
                        results.append(
                            {
                                "success": False,
                                "errors": [
                                    {
                                        "statusCode": "REQUIRED_FIELD_MISSING",
                                        "message": "Required fields are missing: [LastName]",
                                        "fields": ["LastName"],
                                    }
                                ],
                            }
                        )
                        continue
                    record_id = self.put(sobject, values, at=now)
                    results.append({"id": record_id, "success": True, "errors": []})
                else:
                    record = self.records[sobject].get(item.get("Id"))
                    if record is None or record.deleted_at:
                        results.append(
                            {
                                "id": item.get("Id"),
                                "success": False,
                                "errors": [
                                    {
                                        "statusCode": "ENTITY_IS_DELETED",
                                        "message": "entity is deleted",
                                        "fields": [],
                                    }
                                ],
                            }
                        )
                        continue
                    record.fields.update(values)
                    record.modstamp = now
                    results.append({"id": record.id, "success": True, "errors": []})
        return results


def _holds(record: SObject, name: str, operator: str, raw: str) -> bool:
    if name in ("SystemModstamp", "LastModifiedDate"):
        left, right = record.modstamp, _parse_moment(raw)
    elif name == "Id":
        left, right = record.id, raw.strip("'")
    elif raw.lower() in ("true", "false"):  # SOQL booleans
        left, right = str(bool(record.fields.get(name))).lower(), raw.lower()
    else:
        left, right = str(record.fields.get(name) or ""), raw.strip("'")
    return {
        ">=": left >= right, "<=": left <= right, ">": left > right,
        "<": left < right, "=": left == right, "!=": left != right,
    }[operator]  # fmt: skip


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        status, body, headers = self.server.fake.handle(self.command, self.path, self.headers, raw)  # type: ignore[attr-defined]
        data = json.dumps(body).encode()
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json;charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PATCH = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:
        pass
