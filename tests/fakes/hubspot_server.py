"""A local stand-in for HubSpot's CRM v3/v4 HTTP API, so tests and benchmarks drive the
official `hubspot-api-client` over real HTTP without touching the network.

Covered, with HubSpot's documented limits and error shapes:
- `GET /crm/v3/objects/{type}` (contacts, companies, deals): `limit` (max 100), `after`
  cursor, `properties`, `associations`, `archived` (archived records carry `archivedAt`).
- `POST /crm/v3/objects/{type}/search`: filterGroups (OR of AND-ed filters: EQ, NEQ, GT,
  GTE, LT, LTE, IN, HAS_PROPERTY), ONE sort rule (HubSpot applies only one), `limit` up to
  200, `after` offsets that fail with 400 past 10,000 results; 5 searches a second.
- `POST /crm/v3/objects/{type}/batch/{create,update,archive,read}`: at most 100 inputs; a
  contact whose email exists already answers 409 with "Existing ID: n"; unknown ids 207.
- `POST /crm/v3/objects/{type}/batch/upsert`: inputs of `idProperty` (a property with
  unique values, or a contact's `email`; any other answers 400 "Unable to perform
  update/upsert by non-unique ... property"), `id` (its value) and `properties`; a record
  with that value is updated, otherwise one is created holding it; results carry `new` and
  the input's `objectWriteTraceId`, in no promised order (here: reversed). An id twice in
  one batch answers 400.
- `GET /crm/v3/properties/{type}/{name}`, `POST /crm/v3/properties/{type}` (name, label,
  type, fieldType and groupName required; `hasUniqueValue` only on string and number
  properties, at most 10 a type; an existing name answers 409). A unique property's value
  written by a create, update or upsert onto a second record answers 400.
- `POST /crm/v4/associations/{from}/{to}/batch/read` and `.../batch/associate/default`,
  `GET /crm/v3/owners/`.
- `POST /crm/v4/associations/{from}/{to}/batch/archive`: inputs of `from` ({id}) and `to` (a
  list of {id}); every association (whatever its labels) between each pair is removed, one
  already gone is a no-op; answers 204 without a body. A malformed input answers 400 naming
  it, as do an unknown pair of object types and more than 100 inputs (the limit the fake's
  other association writes keep).
- Rate limits: a rolling 10-second window per token (`X-HubSpot-RateLimit-Max`,
  `-Remaining`, `-Interval-Milliseconds`, daily headers), 429 with HubSpot's error body.

Tests change the remote side directly (`put`, `touch`, `archive`, `merge`, `dissociate`) and
inject failures (`fail_next`); `lose_answer_next` applies a request and then drops the connection
unanswered, `hold_answer_next` applies it and waits for `release()` before answering (a
window in which to kill the client: the remote has the write, the client has no answer).
Every request is logged (`requests`) with its time.

    with FakeHubSpot(access_token="pat-test") as fake:
        client = hubspot.Client.create(access_token="pat-test", host=fake.url)
"""

from __future__ import annotations

import bisect
import json
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fakes.base import FakeServer, QuietHandler, Reply

OBJECT_TYPES = ("contacts", "companies", "deals")
MODIFIED_PROPERTY = {
    "contacts": "lastmodifieddate",
    "companies": "hs_lastmodifieddate",
    "deals": "hs_lastmodifieddate",
}
DEFAULT_PROPERTIES = {
    "contacts": ["firstname", "lastname", "email"],
    "companies": ["name", "domain"],
    "deals": ["dealname", "amount", "closedate", "pipeline", "dealstage"],
}
MAX_PAGE = 100
MAX_SEARCH_PAGE = 200
SEARCH_CAP = 10_000
MAX_BATCH = 100
MAX_UNIQUE_PROPERTIES = 10
OBJECT_TYPE_IDS = {"contacts": "0-1", "companies": "0-2", "deals": "0-3"}
PORTAL_ID = 4_200_042
ASSOCIATION_TYPE_IDS = {
    ("contacts", "companies"): 1,
    ("companies", "contacts"): 2,
    ("deals", "contacts"): 3,
    ("contacts", "deals"): 4,
    ("deals", "companies"): 5,
    ("companies", "deals"): 6,
}


def iso(moment: datetime) -> str:
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


