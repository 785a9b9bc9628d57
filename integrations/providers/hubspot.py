"""HubSpot: contacts -> customers, deals -> deals, owners -> users (by email); companies give
their name to their contacts' company field on the first import.

Changes are pulled by modified-time windows through the search endpoint, which answers at
most 10,000 results a query and applies one sort rule, so many records sharing one timestamp
cannot be paged by time (airbytehq/airbyte #43317). Within a window [start, end) we sort by
id and page with `after`; when the next page would pass the cap, the window is split at the
last id seen (a new query: id > last) and paging restarts at 0. The saved position is
(window, last id), so a killed run resumes from there."""

import re
from datetime import UTC, datetime

from integrations.clients.hubspot import HubSpotClient
from integrations.clients.limits import RemoteError
from integrations.mapping import (
    HUBSPOT_LIFECYCLE,
    LIFECYCLE_TO_HUBSPOT,
    normalise,
    split_name,
    stage_to_remote,
)
from integrations.providers.base import ObjectSpec, Page, PushResult, Remote

SEARCH_CAP = 10_000
SEARCH_PAGE = 200
MODIFIED = {"contacts": "lastmodifieddate", "deals": "hs_lastmodifieddate",
            "companies": "hs_lastmodifieddate"}  # fmt: skip
# CRM fields that cannot be empty, and the company, which a contact often has only through
# its associated company (filled in on the first import).
NO_OPINION_WHEN_EMPTY = ("name", "email", "lifecycle_stage", "title", "status", "company")
EXISTING_ID = re.compile(r"Existing ID: (\d+)")
# The CRM's record key on every record the sync creates, a property with unique values:
# creates are upserts on it, so a batch sent twice (its answer lost, or the worker killed
# before the ledger kept the new ids) finds the records the first one made.
ID_PROPERTY = "crm_record_id"
PROPERTY_GROUPS = {"contacts": "contactinformation", "companies": "companyinformation",
                   "deals": "dealinformation"}  # fmt: skip
# push_create's error for an input linked to the remote record that already had its email.
LINKED_EXISTING = "linked-existing"


