"""A local stand-in for Salesforce's REST API, so tests drive `simple-salesforce` over real
HTTP without touching the network (simple-salesforce builds https:// URLs; the connection's
requests session routes them here, see integrations.clients.salesforce).

Covered, with Salesforce's limits and error shapes (a JSON array of {message, errorCode}):
- `POST /services/oauth2/token`: client credentials (HTTP Basic) and the username-password
  flow (password + security token); `invalid_client` / `invalid_grant` errors.
- `GET /services/data/vXX.X/query/?q=`: the SOQL the sync sends (SELECT fields FROM object
  [WHERE SystemModstamp >= / < datetime AND Id > 'id'] ORDER BY Id [LIMIT n]); batches of
  2,000 with `nextRecordsUrl` (query_more).
- `GET /services/data/vXX.X/queryAll/?q=`: the same, deleted and merged-away records too
  (`IsDeleted`, `MasterRecordId`).
- `GET /services/data/vXX.X/sobjects/{type}/deleted/?start=&end=`: deleted records.
- `GET /services/data/vXX.X/sobjects/{type}/describe`: the fields, with `externalId` and
  `unique` (the org's custom fields are `custom_fields`: by default the CRM's external id
  field `CRM_Record_Id__c`, External ID and Unique, on Lead, Contact and Opportunity).
- `/services/data/vXX.X/composite/sobjects`: POST (create), PATCH (update), DELETE (?ids=):
  at most 200 records, per-record results with errors (required fields missing, a unique
  field's value on a second record: DUPLICATE_VALUE, a converted Lead:
  CANNOT_UPDATE_CONVERTED_LEAD; a create-only field in an update:
  INVALID_FIELD_FOR_INSERT_UPDATE; a reference to no live record: INVALID_CROSS_REFERENCE_KEY).
- Opportunity contact roles: `Opportunity.ContactId` is create-only and derived from the
  primary OpportunityContactRole (Salesforce's object reference): an Opportunity created with
  one gets a primary role for it; making a role primary makes the others not, and a change of
  the primary contact changes the Opportunity's ContactId and SystemModstamp. A role's
  OpportunityId is create-only too.
- `PATCH /services/data/vXX.X/composite/sobjects/{type}/{externalIdField}`: upsert of up to
  200 records of that type on an External ID field (a field that is not one answers 404
  NOT_FOUND for the request); per record `created`, or DUPLICATE_EXTERNAL_ID when several
  records hold the value; `allOrNone` rolls back the whole request on any failure.
- Every answer carries `Sforce-Limit-Info: api-usage=n/limit`; past the daily limit, 403
  REQUEST_LIMIT_EXCEEDED. `fail_next` injects failures; `lose_answer_next` applies a
  request and drops the connection unanswered.

Tests change the org directly: `put`, `delete`, `convert_lead` (the Lead is kept, read-only,
with IsConverted and the ids of the Contact and Account it became), `merge` (the merged-away
records are deleted with MasterRecordId naming the survivor).
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
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fakes.base import FakeServer, QuietHandler, Reply

PREFIXES = {"Account": "001", "Contact": "003", "User": "005", "Opportunity": "006", "Lead": "00Q",
            "OpportunityContactRole": "00K"}  # fmt: skip
ROLE = "OpportunityContactRole"
BATCH = 2000
MAX_COLLECTION = 200
SOQL = re.compile(
    r"^SELECT\s+(?P<fields>.+?)\s+FROM\s+(?P<object>\w+)"
    r"(?:\s+WHERE\s+(?P<where>.+?))?"
    r"(?:\s+ORDER\s+BY\s+(?P<order>\w+))?"
    r"(?:\s+LIMIT\s+(?P<limit>\d+))?\s*$",
    re.IGNORECASE | re.DOTALL,
)
EXTERNAL_ID_FIELD = "CRM_Record_Id__c"
# Fields a create needs, per object (what the org's page layouts cannot waive).
REQUIRED = {"Contact": ["LastName"], "Lead": ["LastName", "Company"],
            "Opportunity": ["Name", "StageName", "CloseDate"], "Account": ["Name"],
            ROLE: ["OpportunityId", "ContactId"]}  # fmt: skip
# Fields a create may set and an update may not ("Create" without "Update" in the reference).
CREATE_ONLY = {"Opportunity": ["ContactId"], ROLE: ["OpportunityId"]}
# Reference fields and the object whose live record each must name.
REFERENCES = {"Opportunity": {"ContactId": "Contact"},
              ROLE: {"OpportunityId": "Opportunity", "ContactId": "Contact"}}  # fmt: skip
STANDARD_FIELDS = {
    "Lead": ["Id", "FirstName", "LastName", "Email", "Phone", "Company", "Title", "Website",
             "OwnerId", "IsConverted", "ConvertedContactId", "ConvertedAccountId",
             "ConvertedDate", "MasterRecordId", "IsDeleted", "SystemModstamp"],
    "Contact": ["Id", "FirstName", "LastName", "Email", "Phone", "Title", "AccountId",
                "OwnerId", "MasterRecordId", "IsDeleted", "SystemModstamp"],
    "Account": ["Id", "Name", "OwnerId", "MasterRecordId", "IsDeleted", "SystemModstamp"],
    "Opportunity": ["Id", "Name", "Amount", "StageName", "CloseDate", "ContactId",
                    "AccountId", "OwnerId", "IsDeleted", "SystemModstamp"],
    "User": ["Id", "Name", "Email", "IsActive"],
    ROLE: ["Id", "OpportunityId", "ContactId", "IsPrimary", "Role", "IsDeleted",
           "SystemModstamp"],
}  # fmt: skip
CONDITION = re.compile(
    r"^(\w+)\s*(>=|<=|>|<|=|!=|\s+IN\s+)\s*('(?:[^'\\]|\\.)*'|\([^)]*\)|\S+)$", re.IGNORECASE
)


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
            elif name == "IsDeleted":
                body[name] = self.deleted_at is not None
            elif name == "IsConverted":
                body[name] = bool(self.fields.get(name))
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


class FakeSalesforce(FakeServer):
    name = "fake-salesforce"

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
        super().__init__()
        self._lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.records: dict[str, dict[str, SObject]] = {t: {} for t in PREFIXES}
            self._counter = 0
            self.tokens: set[str] = set()
            self.used = 0
            self._failures: deque[tuple[int, list]] = deque()
            self.requests: list[tuple[str, str, float]] = []
            self._cursors: dict[str, tuple[list[dict], int]] = {}
            self.custom_fields: dict[str, dict[str, dict[str, Any]]] = {
                sobject: {EXTERNAL_ID_FIELD: {"externalId": True, "unique": True}}
                for sobject in ("Lead", "Contact", "Opportunity")
            }
            self._lose: list[str] = []

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
            if sobject == "Opportunity" and fields.get("ContactId"):
                # Made on a create (or, from a test, by a user): the primary contact role.
                self._make_primary(record.id, fields["ContactId"], now)
            elif sobject == ROLE:
                if fields.get("IsPrimary"):
                    for other in self._roles(record.fields.get("OpportunityId")):
                        if other is not record and other.fields.get("IsPrimary"):
                            other.fields["IsPrimary"] = False
                            other.modstamp = now
                self._derive_contact(record.fields.get("OpportunityId"), now)
            return record.id

    def delete(self, sobject: str, record_id: str, at: datetime | None = None) -> None:
        with self._lock:
            record = self.records[sobject][record_id]
            record.deleted_at = at or datetime.now(UTC)
            if sobject == ROLE:
                self._derive_contact(record.fields.get("OpportunityId"), record.deleted_at)

    def roles(self, opportunity_id: str) -> dict[str, bool]:
        """An opportunity's live contact roles: contact id -> whether it is the primary."""
        with self._lock:
            return {
                r.fields["ContactId"]: bool(r.fields.get("IsPrimary"))
                for r in self._roles(opportunity_id)
            }

    def _roles(self, opportunity_id: str | None) -> list[SObject]:
        return [
            r for r in self.records[ROLE].values()
            if r.deleted_at is None and r.fields.get("OpportunityId") == opportunity_id
        ]  # fmt: skip

    def _make_primary(self, opportunity_id: str, contact_id: str, now: datetime) -> None:
        role = next(
            (r for r in self._roles(opportunity_id) if r.fields.get("ContactId") == contact_id),
            None,
        )
        self.put(ROLE, {"OpportunityId": opportunity_id, "ContactId": contact_id,
                        "IsPrimary": True}, id=role.id if role else None, at=now)  # fmt: skip

    def _derive_contact(self, opportunity_id: str | None, now: datetime) -> None:
        """Opportunity.ContactId follows the primary contact role (none: empty)."""
        opportunity = self.records["Opportunity"].get(opportunity_id or "")
        if opportunity is None:
            return
        primary = next((r for r in self._roles(opportunity.id) if r.fields.get("IsPrimary")), None)
        contact_id = primary.fields.get("ContactId") if primary else None
        if opportunity.fields.get("ContactId") != contact_id:
            opportunity.fields["ContactId"] = contact_id
            opportunity.modstamp = now

    def convert_lead(
        self,
        lead_id: str,
        *,
        contact_id: str | None = None,
        account_id: str | None = None,
        at: datetime | None = None,
    ) -> str:
        """Salesforce's lead conversion: the Lead becomes a Contact (a new one, or
        `contact_id`) of an Account (new, named after its Company, or `account_id`); the Lead
        stays, read-only, IsConverted with the ids it became. The Contact's id."""
        now = at or datetime.now(UTC)
        with self._lock:
            lead = self.records["Lead"][lead_id]
            if lead.fields.get("IsConverted"):
                raise ValueError("The Lead is converted already.")
            account_id = account_id or self.put(
                "Account", {"Name": lead.fields.get("Company") or "[not provided]"}, at=now
            )
            copied = {name: lead.fields.get(name) for name in
                      ("FirstName", "LastName", "Email", "Phone", "Title", "OwnerId")}  # fmt: skip
            if contact_id is None:
                contact_id = self.put("Contact", {**copied, "AccountId": account_id}, at=now)
            else:  # merged into an existing Contact: only its blank fields are filled
                contact = self.records["Contact"][contact_id]
                blanks = {k: v for k, v in copied.items() if not contact.fields.get(k)}
                self.put("Contact", {**blanks, "AccountId": contact.fields.get("AccountId")
                                     or account_id}, id=contact_id, at=now)  # fmt: skip
            lead.fields.update(IsConverted=True, ConvertedContactId=contact_id,
                               ConvertedAccountId=account_id,
                               ConvertedDate=now.date().isoformat())  # fmt: skip
            lead.modstamp = now
            return contact_id

    def merge(self, sobject: str, master_id: str, merged_id: str, at=None) -> None:
        """Salesforce's merge (Leads, Contacts, Accounts): the merged record is deleted with
        MasterRecordId naming the master; its Opportunities move to the master."""
        now = at or datetime.now(UTC)
        with self._lock:
            merged = self.records[sobject][merged_id]
            merged.fields["MasterRecordId"] = master_id
            merged.deleted_at = merged.modstamp = now
            self.records[sobject][master_id].modstamp = now
            if sobject == "Contact":  # its roles, and with them the ContactId they give
                for role in self.records[ROLE].values():
                    if role.deleted_at is None and role.fields.get("ContactId") == merged_id:
                        role.fields["ContactId"] = master_id
                        role.modstamp = now
                        self._derive_contact(role.fields.get("OpportunityId"), now)
            for opportunity in self.records["Opportunity"].values():
                if sobject == "Account" and opportunity.fields.get("AccountId") == merged_id:
                    opportunity.fields["AccountId"] = master_id
                    opportunity.modstamp = now

    def lose_answer_next(self, path_part: str) -> None:
        """Apply the next request whose path contains `path_part`, then drop the connection
        without an answer (the remote has the write; the client never learns of it)."""
        with self._lock:
            self._lose.append(path_part)

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
        with self._lock:
            lost = next((part for part in self._lose if part in path), None)
            if lost is not None:
                self._lose.remove(lost)
                return None, None, {}  # the handler closes the connection unanswered
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
        if rest in ("query", "queryAll") and method == "GET":
            return 200, self._query(query.get("q", [""])[0], include_deleted=rest == "queryAll")
        described = re.match(r"^sobjects/(\w+)/describe$", rest)
        if described and method == "GET":
            return 200, self._describe(described.group(1))
        upsert = re.match(r"^composite/sobjects/(\w+)/(\w+)$", rest)
        if upsert and method == "PATCH":
            return 200, self._upsert(upsert.group(1), upsert.group(2), body)
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

    def _query(self, soql: str, include_deleted: bool = False) -> dict:
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
                if (include_deleted or r.deleted_at is None)
                and all(_holds(r, *c) for c in conditions)
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
                        results.append(_failed("ENTITY_IS_DELETED", "entity is deleted",
                                               record_id=record_id))  # fmt: skip
                    else:
                        self.delete(record.type, record_id)
                        results.append({"id": record_id, "success": True, "errors": []})
            return results
        records = self._records_of(body)
        all_or_none = bool((body or {}).get("allOrNone"))
        now = datetime.now(UTC)
        with self._lock:
            plan = []
            for item in records:
                sobject = (item.get("attributes") or {}).get("type")
                if sobject not in PREFIXES:
                    plan.append((None, None, _failed("INVALID_TYPE", "type is required")))
                    continue
                values = {k: v for k, v in item.items() if k not in ("attributes", "Id")}
                if method == "POST":
                    plan.append((sobject, None, self._check_write(sobject, None, values)
                                 or values))  # fmt: skip
                    continue
                record = self.records[sobject].get(item.get("Id"))
                if record is None or record.deleted_at:
                    error = _failed("ENTITY_IS_DELETED", "entity is deleted",
                                    record_id=item.get("Id"))  # fmt: skip
                else:
                    error = self._check_write(sobject, record, values)
                plan.append((sobject, record, error or values))
            return self._apply(plan, all_or_none, now)

    def _records_of(self, body: Any) -> list[dict]:
        records = (body or {}).get("records")
        if not isinstance(records, list) or not records:
            raise SalesforceError(400, "records is required", "INVALID_FIELD")
        if len(records) > MAX_COLLECTION:
            raise SalesforceError(
                400, f"Maximum of {MAX_COLLECTION} records allowed", "EXCEEDED_MAX_SIZE_REQUEST"
            )
        return records

    def _check_write(self, sobject: str, record: SObject | None, values: dict) -> dict | None:
        """The per-record error of a create (record None) or an update, or None."""
        if record is not None and sobject == "Lead" and record.fields.get("IsConverted"):
            return _failed("CANNOT_UPDATE_CONVERTED_LEAD", "cannot reference converted lead",
                           record_id=record.id)  # fmt: skip
        if record is None:
            missing = [name for name in REQUIRED.get(sobject, []) if not values.get(name)]
            if missing:
                return _failed("REQUIRED_FIELD_MISSING",
                               f"Required fields are missing: [{', '.join(missing)}]",
                               fields=missing)  # fmt: skip
        else:
            fixed = [name for name in CREATE_ONLY.get(sobject, []) if name in values]
            if fixed:
                return _failed(
                    "INVALID_FIELD_FOR_INSERT_UPDATE",
                    f"Unable to create/update fields: {', '.join(fixed)}. Please check the "
                    "security settings of this field and verify that it is read/write for "
                    "your profile or permission set.",
                    fields=fixed, record_id=record.id,
                )  # fmt: skip
        for name, target in REFERENCES.get(sobject, {}).items():
            referenced = self.records[target].get(values.get(name) or "")
            if values.get(name) and (referenced is None or referenced.deleted_at):
                return _failed(
                    "INVALID_CROSS_REFERENCE_KEY", f"invalid cross reference id: {name}",
                    fields=[name], record_id=record.id if record else None,
                )  # fmt: skip
        for name, spec in self.custom_fields.get(sobject, {}).items():
            value = values.get(name)
            if not (spec.get("unique") and value):
                continue
            holder = next(
                (r for r in self.records[sobject].values()
                 if r.deleted_at is None and r is not record
                 and str(r.fields.get(name) or "").lower() == str(value).lower()),
                None,
            )  # fmt: skip
            if holder is not None:
                return _failed(
                    "DUPLICATE_VALUE",
                    f"duplicate value found: {name} duplicates value on record with id: "
                    f"{holder.id}",
                    fields=[name],
                    record_id=record.id if record else None,
                )
        return None

    def _apply(self, plan: list, all_or_none: bool, now: datetime) -> list[dict]:
        """plan: (sobject, record or None, values to write or a failed result)."""
        failed = any(isinstance(item, dict) and item.get("success") is False for *_, item in plan)
        results = []
        for sobject, record, item in plan:
            if isinstance(item, dict) and item.get("success") is False:
                results.append(item)
            elif all_or_none and failed:
                results.append(_failed("ALL_OR_NONE_OPERATION_ROLLED_BACK",
                                       "Record rolled back because not all records were valid "
                                       "and the request was using AllOrNone header"))  # fmt: skip
            else:
                record_id = self.put(sobject, item, id=record.id if record else None, at=now)
                results.append({"id": record_id, "success": True, "errors": []})
        return results

    def _describe(self, sobject: str) -> dict:
        if sobject not in PREFIXES:
            raise SalesforceError(
                404, f"The requested resource does not exist: {sobject}", "NOT_FOUND"
            )
        fields = [
            {"name": name, "type": "id" if name == "Id" else "string", "custom": False,
             "externalId": False, "unique": False, "idLookup": name in ("Id", "Email")}
            for name in STANDARD_FIELDS.get(sobject, ["Id"])
        ]  # fmt: skip
        for name, spec in self.custom_fields.get(sobject, {}).items():
            fields.append({"name": name, "type": "string", "length": 80, "custom": True,
                           "externalId": bool(spec.get("externalId")),
                           "unique": bool(spec.get("unique")),
                           "idLookup": bool(spec.get("externalId"))})  # fmt: skip
        return {"name": sobject, "custom": False, "createable": True, "updateable": True,
                "fields": fields}  # fmt: skip

    def _upsert(self, sobject: str, field_name: str, body: Any) -> list[dict]:
        """sObject Collections upsert on an External ID field: per record, the one record
        holding the value is updated, or a record is created holding it."""
        if sobject not in PREFIXES:
            raise SalesforceError(400, f"sObject type '{sobject}' is not supported.",
                                  "INVALID_TYPE")  # fmt: skip
        if not self.custom_fields.get(sobject, {}).get(field_name, {}).get("externalId"):
            raise SalesforceError(
                404,
                f"Provided external ID field does not exist or is not accessible: {field_name}",
                "NOT_FOUND",
            )
        records = self._records_of(body)
        all_or_none = bool((body or {}).get("allOrNone"))
        now = datetime.now(UTC)
        with self._lock:
            plan, seen = [], set()
            for item in records:
                if (item.get("attributes") or {}).get("type") != sobject:
                    plan.append((None, None, _failed(
                        "INVALID_TYPE", f"Records must all be of type {sobject}")))  # fmt: skip
                    continue
                if item.get("Id"):
                    plan.append((None, None, _failed(
                        "INVALID_FIELD", "Don't set the Id field in an upsert by external id",
                        fields=["Id"])))  # fmt: skip
                    continue
                key = str(item.get(field_name) or "")
                if not key:
                    plan.append((None, None, _failed(
                        "MISSING_ARGUMENT", f"{field_name} not specified",
                        fields=[field_name])))  # fmt: skip
                    continue
                if key.lower() in seen:
                    plan.append((None, None, _failed(
                        "DUPLICATE_EXTERNAL_ID", f"Duplicate external id specified: {key}",
                        fields=[field_name])))  # fmt: skip
                    continue
                seen.add(key.lower())
                holders = [
                    r for r in self.records[sobject].values()
                    if r.deleted_at is None and str(r.fields.get(field_name) or "").lower()
                    == key.lower()
                ]  # fmt: skip
                if len(holders) > 1:
                    plan.append((None, None, _failed(
                        "DUPLICATE_EXTERNAL_ID",
                        f"{field_name}: more than one record found for external id field: "
                        f"{[r.id for r in holders]}", fields=[field_name])))  # fmt: skip
                    continue
                record = holders[0] if holders else None
                values = {k: v for k, v in item.items() if k != "attributes"}
                plan.append((sobject, record,
                             self._check_write(sobject, record, values) or values))  # fmt: skip
            results = self._apply(plan, all_or_none, now)
        for (_, record, _), result in zip(plan, results, strict=True):
            if result.get("success"):
                result["created"] = record is None
        return results