def millis(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def parse_moment(value: Any) -> int | None:
    """A filter value for a datetime property: epoch milliseconds or an ISO string."""
    text = str(value)
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        return millis(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError:
        return None


@dataclass
class RemoteRecord:
    id: int
    properties: dict[str, str]
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None = None
    associations: dict[str, set[int]] = field(default_factory=dict)

    def public(self, object_type: str, names: list[str] | None, with_assoc: list[str]) -> dict:
        wanted = names if names else DEFAULT_PROPERTIES[object_type]
        properties = {name: self.properties.get(name) for name in wanted}
        properties["hs_object_id"] = str(self.id)
        properties["createdate"] = iso(self.created_at)
        properties[MODIFIED_PROPERTY[object_type]] = iso(self.updated_at)
        merged = self.properties.get("hs_merged_object_ids")
        if merged:
            properties["hs_merged_object_ids"] = merged
        body: dict[str, Any] = {
            "id": str(self.id),
            "properties": properties,
            "createdAt": iso(self.created_at),
            "updatedAt": iso(self.updated_at),
            "archived": self.archived_at is not None,
        }
        if self.archived_at is not None:
            body["archivedAt"] = iso(self.archived_at)
        if with_assoc:
            body["associations"] = {
                to: {
                    "results": [
                        {"id": str(other), "type": f"{object_type[:-1]}_to_{to[:-1]}"}
                        for other in sorted(self.associations.get(to, ()))
                    ]
                }
                for to in with_assoc
                if self.associations.get(to)
            }
        return body

    def value(self, object_type: str, name: str) -> str | None:
        if name == "hs_object_id":
            return str(self.id)
        if name == MODIFIED_PROPERTY[object_type]:
            return str(millis(self.updated_at))
        if name == "createdate":
            return str(millis(self.created_at))
        return self.properties.get(name)


class HubSpotError(Exception):
    def __init__(self, status: int, message: str, category: str, **extra: Any):
        super().__init__(message)
        self.status = status
        self.body = {
            "status": "error",
            "message": message,
            "correlationId": str(uuid.uuid4()),
            "category": category,
            **extra,
        }


def _matches(record: RemoteRecord, object_type: str, condition: dict) -> bool:
    name = condition.get("propertyName")
    operator = condition.get("operator")
    value = record.value(object_type, name)
    if operator == "HAS_PROPERTY":
        return value not in (None, "")
    if operator == "NOT_HAS_PROPERTY":
        return value in (None, "")
    if operator == "IN":
        return value in [str(item) for item in condition.get("values", [])]
    wanted = condition.get("value")
    numeric = name in ("hs_object_id", MODIFIED_PROPERTY[object_type], "createdate")
    if numeric:
        left = int(value) if value is not None else None
        right = parse_moment(wanted)
        if left is None or right is None:
            return False
    else:
        left, right = (value or ""), str(wanted)
    if operator == "EQ":
        return left == right
    if operator == "NEQ":
        return left != right
    if operator == "GT":
        return left > right
    if operator == "GTE":
        return left >= right
    if operator == "LT":
        return left < right
    if operator == "LTE":
        return left <= right
    raise HubSpotError(400, f"Unsupported operator {operator}", "VALIDATION_ERROR")


class FakeHubSpot(FakeServer):
    """HubSpot's CRM API on 127.0.0.1; a context manager, or start()/stop().

    `access_token`: the only bearer token accepted (any non-empty one when None).
    `rate_limit`: requests per rolling 10 s window (190: a Professional account's private
    app). `search_per_second`: HubSpot's search endpoints' own limit (5)."""

    name = "fake-hubspot"

    def __init__(
        self,
        *,
        access_token: str | None = None,
        rate_limit: int = 190,
        search_per_second: int = 5,
        daily_limit: int = 1_000_000,
    ) -> None:
        self.access_token = access_token
        self.rate_limit = rate_limit
        self.search_per_second = search_per_second
        self.daily_limit = daily_limit
        super().__init__()  # `delay`: seconds each answer waits (a window to kill a worker in)
        self._lock = threading.RLock()
        self.reset()

    def stop(self) -> None:
        self.release()
        super().stop()

    def reset(self) -> None:
        with self._lock:
            self.records: dict[str, dict[int, RemoteRecord]] = {t: {} for t in OBJECT_TYPES}
            self._ids: dict[str, list[int]] = {t: [] for t in OBJECT_TYPES}
            self._merged_into: dict[str, dict[int, int]] = {t: {} for t in OBJECT_TYPES}
            self.owners: list[dict[str, Any]] = []
            self._next_id = 1001
            self._window: deque[float] = deque()
            self._searches: deque[float] = deque()
            self._daily = 0
            self._failures: deque[tuple[int, dict, str]] = deque()
            self.requests: list[tuple[str, str, float]] = []
            self.refused_429 = 0
            self.delay = 0.0
            # Custom properties created through the properties API, per object type.
            self.properties: dict[str, dict[str, dict[str, Any]]] = {t: {} for t in OBJECT_TYPES}
            self._answer_rules: list[tuple[str, str]] = []  # (path, "lose" | "hold")
            self.held = threading.Event()  # set while an answer is held back
            self._release = threading.Event()

    # -- the remote side, as a HubSpot user would change it ------------------------------------

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def put(
        self,
        object_type: str,
        properties: dict[str, Any],
        *,
        id: int | None = None,
        at: datetime | None = None,
        associations: dict[str, list[int]] | None = None,
    ) -> int:
        """Create a record (or replace an existing one's properties) as if in HubSpot."""
        now = at or datetime.now(UTC)
        with self._lock:
            record = self.records[object_type].get(id) if id is not None else None
            if record is None:
                record_id = id if id is not None else self._new_id()
                self._next_id = max(self._next_id, record_id)
                record = RemoteRecord(record_id, {}, now, now)
                self.records[object_type][record_id] = record
                bisect.insort(self._ids[object_type], record_id)
            record.properties.update({k: _text(v) for k, v in properties.items()})
            record.updated_at = now
            for to, ids in (associations or {}).items():
                self._associate(object_type, record.id, to, ids)
            return record.id

    def put_many(self, object_type: str, rows: list[dict[str, Any]], *, at: datetime) -> list[int]:
        """Bulk creation for benchmarks: `rows` of properties, with an optional
        "_associations" key ({to_type: [ids]})."""
        with self._lock:
            created = []
            for row in rows:
                associations = row.pop("_associations", None)
                record_id = self._new_id()
                record = RemoteRecord(record_id, {k: _text(v) for k, v in row.items()}, at, at)
                self.records[object_type][record_id] = record
                self._ids[object_type].append(record_id)
                for to, ids in (associations or {}).items():
                    self._associate(object_type, record_id, to, ids)
                created.append(record_id)
            return created

    def touch(self, object_type: str, record_id: int, properties: dict[str, Any], at=None) -> None:
        self.put(object_type, properties, id=record_id, at=at)

    def archive(self, object_type: str, record_id: int, at: datetime | None = None) -> None:
        with self._lock:
            record = self.records[object_type][record_id]
            record.archived_at = record.updated_at = at or datetime.now(UTC)

    def merge(self, object_type: str, primary_id: int, merged_id: int, at=None) -> None:
        """HubSpot's merge: the merged record disappears into the primary, which lists its
        id in `hs_merged_object_ids`; the old id still reads as the primary."""
        with self._lock:
            primary = self.records[object_type][primary_id]
            merged = self.records[object_type].pop(merged_id)
            self._ids[object_type].remove(merged_id)
            self._merged_into[object_type][merged_id] = primary_id
            for key, value in merged.properties.items():
                primary.properties.setdefault(key, value)
            known = [i for i in primary.properties.get("hs_merged_object_ids", "").split(";") if i]
            primary.properties["hs_merged_object_ids"] = ";".join([*known, str(merged_id)])
            primary.updated_at = at or datetime.now(UTC)

    def dissociate(
        self, object_type: str, record_id: int, to: str, ids: list[int], at=None
    ) -> None:
        """A HubSpot user removes associations of a record (both directions). The record counts
        as modified, as `put` with `associations` does when one is added."""
        with self._lock:
            self._dissociate(object_type, record_id, to, ids)
            self.records[object_type][record_id].updated_at = at or datetime.now(UTC)

    def add_owner(self, email: str, first: str = "", last: str = "") -> int:
        with self._lock:
            owner_id = self._new_id()
            self.owners.append(
                {
                    "id": str(owner_id),
                    "email": email,
                    "firstName": first,
                    "lastName": last,
                    "userId": owner_id + 5000,
                    "createdAt": iso(datetime.now(UTC)),
                    "updatedAt": iso(datetime.now(UTC)),
                    "archived": False,
                }
            )
            return owner_id

    def live(self, object_type: str) -> list[RemoteRecord]:
        with self._lock:
            return [r for r in self.records[object_type].values() if r.archived_at is None]

    def get(self, object_type: str, record_id: int) -> RemoteRecord:
        return self.records[object_type][record_id]

    def fail_next(self, status: int, count: int = 1, path: str = "") -> None:
        """Answer the next `count` requests to `path` (any path when empty) with `status`."""
        body = (
            HubSpotError(
                429,
                "You have reached your ten_secondly_rolling limit.",
                "RATE_LIMITS",
                policyName="TEN_SECONDLY_ROLLING",
            ).body
            if status == 429
            else HubSpotError(status, "internal error", "INTERNAL_ERROR").body
        )
        with self._lock:
            self._failures.extend([(status, body, path)] * count)

    def calls(self, path_part: str = "") -> int:
        with self._lock:
            return sum(1 for _, path, _ in self.requests if path_part in path)

    def lose_answer_next(self, path: str) -> None:
        """Apply the next request to `path`, then close the connection without answering."""
        with self._lock:
            self._answer_rules.append((path, "lose"))

    def hold_answer_next(self, path: str) -> None:
        """Apply the next request to `path`, then hold its answer until `release()`."""
        with self._lock:
            self._release.clear()
            self.held.clear()
            self._answer_rules.append((path, "hold"))

    def release(self) -> None:
        self._release.set()

    def unique_values(self, object_type: str, name: str) -> list[str]:
        """The values a property holds on live records (tests count duplicates with it)."""
        with self._lock:
            return [
                r.properties[name]
                for r in self.records[object_type].values()
                if r.archived_at is None and r.properties.get(name)
            ]

    # -- request handling ----------------------------------------------------------------------

    def _associate(self, object_type: str, record_id: int, to: str, ids: list[int]) -> None:
        record = self.records[object_type][record_id]
        record.associations.setdefault(to, set()).update(int(i) for i in ids)
        for other_id in ids:
            other = self.records.get(to, {}).get(int(other_id))
            if other is not None:
                other.associations.setdefault(object_type, set()).add(record_id)

    def _dissociate(self, object_type: str, record_id: int, to: str, ids: list[int]) -> None:
        record = self.records[object_type].get(record_id)
        if record is not None:
            record.associations.get(to, set()).difference_update(int(i) for i in ids)
        for other_id in ids:
            other = self.records.get(to, {}).get(int(other_id))
            if other is not None:
                other.associations.get(object_type, set()).discard(record_id)

    def _rate_headers(self, remaining: int) -> dict[str, str]:
        return {
            "X-HubSpot-RateLimit-Max": str(self.rate_limit),
            "X-HubSpot-RateLimit-Remaining": str(max(remaining, 0)),
            "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
            "X-HubSpot-RateLimit-Daily": str(self.daily_limit),
            "X-HubSpot-RateLimit-Daily-Remaining": str(max(self.daily_limit - self._daily, 0)),
        }

    def handle(self, method: str, raw_path: str, headers, raw: bytes):
        parts = urlsplit(raw_path)
        path = parts.path.rstrip("/")
        now = time.monotonic()
        with self._lock:
            self.requests.append((method, path, now))
            auth = headers.get("Authorization", "")
            scheme, _, token = auth.partition(" ")
            if (
                scheme != "Bearer"
                or not token
                or (self.access_token is not None and token != self.access_token)
            ):
                return (
                    401,
                    HubSpotError(
                        401,
                        "Authentication credentials not found.",
                        "INVALID_AUTHENTICATION",
                    ).body,
                    {},
                )
            for index, (status, body, part) in enumerate(self._failures):
                if not part or part == path:
                    del self._failures[index]
                    return status, body, self._rate_headers(0) if status == 429 else {}
            is_search = path.endswith("/search")
            if is_search:
                while self._searches and now - self._searches[0] >= 1.0:
                    self._searches.popleft()
                if len(self._searches) >= self.search_per_second:
                    self.refused_429 += 1
                    return (
                        429,
                        HubSpotError(
                            429,
                            "You have reached your secondly limit.",
                            "RATE_LIMITS",
                            policyName="SECONDLY",
                        ).body,
                        {},
                    )
                self._searches.append(now)
                rate = {}
            else:
                while self._window and now - self._window[0] >= 10.0:
                    self._window.popleft()
                if len(self._window) >= self.rate_limit:
                    self.refused_429 += 1
                    return (
                        429,
                        HubSpotError(
                            429,
                            "You have reached your ten_secondly_rolling limit.",
                            "RATE_LIMITS",
                            policyName="TEN_SECONDLY_ROLLING",
                        ).body,
                        self._rate_headers(0),
                    )
                self._window.append(now)
                self._daily += 1
                rate = self._rate_headers(self.rate_limit - len(self._window))
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            return 400, HubSpotError(400, "Invalid input JSON", "VALIDATION_ERROR").body, rate
        query = parse_qs(parts.query)
        self.sleep()
        try:
            status, answer = self._route(method, path, query, body)
        except HubSpotError as error:
            return error.status, error.body, rate
        with self._lock:
            rule = next((r for r in self._answer_rules if r[0] == path), None)
            if rule is not None:
                self._answer_rules.remove(rule)
        if rule is not None and rule[1] == "lose":
            return None, None, {}  # the handler closes the connection unanswered
        if rule is not None:
            self.held.set()
            self._release.wait(timeout=120)
        return status, answer, rate

    def _route(self, method: str, path: str, query: dict, body: Any) -> tuple[int, Any]:
        segments = path.strip("/").split("/")
        if segments[:3] == ["crm", "v3", "owners"] and method == "GET":
            return 200, self._owners(query)
        if segments[:3] == ["crm", "v4", "associations"] and segments[-2:] == ["batch", "read"]:
            return 200, self._association_read(segments[3], segments[4], body)
        if segments[:3] == ["crm", "v4", "associations"] and segments[-3:] == [
            "batch", "associate", "default",
        ]:  # fmt: skip
            return self._association_default(segments[3], segments[4], body)
        if segments[:3] == ["crm", "v4", "associations"] and segments[-2:] == ["batch", "archive"]:
            return self._association_archive(segments[3], segments[4], body)
        if segments[:3] == ["crm", "v3", "properties"] and len(segments) in (4, 5):
            if segments[3] not in OBJECT_TYPES:
                raise HubSpotError(
                    400, f"Unable to infer object type from: {segments[3]}", "VALIDATION_ERROR"
                )
            if len(segments) == 5 and method == "GET":
                return 200, self._property_read(segments[3], segments[4])
            if len(segments) == 4 and method == "POST":
                return 201, self._property_create(segments[3], body)
        if segments[:3] != ["crm", "v3", "objects"] or len(segments) < 4:
            raise HubSpotError(404, f"No route for {method} {path}", "OBJECT_NOT_FOUND")
        object_type = segments[3]
        if object_type not in OBJECT_TYPES:
            raise HubSpotError(
                400, f"Unable to infer object type from: {object_type}", "VALIDATION_ERROR"
            )
        rest = segments[4:]
        if not rest and method == "GET":
            return 200, self._list(object_type, query)
        if rest == ["search"] and method == "POST":
            return 200, self._search(object_type, body)
        if len(rest) == 2 and rest[0] == "batch" and method == "POST":
            return self._batch(object_type, rest[1], body)
        if len(rest) == 1 and method == "GET":
            return 200, self._read_one(object_type, rest[0], query)
        raise HubSpotError(404, f"No route for {method} {path}", "OBJECT_NOT_FOUND")

    def _properties_param(self, query: dict, key: str = "properties") -> list[str]:
        return [name for value in query.get(key, []) for name in value.split(",") if name]

    def _list(self, object_type: str, query: dict) -> dict:
        limit = int(query.get("limit", ["10"])[0])
        if limit > MAX_PAGE:
            limit = MAX_PAGE
        after = int(query.get("after", ["0"])[0] or 0)
        archived = query.get("archived", ["false"])[0].lower() == "true"
        names = self._properties_param(query)
        with_assoc = self._properties_param(query, "associations")
        with self._lock:
            ids = self._ids[object_type]
            position = bisect.bisect_right(ids, after)
            results = []
            last = None
            while position < len(ids) and len(results) < limit:
                record = self.records[object_type][ids[position]]
                position += 1
                if (record.archived_at is not None) == archived:
                    results.append(record.public(object_type, names, with_assoc))
                    last = record.id
            more = position < len(ids)
        answer: dict[str, Any] = {"results": results}
        if more and last is not None:
            answer["paging"] = {"next": {"after": str(last), "link": "?after=" + str(last)}}
        return answer

    def _read_one(self, object_type: str, raw_id: str, query: dict) -> dict:
        with self._lock:
            record_id = int(raw_id)
            record_id = self._merged_into[object_type].get(record_id, record_id)
            record = self.records[object_type].get(record_id)
            if record is None or record.archived_at is not None:
                raise HubSpotError(404, "Object not found.", "OBJECT_NOT_FOUND")
            return record.public(object_type, self._properties_param(query), [])

    def _search(self, object_type: str, body: dict) -> dict:
        limit = int(body.get("limit") or 10)
        if limit > MAX_SEARCH_PAGE:
            raise HubSpotError(400, f"limit must be <= {MAX_SEARCH_PAGE}", "VALIDATION_ERROR")
        after = int(body.get("after") or 0)
        if after + limit > SEARCH_CAP or after >= SEARCH_CAP:
            # HubSpot: "Attempting to page beyond 10,000 will result in a 400 error."
            raise HubSpotError(
                400,
                "There was a problem with the request. Paging past 10000 results is not supported.",
                "VALIDATION_ERROR",
            )
        sorts = body.get("sorts") or []
        if len(sorts) > 1:
            raise HubSpotError(
                400, "Only one sort rule can be applied to a search.", "VALIDATION_ERROR"
            )
        groups = body.get("filterGroups") or []
        if len(groups) > 5 or any(len(g.get("filters", [])) > 6 for g in groups):
            raise HubSpotError(400, "Too many filter groups or filters.", "VALIDATION_ERROR")
        with self._lock:
            matched = [
                record
                for record in self.records[object_type].values()
                if record.archived_at is None
                and (
                    not groups
                    or any(
                        all(_matches(record, object_type, f) for f in g.get("filters", []))
                        for g in groups
                    )
                )
            ]
            if sorts:
                sort = sorts[0]
                name = sort.get("propertyName")
                descending = sort.get("direction") == "DESCENDING"
                numeric = name in ("hs_object_id", MODIFIED_PROPERTY[object_type], "createdate")

                def key(record: RemoteRecord):
                    value = record.value(object_type, name)
                    return int(value) if numeric and value is not None else (value or "")

                # Ties keep HubSpot's unspecified order: here, newest id first, so a client
                # that relies on a stable tie order is caught.
                matched.sort(key=lambda r: -r.id)
                matched.sort(key=key, reverse=descending)
            else:
                matched.sort(key=lambda r: r.id)
            page = matched[after : after + limit]
            names = body.get("properties") or []
            results = [record.public(object_type, names, []) for record in page]
        answer: dict[str, Any] = {"total": len(matched), "results": results}
        if after + limit < len(matched):
            answer["paging"] = {"next": {"after": str(after + limit), "link": ""}}
        return answer

    def _batch(self, object_type: str, action: str, body: dict) -> tuple[int, Any]:
        inputs = body.get("inputs")
        if not isinstance(inputs, list):
            raise HubSpotError(400, "inputs is required", "VALIDATION_ERROR")
        if len(inputs) > MAX_BATCH:
            raise HubSpotError(
                400,
                f"Batch size {len(inputs)} exceeds the limit of {MAX_BATCH}",
                "VALIDATION_ERROR",
            )
        started = iso(datetime.now(UTC))
        now = datetime.now(UTC)
        with self._lock:
            if action == "upsert":
                return self._upsert(object_type, inputs, now, started)
            if action == "create":
                if object_type == "contacts":
                    self._check_emails(inputs, exclude=set())
                self._check_unique(object_type, [(None, i.get("properties") or {}) for i in inputs])
                results = []
                for item in inputs:
                    record_id = self.put(object_type, item.get("properties") or {}, at=now)
                    for association in item.get("associations") or []:
                        to_id = int(association["to"]["id"])
                        to_type = _type_of_association(object_type, association)
                        self._associate(object_type, record_id, to_type, [to_id])
                    results.append(
                        self.records[object_type][record_id].public(
                            object_type, list(item.get("properties") or {}), []
                        )
                    )
                return 201, {
                    "status": "COMPLETE",
                    "results": results,
                    "startedAt": started,
                    "completedAt": iso(datetime.now(UTC)),
                }
            if action in ("update", "read", "archive"):
                missing = []
                results = []
                if action == "update" and object_type == "contacts":
                    self._check_emails(inputs, exclude={int(i["id"]) for i in inputs})
                if action == "update":
                    self._check_unique(
                        object_type,
                        [(int(i["id"]), i.get("properties") or {}) for i in inputs],
                    )
                for item in inputs:
                    record_id = int(item.get("id"))
                    record_id = self._merged_into[object_type].get(record_id, record_id)
                    record = self.records[object_type].get(record_id)
                    if record is None or (record.archived_at is not None and action != "archive"):
                        missing.append(str(item.get("id")))
                        continue
                    if action == "update":
                        record.properties.update(
                            {k: _text(v) for k, v in (item.get("properties") or {}).items()}
                        )
                        record.updated_at = now
                        results.append(
                            record.public(object_type, list(item.get("properties") or {}), [])
                        )
                    elif action == "read":
                        results.append(record.public(object_type, body.get("properties") or [], []))
                    elif record.archived_at is None:
                        record.archived_at = record.updated_at = now
                if action == "archive":
                    return 204, None
                answer: dict[str, Any] = {
                    "status": "COMPLETE",
                    "results": results,
                    "startedAt": started,
                    "completedAt": iso(datetime.now(UTC)),
                }
                if missing:
                    answer["numErrors"] = 1
                    answer["errors"] = [
                        {
                            "status": "error",
                            "category": "OBJECT_NOT_FOUND",
                            "message": "Could not get some "
                            + object_type
                            + " objects, they may be deleted or not exist.",
                            "context": {"ids": missing},
                        }
                    ]
                    return 207, answer
                return 200, answer
        raise HubSpotError(404, f"Unknown batch action {action}", "OBJECT_NOT_FOUND")

    def _unique_names(self, object_type: str) -> set[str]:
        return {n for n, p in self.properties[object_type].items() if p.get("hasUniqueValue")}

    def _check_unique(self, object_type: str, writes: list[tuple[int | None, dict]]) -> None:
        """A unique property's value may be held by one record only: (record id or None for
        a new record, the properties it gets)."""
        names = self._unique_names(object_type)
        if not names:
            return
        for name in names:
            holders = {
                r.properties[name]: r.id
                for r in self.records[object_type].values()
                if r.archived_at is None and r.properties.get(name)
            }
            seen: dict[str, int | None] = {}
            for record_id, properties in writes:
                value = _text(properties.get(name))
                if not value:
                    continue
                holder = holders.get(value)
                if (holder is not None and holder != record_id) or value in seen:
                    raise HubSpotError(
                        400,
                        "Property values were not valid: "
                        + json.dumps([{"isValid": False, "name": name,
                                       "error": "INVALID_UNIQUE_VALUE",
                                       "message": f"{value} already has that value."}]),
                        "VALIDATION_ERROR",
                    )  # fmt: skip
                seen[value] = record_id

    def _upsert(self, object_type: str, inputs: list[dict], now: datetime, started: str):
        """Create or update by a unique property's value; validated whole before any write."""
        plan = []
        for item in inputs:
            id_property, value = item.get("idProperty"), item.get("id")
            if not id_property or value in (None, ""):
                raise HubSpotError(
                    400, "Some required fields were not set: [idProperty, id]",
                    "VALIDATION_ERROR",
                )  # fmt: skip
            unique = id_property in self._unique_names(object_type) or (
                object_type == "contacts" and id_property == "email"
            )
            if not unique:
                raise HubSpotError(
                    400,
                    f"Unable to perform update/upsert by non-unique {OBJECT_TYPE_IDS[object_type]}"
                    f" property {id_property} in portal ID {PORTAL_ID}",
                    "VALIDATION_ERROR",
                )
            plan.append((id_property, str(value), item))
        keys = [(p, v.lower() if p == "email" else v) for p, v, _ in plan]
        twice = sorted({value for key in keys if keys.count(key) > 1 for value in key[1:]})
        if twice:
            raise HubSpotError(
                400, f"Duplicate IDs found in batch input: {twice}. IDs must be unique",
                "VALIDATION_ERROR",
            )  # fmt: skip
        targets = []
        for id_property, value, item in plan:
            match = next(
                (
                    r for r in self.records[object_type].values()
                    if r.archived_at is None
                    and (r.properties.get(id_property) or "").lower()
                    == (value.lower() if id_property == "email" else value)
                ),
                None,
            )  # fmt: skip
            properties = {**(item.get("properties") or {}), id_property: value}
            targets.append((match, properties, item))
        if object_type == "contacts":
            for match, properties, _ in targets:
                self._check_emails(
                    [{"properties": properties}], exclude={match.id} if match else set()
                )
        self._check_unique(object_type, [(m.id if m else None, p) for m, p, _ in targets])
        results = []
        for match, properties, item in targets:
            record_id = self.put(object_type, properties, id=match.id if match else None, at=now)
            body = self.records[object_type][record_id].public(object_type, list(properties), [])
            body["new"] = match is None
            if item.get("objectWriteTraceId"):
                body["objectWriteTraceId"] = item["objectWriteTraceId"]
            results.append(body)
        return 200, {
            "status": "COMPLETE",
            "results": results[::-1],  # HubSpot promises no order
            "startedAt": started,
            "completedAt": iso(datetime.now(UTC)),
        }

    def _property_read(self, object_type: str, name: str) -> dict:
        with self._lock:
            found = self.properties[object_type].get(name)
        if found is None:
            raise HubSpotError(
                404, f"Unable to find property {name} on object type {object_type}",
                "OBJECT_NOT_FOUND",
            )  # fmt: skip
        return found

    def _property_create(self, object_type: str, body: dict) -> dict:
        missing = [
            k for k in ("name", "label", "type", "fieldType", "groupName") if not body.get(k)
        ]
        if missing:
            raise HubSpotError(
                400, f"Some required fields were not set: {missing}", "VALIDATION_ERROR"
            )
        name = body["name"]
        with self._lock:
            if name in self.properties[object_type] or name in DEFAULT_PROPERTIES[object_type]:
                raise HubSpotError(
                    409, f"Property named '{name}' already exists.", "OBJECT_ALREADY_EXISTS"
                )
            if body.get("hasUniqueValue"):
                if body["type"] not in ("string", "number"):
                    raise HubSpotError(
                        400, "Only string and number properties can have unique values.",
                        "VALIDATION_ERROR",
                    )  # fmt: skip
                if len(self._unique_names(object_type)) >= MAX_UNIQUE_PROPERTIES:
                    raise HubSpotError(
                        400, f"At most {MAX_UNIQUE_PROPERTIES} unique value properties per "
                        "object type.", "VALIDATION_ERROR",
                    )  # fmt: skip
            now = iso(datetime.now(UTC))
            created = {
                "name": name, "label": body["label"], "type": body["type"],
                "fieldType": body["fieldType"], "groupName": body["groupName"],
                "description": body.get("description", ""), "options": [],
                "hasUniqueValue": bool(body.get("hasUniqueValue")),
                "hidden": bool(body.get("hidden")), "formField": bool(body.get("formField")),
                "displayOrder": body.get("displayOrder", -1), "calculated": False,
                "externalOptions": False, "hubspotDefined": False, "archived": False,
                "createdAt": now, "updatedAt": now,
                "modificationMetadata": {"archivable": True, "readOnlyDefinition": False,
                                         "readOnlyValue": False},
            }  # fmt: skip
            self.properties[object_type][name] = created
            return created

    def _association_default(self, from_type: str, to_type: str, body: dict) -> tuple[int, Any]:
        """The default association between pairs of records (associating twice is a no-op)."""
        inputs = body.get("inputs") or []
        if len(inputs) > MAX_BATCH:
            raise HubSpotError(400, f"Batch size exceeds {MAX_BATCH}", "VALIDATION_ERROR")
        if (from_type, to_type) not in ASSOCIATION_TYPE_IDS:
            raise HubSpotError(400, f"Unknown association {from_type} to {to_type}",
                               "VALIDATION_ERROR")  # fmt: skip
        results, missing = [], []
        with self._lock:
            for item in inputs:
                from_id, to_id = int(item["from"]["id"]), int(item["to"]["id"])
                source = self.records[from_type].get(from_id)
                target = self.records[to_type].get(to_id)
                if source is None or target is None:
                    missing.append(str(from_id if source is None else to_id))
                    continue
                self._associate(from_type, from_id, to_type, [to_id])
                type_id = ASSOCIATION_TYPE_IDS[(from_type, to_type)]
                results.append({
                    "from": {"id": str(from_id)}, "to": {"id": str(to_id)},
                    "associationSpec": {"associationCategory": "HUBSPOT_DEFINED",
                                        "associationTypeId": type_id},
                })  # fmt: skip
        answer: dict[str, Any] = {"status": "COMPLETE", "results": results,
                                  "startedAt": iso(datetime.now(UTC)),
                                  "completedAt": iso(datetime.now(UTC))}  # fmt: skip
        if missing:
            answer["numErrors"] = len(missing)
            answer["errors"] = [
                {"status": "error", "category": "OBJECT_NOT_FOUND",
                 "message": "No such object", "context": {"ids": missing}}
            ]  # fmt: skip
            return 207, answer
        return 200, answer

    def _association_archive(self, from_type: str, to_type: str, body: dict) -> tuple[int, Any]:
        """Removes every association between each `from` and the ids of its `to` list (the
        v4 shape: one source, several targets); validated whole before anything is removed."""
        inputs = body.get("inputs")
        if not isinstance(inputs, list) or not inputs:
            raise HubSpotError(400, "Some required fields were not set: [inputs]",
                               "VALIDATION_ERROR")  # fmt: skip
        if len(inputs) > MAX_BATCH:
            raise HubSpotError(400, f"Batch size exceeds {MAX_BATCH}", "VALIDATION_ERROR")
        if (from_type, to_type) not in ASSOCIATION_TYPE_IDS:
            raise HubSpotError(400, f"Unknown association {from_type} to {to_type}",
                               "VALIDATION_ERROR")  # fmt: skip
        pairs = []
        for index, item in enumerate(inputs):
            source = item.get("from") if isinstance(item, dict) else None
            targets = item.get("to") if isinstance(item, dict) else None
            valid = (
                isinstance(source, dict) and _is_id(source.get("id"))
                and isinstance(targets, list) and targets
                and all(isinstance(t, dict) and _is_id(t.get("id")) for t in targets)
            )  # fmt: skip
            if not valid:
                raise HubSpotError(
                    400, f"Invalid input at inputs[{index}]: expected from {{id}} and to "
                    "[{id}, ...]", "VALIDATION_ERROR",
                )  # fmt: skip
            pairs.append((int(source["id"]), [int(t["id"]) for t in targets]))
        with self._lock:
            for from_id, to_ids in pairs:
                self._dissociate(from_type, from_id, to_type, to_ids)
        return 204, None

    def _check_emails(self, inputs: list[dict], *, exclude: set[int]) -> None:
        by_email = {
            (r.properties.get("email") or "").lower(): r.id
            for r in self.records["contacts"].values()
            if r.archived_at is None and r.properties.get("email")
        }
        for item in inputs:
            email = ((item.get("properties") or {}).get("email") or "").lower()
            existing = by_email.get(email)
            if email and existing is not None and existing not in exclude:
                raise HubSpotError(
                    409, f"Contact already exists. Existing ID: {existing}", "CONFLICT"
                )

    def _association_read(self, from_type: str, to_type: str, body: dict) -> dict:
        inputs = body.get("inputs") or []
        if len(inputs) > 1000:
            raise HubSpotError(400, "Batch size exceeds 1000", "VALIDATION_ERROR")
        type_id = ASSOCIATION_TYPE_IDS.get((from_type, to_type), 0)
        results = []
        with self._lock:
            for item in inputs:
                record = self.records.get(from_type, {}).get(int(item["id"]))
                if record is None:
                    continue
                targets = sorted(record.associations.get(to_type, ()))
                if targets:
                    results.append(
                        {
                            "from": {"id": str(record.id)},
                            "to": [
                                {
                                    "toObjectId": target,
                                    "associationTypes": [
                                        {
                                            "category": "HUBSPOT_DEFINED",
                                            "typeId": type_id,
                                            "label": None,
                                        }
                                    ],
                                }
                                for target in targets
                            ],
                        }
                    )
        return {
            "status": "COMPLETE",
            "results": results,
            "startedAt": iso(datetime.now(UTC)),
            "completedAt": iso(datetime.now(UTC)),
        }

    def _owners(self, query: dict) -> dict:
        limit = min(int(query.get("limit", ["100"])[0]), 500)
        after = int(query.get("after", ["0"])[0] or 0)
        with self._lock:
            page = self.owners[after : after + limit]
            more = after + limit < len(self.owners)
        answer: dict[str, Any] = {"results": page}
        if more:
            answer["paging"] = {"next": {"after": str(after + limit)}}
        return answer


def _type_of_association(object_type: str, association: dict) -> str:
    type_id = association["types"][0]["associationTypeId"]
    for (from_type, to_type), known in ASSOCIATION_TYPE_IDS.items():
        if from_type == object_type and known == type_id:
            return to_type
    raise HubSpotError(400, f"Unknown association type {type_id}", "VALIDATION_ERROR")


def _is_id(value: Any) -> bool:
    return isinstance(value, str | int) and str(value).isdigit()


def _text(value: Any) -> str:
    return "" if value is None else str(value)


CONTENT_TYPE = "application/json;charset=utf-8"


class _Handler(QuietHandler):
    protocol_version = "HTTP/1.1"

    def _serve(self) -> None:
        status, body, headers = self.server.fake.handle(
            self.command, self.path, self.headers, self.body()
        )
        if status is None:  # the answer is lost: the connection closes unanswered
            self.close_connection = True
            return
        data = b"" if body is None else json.dumps(body).encode()
        self.write(Reply(status, data, {**headers, "Content-Type": CONTENT_TYPE}))

    do_GET = do_POST = do_PATCH = do_DELETE = _serve


FakeHubSpot.handler = _Handler  # defined after the class, which names it