def _moment(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


class HubSpotProvider:
    OBJECTS = (
        ObjectSpec("contacts", "customer", 100),
        ObjectSpec("deals", "sale", 100),
    )
    COMPANIES = "companies"
    DEAL_PARENT = "contacts"

    def __init__(self, *, secrets: dict, field_map: dict, stage_map: dict, sleep=None):
        kwargs = {"sleep": sleep} if sleep else {}
        self.client = HubSpotClient(access_token=secrets.get("access_token", ""), **kwargs)
        self.field_map = field_map
        self.stage_map = stage_map

    @property
    def api_calls(self) -> int:
        return self.client.calls

    def test(self) -> str:
        answer = self.client.owners(after=None)
        return f"Connected: {len(answer.get('results', []))} owner(s) visible on the first page."

    # -- reading -------------------------------------------------------------------------------

    def _properties(self, remote_type: str) -> list[str]:
        names = [*self.field_map.get(remote_type, {}), ID_PROPERTY]
        if remote_type == "contacts":
            names += ["firstname", "lastname", "email", "hubspot_owner_id", "hs_merged_object_ids"]
        elif remote_type == "deals":
            names += ["dealstage", "hubspot_owner_id", "hs_merged_object_ids"]
        else:
            names += ["name", "domain"]
        return sorted(set(names))

    def to_remote(self, remote_type: str, raw: dict) -> Remote:
        properties = raw.get("properties") or {}
        values: dict[str, str] = {}
        kinds = _kinds(remote_type)
        for remote_name, local in self.field_map.get(remote_type, {}).items():
            value = properties.get(remote_name)
            if local == "lifecycle_stage":
                value = HUBSPOT_LIFECYCLE.get(value or "", "")
            values[local] = normalise(kinds.get(local, "text"), value)
        record = Remote(
            id=str(raw["id"]),
            modified=_moment(raw.get("updatedAt")),
            values=values,
            owner_remote_id=properties.get("hubspot_owner_id") or "",
            merged_ids=[i for i in (properties.get("hs_merged_object_ids") or "").split(";") if i],
            archived=bool(raw.get("archived")),
            local_key=properties.get(ID_PROPERTY) or "",
        )
        if remote_type == "contacts":
            name = " ".join(
                part for part in (properties.get("firstname"), properties.get("lastname")) if part
            )
            values["name"] = normalise("text", name)
            record.email = values.get("email", "")
            companies = (raw.get("associations") or {}).get("companies", {}).get("results", [])
            if companies:
                record.parent_remote_id = str(companies[0]["id"])
        elif remote_type == "deals":
            values["status"] = self.stage_map.get(properties.get("dealstage") or "", "")
            contacts = (raw.get("associations") or {}).get("contacts", {}).get("results", [])
            _set_contacts(record, [str(c["id"]) for c in contacts])
        else:
            values["name"] = normalise("text", properties.get("name"))
        for required in NO_OPINION_WHEN_EMPTY:
            if values.get(required) == "":
                del values[required]  # an empty remote value is no opinion on a required field
        return record

    def first_page(self, remote_type: str, cursor) -> Page:
        associations = {"contacts": ["companies"], "deals": ["contacts"]}.get(remote_type)
        answer = self.client.page(
            remote_type,
            after=cursor,
            properties=self._properties(remote_type),
            associations=associations,
        )
        records = [self.to_remote(remote_type, raw) for raw in answer.get("results", [])]
        following = (answer.get("paging") or {}).get("next", {}).get("after")
        return Page(records, following)

    def total(self, remote_type: str) -> int:
        return int(self.client.search(remote_type, {"limit": 1}).get("total", 0))

    def changed_page(self, remote_type: str, *, start_ms: int, end_ms: int, cursor) -> Page:
        """`cursor`: {"last_id": id the current query starts after, "after": offset}."""
        cursor = cursor or {"last_id": "0", "after": 0}
        filters = [
            {"propertyName": MODIFIED[remote_type], "operator": "GTE", "value": str(start_ms)},
            {"propertyName": MODIFIED[remote_type], "operator": "LT", "value": str(end_ms)},
            {"propertyName": "hs_object_id", "operator": "GT", "value": str(cursor["last_id"])},
        ]
        body = {
            "filterGroups": [{"filters": filters}],
            "sorts": [{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
            "properties": self._properties(remote_type),
            "limit": SEARCH_PAGE,
        }
        if cursor["after"]:
            body["after"] = str(cursor["after"])
        answer = self.client.search(remote_type, body)
        raws = answer.get("results", [])
        records = [self.to_remote(remote_type, raw) for raw in raws]
        if remote_type == "deals" and records:
            contacts = self.client.associations("deals", "contacts", [r.id for r in records])
            for record in records:
                _set_contacts(record, contacts.get(record.id, []))
        if not (answer.get("paging") or {}).get("next"):
            return Page(records, None)
        following = cursor["after"] + len(raws)
        if following + SEARCH_PAGE > SEARCH_CAP:
            # Split the window at the last id seen: a new query, paging from 0 again.
            return Page(records, {"last_id": records[-1].id, "after": 0})
        return Page(records, {"last_id": cursor["last_id"], "after": following})

    def owns_new(self, remote_type: str, values: dict) -> bool:
        return True

    def archived_page(self, remote_type: str, cursor, **window) -> Page:
        answer = self.client.page(remote_type, after=cursor, properties=["email"], archived=True)
        records = [self.to_remote(remote_type, raw) for raw in answer.get("results", [])]
        for raw, record in zip(answer.get("results", []), records, strict=True):
            record.modified = _moment(raw.get("archivedAt")) or record.modified
        return Page(records, (answer.get("paging") or {}).get("next", {}).get("after"))

    def merged_into(self, remote_type: str, deleted_ids: list[str]) -> dict[str, str]:
        """HubSpot names merged ids on the survivor (`hs_merged_object_ids`), not on them."""
        return {}

    def owners(self) -> list[tuple[str, str, str]]:
        found, after = [], None
        while True:
            answer = self.client.owners(after=after)
            for owner in answer.get("results", []):
                name = f"{owner.get('firstName') or ''} {owner.get('lastName') or ''}".strip()
                found.append((str(owner["id"]), (owner.get("email") or "").lower(), name))
            after = (answer.get("paging") or {}).get("next", {}).get("after")
            if not after:
                return found

    # -- writing -------------------------------------------------------------------------------

    def _remote_properties(self, remote_type: str, values: dict[str, str], refs: dict) -> dict:
        properties: dict[str, str] = {}
        reverse = {local: remote for remote, local in self.field_map.get(remote_type, {}).items()}
        for local, value in values.items():
            if local == "name" and remote_type == "contacts":
                properties["firstname"], properties["lastname"] = split_name(value)
            elif local == "status":
                stage = stage_to_remote(self.stage_map, value)
                if stage:
                    properties["dealstage"] = stage
            elif local in ("owner_id", "assigned_to_id"):
                if refs.get("owner"):
                    properties["hubspot_owner_id"] = refs["owner"]
            elif local == "lifecycle_stage":
                properties["lifecyclestage"] = LIFECYCLE_TO_HUBSPOT.get(value, "lead")
            elif local == "expected_close_date" and value:
                properties["closedate"] = f"{value}T00:00:00.000Z"
            elif local in reverse:
                properties[reverse[local]] = value
        if remote_type == "deals" and "dealstage" in properties:
            properties.setdefault("pipeline", "default")
        return properties

    def ensure_id_field(self, remote_type: str) -> None:
        """The unique property holding the CRM's record key, created when missing."""
        try:
            found = self.client.property(remote_type, ID_PROPERTY)
        except RemoteError as error:
            if error.status != 404:
                raise
            try:
                self.client.property_create(remote_type, {
                    "name": ID_PROPERTY, "label": "CRM record id", "type": "string",
                    "fieldType": "text", "groupName": PROPERTY_GROUPS[remote_type],
                    "hasUniqueValue": True, "formField": False,
                    "description": "Set by the CRM's sync on the records it creates: "
                                   "their key in the CRM. Do not edit.",
                })  # fmt: skip
                return
            except RemoteError as clash:
                if clash.status != 409:  # made meanwhile by another run: read it again
                    raise
                found = self.client.property(remote_type, ID_PROPERTY)
        if not found.get("hasUniqueValue"):
            raise RemoteError(
                f"HubSpot's {remote_type} property {ID_PROPERTY} does not require unique "
                "values, so creates cannot be made safe to repeat: delete it (the sync "
                "makes it again) or make its values unique."
            )

    def push_create(self, remote_type: str, items: list[tuple[str, dict, dict]]) -> PushResult:
        """`items`: (key, values, refs): the CRM's record key (written to ID_PROPERTY: the
        write is an upsert on it), the values and remote ids in refs: "owner", "parent" (a
        deal's contact, associated after the upsert, which takes no associations). A
        contact whose email another contact has answers 409 for the whole batch; that
        contact is linked to the existing one and the rest sent again."""
        ids: list[str | None] = [None] * len(items)
        modified: list[datetime | None] = [None] * len(items)
        errors = [""] * len(items)
        pending = list(range(len(items)))
        while pending:
            inputs = [
                {"idProperty": ID_PROPERTY, "id": items[i][0], "objectWriteTraceId": items[i][0],
                 "properties": self._remote_properties(remote_type, items[i][1], items[i][2])}
                for i in pending
            ]  # fmt: skip
            try:
                answer = self.client.batch_upsert(remote_type, inputs)
            except RemoteError as error:
                clash = self._clashing(
                    error, [(i, _email_of(e)) for i, e in zip(pending, inputs, strict=True)]
                )
                if clash is None:
                    for index in pending:
                        errors[index] = str(error)
                    break
                index, existing_id = clash
                ids[index] = existing_id
                errors[index] = LINKED_EXISTING
                pending.remove(index)
                continue
            # HubSpot answers in no promised order: each result names its input's key.
            by_key = {
                result.get("objectWriteTraceId")
                or (result.get("properties") or {}).get(ID_PROPERTY): result
                for result in answer.get("results", [])
            }
            refused = " ".join(e.get("message", "") for e in answer.get("errors", []))
            for index in pending:
                result = by_key.get(items[index][0])
                if result is None:
                    errors[index] = refused or "HubSpot did not answer for this record."
                    continue
                ids[index] = str(result["id"])
                modified[index] = _moment(result.get("updatedAt"))
            break
        if remote_type == "deals":
            self._associate_contacts(items, ids, errors)
        return PushResult(ids, modified, errors)

    def _associate_contacts(self, items, ids: list[str | None], errors: list[str]) -> None:
        """Deals to their contacts, all of them each time (a no-op for those associated
        already): a deal whose association failed is left unlinked, so it is sent again."""
        pairs = [
            (index, ids[index], refs["parent"])
            for index, (_, _, refs) in enumerate(items)
            if ids[index] and refs.get("parent") and errors[index] != LINKED_EXISTING
        ]
        if not pairs:
            return
        try:
            answer = self.client.associate_default(
                "deals", "contacts", [(deal, contact) for _, deal, contact in pairs]
            )
        except RemoteError as error:
            for index, _, _ in pairs:
                ids[index], errors[index] = None, f"Not associated with its contact: {error}"
            return
        for problem in (answer or {}).get("errors", []):
            named = set((problem.get("context") or {}).get("ids", []))
            for index, deal, contact in pairs:
                if deal in named or contact in named:
                    message = problem.get("message", "")
                    ids[index], errors[index] = None, f"Not associated with its contact: {message}"

    def _clashing(self, error: RemoteError, emails: list[tuple[int, str]]):
        """(position, existing id) of the input a 409 "Contact already exists" is about."""
        existing = EXISTING_ID.search(str(error)) if error.status == 409 else None
        if existing is None:
            return None
        answer = self.client.search(
            "contacts",
            {"filterGroups": [{"filters": [{"propertyName": "hs_object_id", "operator": "EQ",
                                            "value": existing.group(1)}]}],
             "properties": ["email"], "limit": 1},
        )  # fmt: skip
        found = answer.get("results") or []
        email = ((found[0].get("properties") or {}).get("email") or "").lower() if found else ""
        index = next((i for i, e in emails if e and e == email), None)
        return None if index is None else (index, existing.group(1))

    def push_update(self, remote_type: str, items: list[tuple[str, dict, dict]]) -> PushResult:
        inputs = [
            {"id": remote_id, "properties": self._remote_properties(remote_type, values, refs)}
            for remote_id, values, refs in items
        ]
        try:
            answer = self.client.batch_update(remote_type, inputs)
        except RemoteError as error:
            return PushResult([None] * len(items), [None] * len(items), [str(error)] * len(items))
        by_id = {str(r["id"]): _moment(r.get("updatedAt")) for r in answer.get("results", [])}
        missing = {
            i for e in answer.get("errors", []) for i in (e.get("context") or {}).get("ids", [])
        }
        messages = {e.get("message", "") for e in answer.get("errors", [])}
        ids = [remote_id if remote_id in by_id else None for remote_id, _, _ in items]
        errors = [
            "" if remote_id in by_id else (" ".join(messages) if remote_id in missing else "")
            for remote_id, _, _ in items
        ]
        if remote_type == "deals":
            # A deal moved to another customer (or ours, left without its contact): the new
            # contact is associated first, then the old one let go, so a failure between the
            # two leaves the deal with both (the pull keeps the agreed one) and is sent again.
            moved = [(r, v, refs if "customer_id" in v else {}) for r, v, refs in items]
            self._associate_contacts(moved, ids, errors)
            self._dissociate_contacts(moved, ids, errors)
        return PushResult(ids, [by_id.get(remote_id) for remote_id, _, _ in items], errors)

    def _dissociate_contacts(self, items, ids: list[str | None], errors: list[str]) -> None:
        """Deals from the contact of the customer they were moved away from ("old_parent"):
        only that association goes, not contacts HubSpot's users added besides."""
        pairs = [
            (index, ids[index], refs["old_parent"])
            for index, (_, _, refs) in enumerate(items)
            if ids[index] and refs.get("old_parent") and refs["old_parent"] != refs.get("parent")
        ]
        if not pairs:
            return
        try:
            self.client.dissociate("deals", "contacts", [(deal, old) for _, deal, old in pairs])
        except RemoteError as error:
            for index, _, _ in pairs:
                ids[index] = None
                errors[index] = f"Not dissociated from its former contact: {error}"

    def push_delete(self, remote_type: str, remote_ids: list[str]) -> None:
        self.client.batch_archive(remote_type, remote_ids)


def _set_contacts(record: Remote, contact_ids: list[str]) -> None:
    """A deal's contacts, oldest first: HubSpot promises no order, and the first is the
    one taken when none of them is the deal's customer already."""
    record.parent_remote_ids = sorted(set(contact_ids), key=lambda i: (len(i), i))
    record.parent_remote_id = record.parent_remote_ids[0] if record.parent_remote_ids else ""


def _email_of(entry: dict) -> str:
    return (entry["properties"].get("email") or "").lower()


def _kinds(remote_type: str) -> dict[str, str]:
    from integrations.mapping import CUSTOMER_FIELDS, SALE_FIELDS

    return CUSTOMER_FIELDS if remote_type in ("contacts", "Lead", "Contact") else SALE_FIELDS
