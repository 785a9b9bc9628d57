"""Salesforce: Leads and Contacts -> customers (a new CRM lead becomes a Lead, anyone else a
Contact), Opportunities -> deals (through their primary ContactId), Users -> users by email;
Accounts give their name to their contacts' company on the first import.

Opportunity.ContactId can be set on a create only: Salesforce derives it from the primary
OpportunityContactRole. A deal moved to another customer makes that customer's Contact the
primary role and deletes the former customer's role.

Reads are SOQL through query/queryMore, keyset-paged by Id (ORDER BY Id, Id > last): a saved
position is the last Id, valid whatever time passes, where a queryMore locator expires.
Changes are windows of SystemModstamp; deletions come from getDeleted; writes are sObject
collections of up to 200 records."""

from datetime import UTC, date, datetime, timedelta

from integrations.clients.limits import RemoteError
from integrations.clients.salesforce import SalesforceClient
from integrations.mapping import CUSTOMER_FIELDS, SALE_FIELDS, normalise, split_name
from integrations.mapping import stage_to_remote as _stage_to_remote
from integrations.providers.base import ObjectSpec, Page, PushResult, Remote

PAGE = 2000
ROLE = "OpportunityContactRole"
COLLECTION = 200  # records an sObject Collections call takes
MERGEABLE = ("Lead", "Contact")  # Opportunities cannot be merged; Accounts only name companies
NO_OPINION_WHEN_EMPTY = ("name", "email", "lifecycle_stage", "title", "status", "company")
SYSTEM_FIELDS = {
    "Lead": [
        "Id",
        "SystemModstamp",
        "FirstName",
        "LastName",
        "Email",
        "OwnerId",
        "IsConverted",
        "ConvertedContactId",
    ],
    "Contact": ["Id", "SystemModstamp", "FirstName", "LastName", "Email", "OwnerId", "AccountId"],
    "Opportunity": ["Id", "SystemModstamp", "StageName", "OwnerId", "ContactId"],
    "Account": ["Id", "SystemModstamp", "Name"],
}


# The CRM's record key on every record the sync creates: a custom field the org's admin adds
# to Lead, Contact and Opportunity as External ID and Unique (README). Creates are upserts
# on it, so a batch sent twice (its answer lost, or the worker killed before the ledger kept
# the new ids) finds the records the first one made.
EXTERNAL_ID = "CRM_Record_Id__c"


def _moment(text: str | None) -> datetime | None:
    if not text:
        return None
    if text[-5] in "+-" and text[-3] != ":":
        text = text[:-2] + ":" + text[-2:]
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def _id(value: str) -> str:
    """A Salesforce id for a SOQL literal: they are alphanumeric, anything else is refused."""
    if not (isinstance(value, str) and value.isalnum() and len(value) in (15, 18)):
        raise RemoteError(f"Not a Salesforce id: {value!r}")
    return value