def _failed(code: str, message: str, *, fields=None, record_id=None) -> dict:
    result = {
        "success": False,
        "errors": [{"statusCode": code, "message": message, "fields": fields or []}],
    }
    if record_id:
        result["id"] = record_id
    return result


def _holds(record: SObject, name: str, operator: str, raw: str) -> bool:
    if operator.strip().upper() == "IN":
        wanted = [item.strip().strip("'") for item in raw.strip("()").split(",")]
        return (record.id if name == "Id" else str(record.fields.get(name) or "")) in wanted
    if name == "IsDeleted":
        return str(record.deleted_at is not None).lower() == raw.lower()
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


CONTENT_TYPE = "application/json;charset=UTF-8"


class _Handler(QuietHandler):
    protocol_version = "HTTP/1.1"

    def _serve(self) -> None:
        status, body, headers = self.server.fake.handle(
            self.command, self.path, self.headers, self.body()
        )
        if status is None:  # the answer is lost: the connection closes unanswered
            self.close_connection = True
            return
        data = json.dumps(body).encode()
        self.write(Reply(status, data, {**headers, "Content-Type": CONTENT_TYPE}))

    do_GET = do_POST = do_PATCH = do_DELETE = _serve


FakeSalesforce.handler = _Handler  # defined after the class, which names it