def _soql_time(ms: int) -> str:
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class SalesforceProvider:
    OBJECTS = (
        ObjectSpec("Lead", "customer", 200),
        ObjectSpec("Contact", "customer", 200),
        ObjectSpec("Opportunity", "sale", 200),
    )
    COMPANIES = "Account"
    DEAL_PARENT = "Contact"

    def __init__(self, *, connection, secrets, field_map, stage_map, sleep=None):
        kwargs = {"sleep": sleep} if sleep else {}
        self._client_args = {"auth_flow": connection.auth_flow, "domain": connection.domain,
                             "secrets": secrets, **kwargs}  # fmt: skip
        self._client: SalesforceClient | None = None
        self.field_map = field_map
        self.stage_map = stage_map
        # Objects whose EXTERNAL_ID field was found: read with the rest from then on (a SOQL
        # naming a field the org lacks fails whole).
        self.id_fields = {k for k, ok in connection.cursors.get("id_fields", {}).items() if ok}

    @property
    def client(self) -> SalesforceClient:
        if self._client is None:  # signs in on first use
            self._client = SalesforceClient(**self._client_args)
        return self._client

    @property
    def api_calls(self) -> int:
        return self._client.calls if self._client else 0

    def test(self) -> str:
        answer = self.client.query("SELECT Id FROM User LIMIT 1")
        return f"Connected: {answer.get('totalSize', 0)} user(s) visible."

    # -- reading -------------------------------------------------------------------------------

    def _fields(self, sobject: str) -> list[str]:
        key = [EXTERNAL_ID] if sobject in self.id_fields else []
        return list(
            dict.fromkeys([*SYSTEM_FIELDS[sobject], *self.field_map.get(sobject, {}), *key])
        )

    def _select(self, sobject: str, where: list[str], limit: int = PAGE) -> list[dict]:
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        fields = ", ".join(self._fields(sobject))
        soql = f"SELECT {fields} FROM {sobject}{clause} ORDER BY Id LIMIT {limit}"
        return self.client.query(soql).get("records", [])

    def to_remote(self, sobject: str, raw: dict) -> Remote:
        kinds = CUSTOMER_FIELDS if sobject in ("Lead", "Contact") else SALE_FIELDS
        values = {
            local: normalise(kinds.get(local, "text"), raw.get(remote))
            for remote, local in self.field_map.get(sobject, {}).items()
        }
        record = Remote(id=raw["Id"], modified=_moment(raw.get("SystemModstamp")), values=values,
                        owner_remote_id=raw.get("OwnerId") or "",
                        local_key=raw.get(EXTERNAL_ID) or "")  # fmt: skip
        if sobject in ("Lead", "Contact"):
            name = " ".join(p for p in (raw.get("FirstName"), raw.get("LastName")) if p)
            values["name"] = normalise("text", name)
            record.email = values.get("email", "")
            if sobject == "Lead":
                values["lifecycle_stage"] = "lead"
                if raw.get("IsConverted") and raw.get("ConvertedContactId"):
                    record.converted_to = ("Contact", raw["ConvertedContactId"])
            record.parent_remote_id = raw.get("AccountId") or ""
        elif sobject == "Opportunity":
            values["status"] = self.stage_map.get(raw.get("StageName") or "", "")
            record.parent_remote_id = raw.get("ContactId") or ""
        else:
            values["name"] = normalise("text", raw.get("Name"))
        for name in NO_OPINION_WHEN_EMPTY:
            if values.get(name) == "":
                del values[name]
        return record

    def total(self, remote_type: str) -> int:
        return int(self.client.query(f"SELECT COUNT() FROM {remote_type}").get("totalSize", 0))

    def first_page(self, remote_type: str, cursor) -> Page:
        sobject = self.COMPANIES if remote_type == "companies" else remote_type
        where = [f"Id > '{_id(cursor)}'"] if cursor else []
        rows = self._select(sobject, where)
        records = [self.to_remote(sobject, row) for row in rows]
        return Page(records, records[-1].id if len(rows) == PAGE else None)

    def changed_page(self, remote_type: str, *, start_ms: int, end_ms: int, cursor) -> Page:
        where = [
            f"SystemModstamp >= {_soql_time(start_ms)}",
            f"SystemModstamp < {_soql_time(end_ms)}",
        ]
        if cursor:
            where.append(f"Id > '{_id(cursor)}'")
        rows = self._select(remote_type, where)
        records = [self.to_remote(remote_type, row) for row in rows]
        return Page(records, records[-1].id if len(rows) == PAGE else None)

    def archived_page(
        self, remote_type: str, cursor, *, start_ms: int = 0, end_ms: int = 0
    ) -> Page:
        # getDeleted works in whole minutes: look back one more (a deletion seen twice is
        # found already unlinked the second time).
        start = datetime.fromtimestamp(start_ms / 1000, tz=UTC) - timedelta(minutes=1)
        end = datetime.fromtimestamp(end_ms / 1000, tz=UTC) + timedelta(minutes=1)
        start = max(start, end - timedelta(days=29))
        answer = self.client.deleted(remote_type, start, end)
        records = [
            Remote(id=row["id"], modified=_moment(row.get("deletedDate")), values={}, archived=True)
            for row in answer.get("deletedRecords", [])
        ]
        return Page(records, None)

    def merged_into(self, remote_type: str, deleted_ids: list[str]) -> dict[str, str]:
        """Deleted records that a merge took away -> the record they were merged into
        (MasterRecordId, read with queryAll: deleted records are in the recycle bin)."""
        if remote_type not in MERGEABLE:
            return {}
        found: dict[str, str] = {}
        for start in range(0, len(deleted_ids), 200):
            ids = ", ".join(f"'{_id(i)}'" for i in deleted_ids[start : start + 200])
            rows = self.client.query(
                f"SELECT Id, MasterRecordId FROM {remote_type} WHERE Id IN ({ids})",
                include_deleted=True,
            )
            found.update(
                {r["Id"]: r["MasterRecordId"] for r in rows["records"] if r.get("MasterRecordId")}
            )
        return found

    def owners(self) -> list[tuple[str, str, str]]:
        rows = self.client.query(
            "SELECT Id, Email, Name FROM User WHERE IsActive = true ORDER BY Id"
        )
        found = [
            (r["Id"], (r.get("Email") or "").lower(), r.get("Name") or "")
            for r in rows.get("records", [])
        ]
        return found

    # -- writing -------------------------------------------------------------------------------

    def owns_new(self, remote_type: str, values: dict) -> bool:
        """Which object a new CRM customer becomes: a lead a Lead, anyone else a Contact."""
        if remote_type == "Lead":
            return values.get("lifecycle_stage") == "lead"
        if remote_type == "Contact":
            return values.get("lifecycle_stage") != "lead"
        return True

    def _fields_for(self, sobject: str, values: dict, refs: dict, *, creating: bool) -> dict:
        reverse = {local: remote for remote, local in self.field_map.get(sobject, {}).items()}
        body: dict = {"attributes": {"type": sobject}}
        for local, value in values.items():
            if local == "name" and sobject in ("Lead", "Contact"):
                first, last = split_name(value)
                body["FirstName"], body["LastName"] = first, last or first
            elif local == "status":
                stage = _stage_to_remote(self.stage_map, value)
                if stage:
                    body["StageName"] = stage
            elif local in ("owner_id", "assigned_to_id"):
                if refs.get("owner"):
                    body["OwnerId"] = refs["owner"]
            elif local == "customer_id":
                continue  # ContactId: on a create below, by contact roles afterwards
            elif local in reverse:
                body[reverse[local]] = value or None
        if creating:
            if sobject == "Lead" and not body.get("Company"):  # required on a Lead
                body["Company"] = values.get("company") or "[not provided]"
            if sobject == "Opportunity":
                body.setdefault("CloseDate", (date.today() + timedelta(days=30)).isoformat())
                body.setdefault(
                    "StageName", _stage_to_remote(self.stage_map, "NEW") or "Prospecting"
                )
                if refs.get("parent"):
                    body["ContactId"] = refs["parent"]
        return body

    def _results(self, answer: list, count: int) -> PushResult:
        now = datetime.now(UTC)
        ids, modified, errors = [], [], []
        for index in range(count):
            result = answer[index] if index < len(answer) else {}
            ok = result.get("success")
            ids.append(result.get("id") if ok else None)
            modified.append(now if ok else None)
            errors.append("" if ok else "; ".join(
                f"{e.get('statusCode')}: {e.get('message')}" for e in result.get("errors", [])
            ) or "Not written.")  # fmt: skip
        return PushResult(ids, modified, errors)

    def ensure_id_field(self, remote_type: str) -> None:
        """The org's EXTERNAL_ID field on the object, External ID and visible to the sync's
        user; adding a field is the org admin's (it needs their field-level security)."""
        fields = {f["name"]: f for f in self.client.describe(remote_type).get("fields", [])}
        found = fields.get(EXTERNAL_ID)
        if found is None or not found.get("externalId"):
            state = "is not marked External ID" if found else "is missing (or hidden from the user)"
            raise RemoteError(
                f"Salesforce's {remote_type}.{EXTERNAL_ID} {state}: add it as a Text(80) "
                "field marked External ID and Unique, visible to the sync's user, so records "
                "the CRM creates there are never created twice."
            )
        self.id_fields.add(remote_type)

    def push_create(self, remote_type: str, items: list[tuple[str, dict, dict]]) -> PushResult:
        """`items`: (key, values, refs); an upsert on EXTERNAL_ID = key, one call a batch."""
        records = [
            {**self._fields_for(remote_type, values, refs, creating=True), EXTERNAL_ID: key}
            for key, values, refs in items
        ]
        try:
            answer = self.client.upsert_collection(remote_type, EXTERNAL_ID, records)
        except RemoteError as error:
            return PushResult([None] * len(items), [None] * len(items), [str(error)] * len(items))
        return self._results(answer, len(items))

    def push_update(self, remote_type: str, items: list[tuple[str, dict, dict]]) -> PushResult:
        records = [
            {**self._fields_for(remote_type, v, r, creating=False), "Id": remote_id}
            for remote_id, v, r in items
        ]
        try:
            answer = self.client.collection("PATCH", records)
        except RemoteError as error:
            return PushResult([None] * len(items), [None] * len(items), [str(error)] * len(items))
        result = self._results(answer, len(items))
        if remote_type == "Opportunity":
            self._move_contact_roles(items, result)
        return result

    def _move_contact_roles(self, items, result: PushResult) -> None:
        """Opportunities moved to another customer ("customer_id" in their values): the new
        customer's Contact ("parent") becomes the primary contact role, made or promoted
        (Salesforce then demotes the other), and the former customer's ("old_parent") role
        is deleted; roles of other contacts stay. A failure fails the Opportunity, so the
        move is sent again; each step finds done what a first attempt did."""
        moves = {
            result.ids[index]: (index, refs["parent"], refs.get("old_parent"))
            for index, (_, values, refs) in enumerate(items)
            if result.ids[index] and "customer_id" in values and refs.get("parent")
        }
        if not moves:
            return
        try:
            roles = self._contact_roles(list(moves))
        except RemoteError as error:
            _fail(result, [index for index, _, _ in moves.values()], str(error))
            return
        made, promoted, doomed = [], [], []
        for opportunity, (index, new, old) in moves.items():
            theirs = [r for r in roles if r["OpportunityId"] == opportunity]
            role = next((r for r in theirs if r["ContactId"] == new), None)
            if role is None:
                made.append((index, {"attributes": {"type": ROLE}, "OpportunityId": opportunity,
                                     "ContactId": new, "IsPrimary": True}))  # fmt: skip
            elif not role.get("IsPrimary"):
                promoted.append(
                    (index, {"attributes": {"type": ROLE}, "Id": role["Id"], "IsPrimary": True})
                )
            if old and old != new:
                doomed += [(index, r["Id"]) for r in theirs if r["ContactId"] == old]
        self._write_roles("POST", made, result)
        self._write_roles("PATCH", promoted, result)
        # The old role goes only once the new one is primary (else the deal had no contact).
        self._write_roles("DELETE", [(i, role) for i, role in doomed if result.ids[i]], result)

    def _contact_roles(self, opportunity_ids: list[str]) -> list[dict]:
        found = []
        for start in range(0, len(opportunity_ids), COLLECTION):
            ids = ", ".join(f"'{_id(i)}'" for i in opportunity_ids[start : start + COLLECTION])
            found += self.client.query_every(
                f"SELECT Id, OpportunityId, ContactId, IsPrimary FROM {ROLE} "
                f"WHERE OpportunityId IN ({ids}) ORDER BY Id"
            )
        return found

    def _write_roles(self, method: str, writes: list[tuple[int, object]], result) -> None:
        """`writes`: (the Opportunity's position in `result`, a role record or, to delete,
        a role id)."""
        for start in range(0, len(writes), COLLECTION):
            chunk = writes[start : start + COLLECTION]
            try:
                if method == "DELETE":
                    answer = self.client.collection(method, ids=[role for _, role in chunk])
                else:
                    answer = self.client.collection(method, [role for _, role in chunk])
            except RemoteError as error:
                _fail(result, [index for index, _ in chunk], str(error))
                continue
            written = self._results(answer, len(chunk))
            for (index, _), error in zip(chunk, written.errors, strict=True):
                if error:
                    _fail(result, [index], error)

    def push_delete(self, remote_type: str, remote_ids: list[str]) -> None:
        self.client.collection("DELETE", ids=remote_ids)


def _fail(result: PushResult, indexes: list[int], message: str) -> None:
    for index in indexes:
        result.ids[index] = None
        result.errors[index] = f"Its contact role was not moved: {message}"
