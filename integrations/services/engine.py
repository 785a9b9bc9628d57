"""The sync engine: one page at a time, each page's local writes, ledger rows and the run's
saved position in one transaction, so a run whose worker dies resumes at the page it was on
and writes nothing twice.

Per remote record the ledger (SyncLink) keeps the values last agreed by both sides. A pulled
record whose values equal them is our own write coming back (skipped, not echoed); a local
record whose values equal them has nothing to push. A field changed on both sides since is a
conflict, settled by the connection's policy or held for a person (SyncConflict)."""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q
from django.db.models.functions import Lower
from django.utils import timezone
from psycopg.types.json import Jsonb

from crm.bulk import bulk_insert
from crm.models import Tombstone
from customers.models import Customer
from customers.services import customer_delete, customers_sync_write
from integrations.clients.limits import RemoteError
from integrations.mapping import CUSTOMER_FIELDS, SALE_FIELDS, python_value, values_hash
from integrations.models import Connection, SyncConflict, SyncFailure, SyncLink, SyncRun
from integrations.providers.base import ObjectSpec, Remote
from sales.models import Sale
from sales.services import sale_delete
from sales.services.sync import sales_sync_write

LOCAL_MODELS = {"customer": (Customer, CUSTOMER_FIELDS), "sale": (Sale, SALE_FIELDS)}
OWNER_FIELD = {"customer": "owner_id", "sale": "assigned_to_id"}
# Remote pages (of 100) applied per step of a first import.
FIRST_IMPORT_PAGES_PER_STEP = 10
# Local records looked at per step of a push (and per saved position); sent in full batches.
PUSH_SCAN = 1000
TOMBSTONE_RESOURCE = {"customer": Tombstone.Resource.CUSTOMER, "sale": Tombstone.Resource.DEAL}


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


class LeaseLost(Exception):
    """Another worker claimed the run (this one's lease had lapsed)."""


@dataclass
class Tally:
    created: int = 0
    updated: int = 0
    skipped: int = 0
    failed: int = 0
    deleted: int = 0
    conflicts: int = 0
    failures: list[tuple[str, str, int | None, str]] = field(default_factory=list)

    def fail(self, direction: str, remote_id: str, local_id: int | None, message: str) -> None:
        self.failed += 1
        self.failures.append((direction, remote_id, local_id, message[:1000]))


class SyncEngine:
    def __init__(self, run: SyncRun, provider):
        self.run = run
        self.connection: Connection = run.connection
        self.provider = provider
        self.actor = self.connection.run_as
        self.calls_at_start = run.api_calls
        self.objects: tuple[ObjectSpec, ...] = provider.OBJECTS
        self.parent_of = {"sale": provider.DEAL_PARENT}

    # -- the phases ----------------------------------------------------------------------------

    def phases(self) -> list[str]:
        types = [spec.remote_type for spec in self.objects]
        if self.run.kind == SyncRun.Kind.FIRST_IMPORT:
            companies = ["companies"] if getattr(self.provider, "COMPANIES", None) else []
            return [
                "owners", *companies, *(f"first:{t}" for t in types),
                *(f"push:{t}" for t in types), "done",
            ]  # fmt: skip
        # Deletions first: a Salesforce merge's survivor, pulled after them, finds the link
        # its merged-away record had (HubSpot names merged ids on the survivor itself).
        return [
            "owners", *(f"archived:{t}" for t in types), *(f"pull:{t}" for t in types),
            *(f"push:{t}" for t in types), "tombstones", "done",
        ]  # fmt: skip

    def execute(self) -> None:
        position = self.run.position
        if "phase" not in position:
            settle = timedelta(seconds=settings.SYNC_SETTLE_SECONDS)
            now = timezone.now()
            position.update(
                phase="owners",
                cursor=None,
                window_end=_ms(now - settle),
                push_end=now.isoformat(),
                since=dict(self.connection.cursors.get("pulled_until", {})),
            )
            if self.run.kind == SyncRun.Kind.FIRST_IMPORT:
                self.run.progress_total = sum(
                    self.provider.total(spec.remote_type) for spec in self.objects
                )
            self._save(Tally(), "")
        phases = self.phases()
        while position["phase"] != "done":
            phase = position["phase"]
            step, _, remote_type = phase.partition(":")
            spec = next((s for s in self.objects if s.remote_type == remote_type), None)
            tally = Tally()
            with transaction.atomic():
                following = getattr(self, f"_step_{step}")(spec, position.get("cursor"), tally)
                if following is None:
                    position["phase"] = phases[phases.index(phase) + 1]
                    position["cursor"] = None
                    self._phase_done(step, spec)
                else:
                    position["cursor"] = following
                self._save(tally, remote_type or step)
        self._finish()

    def _save(self, tally: Tally, key: str) -> None:
        run = self.run
        if key:
            counts = run.counts.setdefault(key, {})
            for name in ("created", "updated", "skipped", "failed", "deleted", "conflicts"):
                counts[name] = counts.get(name, 0) + getattr(tally, name)
        run.api_calls = self.calls_at_start + self.provider.api_calls
        run.lease_until = timezone.now() + timedelta(seconds=settings.SYNC_LEASE_SECONDS)
        self._fenced_update(
            position=run.position, counts=run.counts, api_calls=run.api_calls,
            lease_until=run.lease_until, progress_done=run.progress_done,
            progress_total=run.progress_total,
        )  # fmt: skip
        SyncFailure.objects.bulk_create(
            SyncFailure(
                run=run, object_type=key, direction=d, remote_id=r, local_id=local_id, message=m
            )
            for d, r, local_id, m in tally.failures
        )

    def _phase_done(self, step: str, spec: ObjectSpec | None) -> None:
        # Fresh and locked: an admin may have settled a conflict (repush) meanwhile.
        pushed_before = self.connection.cursors.get("repush", {})
        self.connection = Connection.objects.select_for_update().get(pk=self.connection.pk)
        cursors = self.connection.cursors
        position = self.run.position
        if step == "pull":
            cursors.setdefault("pulled_until", {})[spec.remote_type] = position["window_end"]
        elif step == "push":
            cursors.setdefault("pushed_until", {})[spec.remote_type] = position["push_end"]
            for remote_type in position.get("id_fields", []):
                cursors.setdefault("id_fields", {})[remote_type] = True
            # Settled once every object of the local model has pushed (a customer waiting is
            # a Salesforce Contact's to send as much as a Lead's).
            last = [s for s in self.objects if s.local_model == spec.local_model][-1]
            if spec is last:
                done = set(pushed_before.get(spec.local_model, []))
                waiting = cursors.get("repush", {}).get(spec.local_model, [])
                cursors.setdefault("repush", {})[spec.local_model] = [
                    pk for pk in waiting if pk not in done
                ]
        elif step == "tombstones":
            cursors["tombstones_until"] = position["push_end"]
        elif step == "first" and spec is self.objects[-1]:
            cursors["pulled_until"] = {s.remote_type: position["window_end"] for s in self.objects}
        if (
            step == "push"
            and self.run.kind == SyncRun.Kind.FIRST_IMPORT
            and spec is self.objects[-1]
        ):
            cursors["tombstones_until"] = position["push_end"]
            self.connection.first_import_done_at = timezone.now()
        self.connection.save(update_fields=["cursors", "first_import_done_at", "updated_at"])

    def _fenced_update(self, **fields) -> None:
        """Save the run only while this worker holds its lease: a worker thought dead whose
        run another took over rolls its page back instead of writing it twice."""
        held = SyncRun.objects.filter(pk=self.run.pk, lease_token=self.run.lease_token)
        if not held.update(**fields):
            raise LeaseLost(f"Sync run {self.run.pk} is held by another worker.")

    def _finish(self) -> None:
        self.run.status = SyncRun.Status.SUCCEEDED
        self.run.finished_at = timezone.now()
        self.run.lease_until = None
        self._fenced_update(status=self.run.status, finished_at=self.run.finished_at,
                            lease_until=None)  # fmt: skip

    # -- owners and companies ------------------------------------------------------------------

    def _step_owners(self, spec, cursor, tally: Tally):
        owners = self.provider.owners()
        users = {
            email: pk
            for pk, email in get_user_model()
            .objects.filter(is_active=True)
            .annotate(lower=Lower("email"))
            .filter(lower__in=[email for _, email, _ in owners if email])
            .values_list("pk", "lower")
        }
        links = {
            link.remote_id: link
            for link in SyncLink.objects.filter(connection=self.connection, object_type="owners")
        }
        unmatched = []
        for remote_id, email, name in owners:
            user_id = users.get(email)
            if user_id is None:
                unmatched.append({"id": remote_id, "email": email, "name": name})
            link = links.get(remote_id)
            if link is None:
                SyncLink.objects.create(
                    connection=self.connection, object_type="owners", remote_id=remote_id,
                    local_model="user", local_id=user_id, synced_values={"email": email},
                )  # fmt: skip
            elif link.local_id != user_id:
                link.local_id = user_id
                link.save(update_fields=["local_id"])
        self.connection.unmatched_owners = unmatched
        self.connection.save(update_fields=["unmatched_owners", "updated_at"])
        tally.skipped = len(unmatched)
        tally.updated = len(owners) - len(unmatched)
        return None

    def _step_companies(self, spec, cursor, tally: Tally):
        page = self.provider.first_page("companies", cursor)
        existing = set(
            SyncLink.objects.filter(
                connection=self.connection, object_type="companies",
                remote_id__in=[r.id for r in page.records],
            ).values_list("remote_id", flat=True)
        )  # fmt: skip
        rows = [
            {"connection_id": self.connection.pk, "object_type": "companies", "remote_id": r.id,
             "local_model": "company", "synced_values": r.values, "remote_modified": r.modified,
             "synced_hash": values_hash(r.values), "changed_by": "remote", "held_fields": [],
             "note": "", "synced_at": timezone.now()}
            for r in page.records
            if r.id not in existing
        ]  # fmt: skip
        bulk_insert(SyncLink, rows)
        tally.created = len(rows)
        return page.next_cursor

    # -- pulling -------------------------------------------------------------------------------

    def _step_first(self, spec: ObjectSpec, cursor, tally: Tally):
        # Several pages a step: one transaction and one set of lookups for 1,000 records.
        records = []
        for _ in range(FIRST_IMPORT_PAGES_PER_STEP):
            page = self.provider.first_page(spec.remote_type, cursor)
            records += page.records
            cursor = page.next_cursor
            if cursor is None:
                break
        if spec.local_model == "customer":
            self._fill_company_names(records)
        self._apply_remote(spec, records, tally)
        self.run.progress_done += len(records)
        return cursor

    def _step_pull(self, spec: ObjectSpec, cursor, tally: Tally):
        start = self.connection.cursors.get("pulled_until", {}).get(spec.remote_type, 0)
        page = self.provider.changed_page(
            spec.remote_type, start_ms=start, end_ms=self.run.position["window_end"], cursor=cursor
        )
        self._apply_remote(spec, page.records, tally)
        self.run.progress_done += len(page.records)
        return page.next_cursor

    def _fill_company_names(self, records: list[Remote]) -> None:
        wanted = {
            r.parent_remote_id
            for r in records
            if r.parent_remote_id and not r.values.get("company")
        }
        if not wanted:
            return
        names = dict(
            SyncLink.objects.filter(
                connection=self.connection, object_type="companies", remote_id__in=wanted
            ).values_list("remote_id", "synced_values__name")
        )
        for record in records:
            if not record.values.get("company") and names.get(record.parent_remote_id):
                record.values["company"] = names[record.parent_remote_id]

    def _links(self, object_type: str, remote_ids) -> dict[str, SyncLink]:
        return {
            link.remote_id: link
            for link in SyncLink.objects.filter(
                connection=self.connection, object_type=object_type, remote_id__in=list(remote_ids)
            )
        }

    def _local_ids(self, object_type: str, remote_ids) -> dict[str, int]:
        return dict(
            SyncLink.objects.filter(
                connection=self.connection, object_type=object_type,
                remote_id__in=[i for i in remote_ids if i], deleted_at__isnull=True,
                local_id__isnull=False,
            ).values_list("remote_id", "local_id")
        )  # fmt: skip

    def _resolve_refs(self, spec: ObjectSpec, records: list[Remote]) -> dict[str, list[str]]:
        """Remote owner and parent ids become local ids in the values (left out when unknown:
        no opinion about the field). A deal's customer is its first linked parent here; the
        customers of all its linked parents are answered (remote id -> local ids, in the
        remote's order) for _settle_customer."""
        owners = self._local_ids("owners", {r.owner_remote_id for r in records})
        parents = (
            self._local_ids(self.parent_of["sale"], {i for r in records for i in _parents_of(r)})
            if spec.local_model == "sale"
            else {}
        )
        owner_field = OWNER_FIELD[spec.local_model]
        customers: dict[str, list[str]] = {}
        for record in records:
            owner = owners.get(record.owner_remote_id)
            if owner:
                record.values[owner_field] = str(owner)
            if spec.local_model != "sale":
                continue
            linked = [str(parents[i]) for i in _parents_of(record) if i in parents]
            customers[record.id] = list(dict.fromkeys(linked))
            if linked:
                record.values["customer_id"] = linked[0]
        return customers

    @staticmethod
    def _settle_customer(record: Remote, candidates: list[str], agreed: str, mine: str) -> None:
        """A deal with several remote parents keeps the customer agreed last while that one's
        parent is among them, else the CRM's current customer if its parent is: a contact
        added to the deal remotely moves nothing. Otherwise the first (oldest) one stands."""
        for customer_id in (agreed, mine):
            if customer_id and customer_id in candidates:
                record.values["customer_id"] = customer_id
                return

    def _follow_merges(self, spec: ObjectSpec, records: list[Remote], links: dict) -> None:
        """A HubSpot merge keeps one record and lists the others' ids on it."""
        merged = {old: r.id for r in records for old in r.merged_ids}
        if merged:
            self._move_links(spec, merged, links)

    def _move_links(self, spec: ObjectSpec, merged: dict[str, str], links: dict) -> int:
        """Merged-away remote id -> surviving id: each live link of a merged-away id moves to
        the survivor when that one has none yet (`links`: known links by remote id, looked
        up here for survivors not in it), and ends otherwise (its local record stays: the
        CRM's duplicates merge joins the two). How many links moved or ended."""
        unknown = {survivor for survivor in merged.values() if survivor not in links}
        if unknown:
            links.update(self._links(spec.remote_type, unknown))
        followed = 0
        for old_id, link in self._links(spec.remote_type, merged).items():
            if link.deleted_at is not None:
                continue
            followed += 1
            survivor = merged[old_id]
            if survivor not in links:
                SyncLink.objects.filter(pk=link.pk).update(
                    remote_id=survivor, note=f"Followed the merge of {old_id} into {survivor}"
                )
                link.remote_id = survivor
                links[survivor] = link
            else:
                SyncLink.objects.filter(pk=link.pk).update(
                    deleted_at=timezone.now(), note=f"Merged into {survivor}, linked elsewhere"
                )
        return followed

    def _follow_conversions(self, spec, records: list[Remote], links: dict, tally: Tally):
        """A converted Salesforce Lead lives on as a Contact: its customer's link moves to
        the Contact (which, pulled next, updates that customer instead of making a second
        one), and a customer still at lifecycle *lead* becomes a prospect. Converted into a
        Contact linked to another customer, the Lead's link ends (the two customers are a
        duplicate pair for the CRM's merge). The read-only Lead is not applied, and an
        unlinked one is not imported: its Contact brings the person."""
        converted = [r for r in records if r.converted_to]
        if not converted:
            return records
        now = timezone.now()
        promoted = []
        targets: dict[str, set[str]] = {}
        for record in converted:
            targets.setdefault(record.converted_to[0], set()).add(record.converted_to[1])
        # The converted-into records' links, read once for the page.
        links_of_targets = {
            (object_type, remote_id): target
            for object_type, remote_ids in targets.items()
            for remote_id, target in self._links(object_type, remote_ids).items()
        }
        for record in converted:
            tally.skipped += 1
            link = links.pop(record.id, None)
            if link is None or link.deleted_at is not None or link.local_id is None:
                continue
            object_type, remote_id = record.converted_to
            taken = links_of_targets.get((object_type, remote_id))
            if taken is not None and taken.deleted_at is None and taken.local_id is not None:
                SyncLink.objects.filter(pk=link.pk).update(
                    deleted_at=now,
                    note=f"Converted into {object_type} {remote_id}, linked to another record",
                )
                continue
            if taken is not None:  # a dead link of the Contact's: ours takes its place
                taken.delete()
            synced = {k: v for k, v in link.synced_values.items() if k != "lifecycle_stage"}
            SyncLink.objects.filter(pk=link.pk).update(
                object_type=object_type, remote_id=remote_id, synced_values=synced,
                synced_hash=values_hash(synced), synced_at=now,
                note=f"Followed the conversion of Lead {record.id}",
            )  # fmt: skip
            links_of_targets[(object_type, remote_id)] = link  # live now: the next Lead sees it
            promoted.append(link.local_id)
        leads = Customer.objects.filter(pk__in=promoted, lifecycle_stage="lead")
        updates = [
            (pk, {"lifecycle_stage": "prospect"}) for pk in leads.values_list("pk", flat=True)
        ]
        if updates:
            customers_sync_write(actor=self.actor, creates=[], updates=updates,
                                 via=self.connection.get_provider_display())  # fmt: skip
            SyncLink.objects.filter(
                connection=self.connection, local_model="customer",
                local_id__in=[pk for pk, _ in updates], deleted_at__isnull=True,
            ).update(synced_at=timezone.now())  # fmt: skip
        return [r for r in records if not r.converted_to]

    def _local_values(self, local_model: str, ids) -> dict[int, dict[str, str]]:
        from integrations.mapping import normalise

        model, kinds = LOCAL_MODELS[local_model]
        rows = model.objects.filter(pk__in=list(ids)).values("pk", "updated_at", *kinds)
        return {
            row["pk"]: {
                **{name: normalise(kind, row[name]) for name, kind in kinds.items()},
                "__updated_at": row["updated_at"],
            }
            for row in rows
        }

    def _apply_remote(self, spec: ObjectSpec, records: list[Remote], tally: Tally) -> None:
        if not records:
            return
        model_kinds = LOCAL_MODELS[spec.local_model][1]
        links = self._links(spec.remote_type, [r.id for r in records])
        records = self._follow_conversions(spec, records, links, tally)
        self._follow_merges(spec, records, links)
        customers = self._resolve_refs(spec, records)
        unlinked = [r for r in records if r.id not in links]
        by_key = self._first_links_by_key(spec, unlinked)
        by_email = self._first_links_by_email(spec, unlinked)
        local = self._local_values(
            spec.local_model,
            [link.local_id for link in links.values() if link.local_id]
            + list(by_key.values())
            + list(by_email.values()),
        )
        claimed: set[int] = set()  # first links of this page: one remote record each
        policy = self.connection.conflict_policy
        creates, create_records, updates, new_links, changed_links = [], [], [], [], []
        conflicts: list[SyncConflict] = []
        for record in records:
            link = links.get(record.id)
            if link is not None and (link.deleted_at is not None or link.local_id is None):
                tally.skipped += 1
                continue
            if link is None:
                local_id = by_key.get(record.id)
                note = "Linked by our record key"
                if local_id is None and record.email:
                    local_id, note = by_email.get(record.email), "Linked by email"
                if local_id is not None and local_id in claimed:
                    message = "Another record of this page was linked to the same one."
                    tally.fail("pull", record.id, None, message)
                    continue
                if local_id is None:
                    if spec.local_model == "customer" and not record.email:
                        tally.fail("pull", record.id, None, "The record has no email address.")
                    elif spec.local_model == "sale" and not record.values.get("customer_id"):
                        tally.fail("pull", record.id, None, "The deal has no synced contact.")
                    else:
                        creates.append(self._create_values(spec, record, model_kinds))
                        create_records.append(record)
                    continue
                # A record we created (our key on it: its ledger row was lost with a worker)
                # or, for the first link only, one with the email; afterwards only the remote
                # id links.
                claimed.add(local_id)
                base = self._first_link_base(record, local.get(local_id, {}))
                if spec.local_model == "sale" and "customer_id" not in record.values:
                    # Ours, left without its contact (the association failed, or its run
                    # died first): agreed on none, so the push associates it.
                    base["customer_id"] = ""
                link = SyncLink(
                    connection=self.connection, object_type=spec.remote_type, remote_id=record.id,
                    local_model=spec.local_model, local_id=local_id, synced_values=base, note=note,
                )  # fmt: skip
                new_links.append(link)
            current = local.get(link.local_id)
            if current is None:
                tally.skipped += 1
                continue
            if len(customers.get(record.id, [])) > 1:
                self._settle_customer(
                    record, customers[record.id], link.synced_values.get("customer_id", ""),
                    current.get("customer_id", ""),
                )  # fmt: skip
            result, synced, held, opened = self._merge(record, link, current, policy)
            for name, (mine, theirs) in opened.items():
                conflicts.append(SyncConflict(connection=self.connection, link=link, field=name,
                                              local_value=mine, remote_value=theirs))  # fmt: skip
            tally.conflicts += len(opened)
            link.synced_values, link.held_fields = synced, held
            # The CRM's value won a conflict: left as last synced earlier, so it is pushed.
            link.pending_push = any(
                current.get(name, "") != value
                for name, value in synced.items()
                if name not in held and name not in result
            )
            link.synced_hash = values_hash(synced)
            link.remote_modified = record.modified
            if result:
                link.changed_by = SyncLink.Side.REMOTE
                updates.append((link.local_id, {n: python_value(model_kinds[n], v)
                                                for n, v in result.items()}))  # fmt: skip
                tally.updated += 1
            else:
                tally.skipped += 1
            if link.pk:
                changed_links.append(link)
        creates, create_records = self._drop_duplicate_creates(spec, creates, create_records, tally)
        kept = self._drop_taken_emails(spec, updates, tally, links)
        if len(kept) < len(updates):  # refused records keep their ledger as it was
            dropped = {pk for pk, _ in updates} - {pk for pk, _ in kept}
            changed_links = [link for link in changed_links if link.local_id not in dropped]
            new_links = [link for link in new_links if link.local_id not in dropped]
        writer = customers_sync_write if spec.local_model == "customer" else sales_sync_write
        created_ids = writer(actor=self.actor, creates=creates, updates=kept,
                             via=self.connection.get_provider_display())  # fmt: skip
        tally.created += len(created_ids)
        # Saved after the records, so a record whose last change is this write is not
        # mistaken for a local change to push (_push_candidates).
        now = timezone.now()
        for link in [*changed_links, *new_links]:
            if not getattr(link, "pending_push", False):
                link.synced_at = now
        rows = [
            {"connection_id": self.connection.pk, "object_type": spec.remote_type,
             "remote_id": record.id, "local_model": spec.local_model, "local_id": local_id,
             "remote_modified": record.modified, "synced_values": record.values,
             "synced_hash": values_hash(record.values), "changed_by": "remote",
             "held_fields": [], "note": "", "synced_at": now}
            for record, local_id in zip(create_records, created_ids, strict=True)
        ]  # fmt: skip
        bulk_insert(SyncLink, rows)
        for link in new_links:
            link.save()
        links_save(changed_links)
        SyncConflict.objects.bulk_create(conflicts, ignore_conflicts=True)

    def _create_values(self, spec: ObjectSpec, record: Remote, kinds: dict) -> dict:
        values = {n: python_value(kinds[n], v) for n, v in record.values.items() if n in kinds}
        if spec.local_model == "customer":
            values["name"] = values.get("name") or values["email"]
            values["lifecycle_stage"] = values.get("lifecycle_stage") or "lead"
            values["owner_id"] = values.get("owner_id") or self.actor.pk
        else:
            values["title"] = values.get("title") or f"Deal {record.id}"
            values["status"] = values.get("status") or Sale.Status.NEW
            values["assigned_to_id"] = values.get("assigned_to_id") or self.actor.pk
        return values

    def _first_links_by_key(self, spec: ObjectSpec, unlinked: list[Remote]) -> dict[str, int]:
        """Remote records holding our record key (we created them) whose local record exists
        and is linked to nothing of this connection: remote id -> local id."""
        keyed = {
            r.id: local_id
            for r in unlinked
            if r.local_key and (local_id := self.connection.local_id_of(r.local_key))
        }
        if not keyed:
            return {}
        model = LOCAL_MODELS[spec.local_model][0]
        present = set(model.objects.filter(pk__in=keyed.values()).values_list("pk", flat=True))
        taken = set(
            SyncLink.objects.filter(
                connection=self.connection, local_model=spec.local_model, deleted_at__isnull=True,
                local_id__in=present,
            ).values_list("local_id", flat=True)
        )  # fmt: skip
        return {r: pk for r, pk in keyed.items() if pk in present and pk not in taken}

    def _first_links_by_email(self, spec: ObjectSpec, unlinked: list[Remote]) -> dict[str, int]:
        """Local customers with the email of a remote record not linked yet, and linked to
        nothing of this connection: the first link's proposal."""
        emails = {r.email for r in unlinked if r.email}
        if spec.local_model != "customer" or not emails:
            return {}
        found = dict(
            Customer.objects.annotate(lower=Lower("email"))
            .filter(lower__in=emails)
            .values_list("lower", "pk")
        )
        taken = set(
            SyncLink.objects.filter(
                connection=self.connection, local_model="customer", deleted_at__isnull=True,
                local_id__in=found.values(),
            ).values_list("local_id", flat=True)
        )  # fmt: skip
        return {email: pk for email, pk in found.items() if pk not in taken}

    def _first_link_base(self, record: Remote, current: dict) -> dict[str, str]:
        """What a first link counts as last agreed: the remote's values when the CRM should
        win (ours get pushed), ours otherwise (the remote's get pulled)."""
        if self.connection.conflict_policy == Connection.ConflictPolicy.CRM_WINS:
            return dict(record.values)
        return {name: current.get(name, "") for name in record.values}

    def _merge(self, record: Remote, link: SyncLink, current: dict, policy: str):
        """(local changes to make, the new agreed values, held fields, new conflicts)."""
        synced = dict(link.synced_values)
        held = list(link.held_fields)
        result: dict[str, str] = {}
        opened: dict[str, tuple[str, str]] = {}
        for name, theirs in record.values.items():
            agreed = synced.get(name, "")
            mine = current.get(name, "")
            if name in held or theirs == agreed:
                continue
            if mine in (agreed, theirs):
                if mine != theirs:
                    result[name] = theirs
                synced[name] = theirs
                continue
            remote_wins = policy == Connection.ConflictPolicy.REMOTE_WINS or (
                policy == Connection.ConflictPolicy.NEWEST_WINS
                and record.modified is not None
                and record.modified > current["__updated_at"]
            )
            if policy == Connection.ConflictPolicy.MANUAL:
                held.append(name)
                opened[name] = (mine, theirs)
            elif remote_wins:
                result[name] = theirs
                synced[name] = theirs
            else:  # the CRM's value stands and is pushed: agreed becomes the remote's
                synced[name] = theirs
        return result, synced, held, opened

    def _drop_duplicate_creates(self, spec, creates, records, tally: Tally):
        """New customers whose email a customer has already (linked to another remote
        record: a Salesforce Lead and Contact of one person) or an earlier one of the batch."""
        if spec.local_model != "customer" or not creates:
            return creates, records
        emails = [values["email"].lower() for values in creates]
        taken = set(
            Customer.objects.annotate(lower=Lower("email"))
            .filter(lower__in=emails)
            .values_list("lower", flat=True)
        )
        kept_values, kept_records = [], []
        for values, record, email in zip(creates, records, emails, strict=True):
            if email in taken:
                message = f"A customer linked to another record has the email {email}."
                tally.fail("pull", record.id, None, message)
                continue
            taken.add(email)
            kept_values.append(values)
            kept_records.append(record)
        return kept_values, kept_records

    def _drop_taken_emails(self, spec, updates, tally: Tally, links) -> list:
        if spec.local_model != "customer":
            return updates
        wanted = {values["email"].lower(): pk for pk, values in updates if values.get("email")}
        if not wanted:
            return updates
        taken = dict(
            Customer.objects.annotate(lower=Lower("email"))
            .filter(lower__in=wanted)
            .values_list("lower", "pk")
        )
        kept = []
        for pk, values in updates:
            email = (values.get("email") or "").lower()
            if email and taken.get(email, pk) != pk:
                remote_id = next((r for r, link in links.items() if link.local_id == pk), "")
                tally.fail("pull", remote_id, pk, f"Another customer has the email {email}.")
                continue
            kept.append((pk, values))
        return kept

    # -- remote deletions ----------------------------------------------------------------------

    def _step_archived(self, spec: ObjectSpec, cursor, tally: Tally):
        page = self.provider.archived_page(
            spec.remote_type,
            cursor,
            start_ms=self.run.position.get("since", {}).get(spec.remote_type, 0),
            end_ms=self.run.position["window_end"],
        )
        links = self._links(spec.remote_type, [r.id for r in page.records])
        doomed = [
            link for link in links.values() if link.deleted_at is None and link.local_id is not None
        ]
        # A Salesforce merge deletes the records merged away, naming the survivor on them:
        # their customers follow it rather than being deleted.
        merged = self.provider.merged_into(spec.remote_type, [link.remote_id for link in doomed])
        if merged:
            tally.updated += self._move_links(spec, merged, {})
            doomed = [link for link in doomed if link.remote_id not in merged]
        if doomed:
            self._delete_locally(spec, doomed, tally)
        return page.next_cursor

    def _delete_locally(self, spec: ObjectSpec, doomed: list[SyncLink], tally: Tally) -> None:
        now = timezone.now()
        model = LOCAL_MODELS[spec.local_model][0]
        ids = [link.local_id for link in doomed]
        if spec.local_model == "customer":
            # Their deals go with them here; HubSpot keeps them: unlink, never archive them.
            deal_ids = list(Sale.objects.filter(customer_id__in=ids).values_list("pk", flat=True))
            SyncLink.objects.filter(
                connection=self.connection, local_model="sale", local_id__in=deal_ids
            ).update(deleted_at=now, note="Its contact was deleted remotely")
        SyncLink.objects.filter(pk__in=[link.pk for link in doomed]).update(
            deleted_at=now, note="Deleted remotely"
        )
        delete = customer_delete if spec.local_model == "customer" else sale_delete
        for instance in model.objects.filter(pk__in=ids):
            kwargs = (
                {"customer": instance} if spec.local_model == "customer" else {"sale": instance}
            )
            delete(actor=self.actor, **kwargs)
            tally.deleted += 1

    # -- pushing -------------------------------------------------------------------------------

    def _push_candidates(self, spec: ObjectSpec, after_id: int, limit: int) -> list[int]:
        model = LOCAL_MODELS[spec.local_model][0]
        since = self.connection.cursors.get("pushed_until", {}).get(spec.remote_type)
        if self.run.kind == SyncRun.Kind.FIRST_IMPORT:
            # The CRM's existing records go to the remote only when asked; otherwise what
            # changed since the connection was made.
            since = (
                None if self.connection.push_existing else self.connection.created_at.isoformat()
            )
        # No upper bound: a record changed during this run is looked at now and, since the
        # cursor becomes this run's start, again next time (a no-op when nothing differs).
        # What the sync wrote itself (its link saved after the record) has nothing to push;
        # a conflict settled for the CRM (repush) has, whenever it changed.
        ours = SyncLink.objects.filter(
            connection=self.connection, local_model=spec.local_model, local_id=OuterRef("pk"),
            deleted_at__isnull=True, synced_at__gte=OuterRef("updated_at"),
        )  # fmt: skip
        wanted = ~Exists(ours)
        if since:
            wanted &= Q(updated_at__gt=datetime.fromisoformat(since))
        repush = self.connection.cursors.get("repush", {}).get(spec.local_model, [])
        changed = model.objects.filter(wanted | Q(pk__in=repush), pk__gt=after_id)
        return list(changed.order_by("pk").values_list("pk", flat=True)[:limit])

    def _step_push(self, spec: ObjectSpec, cursor, tally: Tally):
        ids = self._push_candidates(spec, cursor or 0, PUSH_SCAN)
        if not ids:
            return None
        local = self._local_values(spec.local_model, ids)
        links = {
            link.local_id: link
            for link in SyncLink.objects.filter(
                connection=self.connection, local_model=spec.local_model, local_id__in=ids
            ).order_by("deleted_at")  # a live link wins over older deleted ones
        }
        # A record linked under another remote object (a Salesforce Contact, when this is
        # Leads) is that object's to push.
        elsewhere = {
            pk for pk, link in links.items()
            if link.deleted_at is None and link.object_type != spec.remote_type
        }  # fmt: skip
        owners = {
            int(user_id): remote_id
            for remote_id, user_id in SyncLink.objects.filter(
                connection=self.connection, object_type="owners", local_id__isnull=False
            ).values_list("remote_id", "local_id")
        }
        parents = {}
        if spec.local_model == "sale":
            # The deals' customers' remote parents, and those of the customers they were
            # agreed on last (a deal moved to another customer lets go of the old one).
            customer_ids = {int(v["customer_id"]) for v in local.values() if v["customer_id"]}
            customer_ids |= {
                int(link.synced_values["customer_id"]) for link in links.values()
                if link.synced_values.get("customer_id")
            }  # fmt: skip
            parents = {
                str(local_id): remote_id
                for remote_id, local_id in SyncLink.objects.filter(
                    connection=self.connection, object_type=self.parent_of["sale"],
                    deleted_at__isnull=True, local_id__in=customer_ids,
                ).values_list("remote_id", "local_id")
            }  # fmt: skip
        updates, creates = [], []
        owner_field = OWNER_FIELD[spec.local_model]
        for pk in ids:
            values = {k: v for k, v in local[pk].items() if not k.startswith("__")}
            refs = {
                "owner": owners.get(int(values[owner_field])) if values.get(owner_field) else None
            }
            if spec.local_model == "sale":
                refs["parent"] = parents.get(values["customer_id"])
            link = links.get(pk)
            if pk in elsewhere:
                continue
            if link is not None and link.deleted_at is not None:
                tally.skipped += 1
                continue
            if link is None:
                if not self.provider.owns_new(spec.remote_type, values):
                    continue
                if spec.local_model == "customer" and not values.get("email"):
                    tally.skipped += 1
                elif spec.local_model == "sale" and not refs["parent"]:
                    tally.fail("push", "", pk, "The deal's customer is not synced.")
                else:
                    creates.append((pk, values, refs))
                continue
            diff = {
                name: value
                for name, value in values.items()
                if name not in link.held_fields
                and name in link.synced_values
                and value != link.synced_values.get(name)
                and not (name == owner_field and not refs["owner"])
            }
            if "customer_id" in diff and not refs["parent"]:
                # Agreed on only once the remote has it, or the next pull would take the
                # remote's old parent for a change and move the deal back.
                del diff["customer_id"]
                message = ("The deal's new customer is not synced as a contact, so the remote "
                           "deal keeps its former customer.")  # fmt: skip
                tally.fail("push", link.remote_id, pk, message)
                if not diff:
                    continue
            elif "customer_id" in diff:
                refs["old_parent"] = parents.get(link.synced_values["customer_id"])
            if diff:
                updates.append((link, diff, refs))
            else:
                tally.skipped += 1
        # Full batches whatever the mix of the scan: records the pull just wrote are
        # candidates too, with nothing to push.
        for start in range(0, len(updates), spec.push_batch):
            self._push_updates(spec, updates[start : start + spec.push_batch], tally)
        for start in range(0, len(creates), spec.push_batch):
            self._push_creates(spec, creates[start : start + spec.push_batch], tally)
        return ids[-1]

    def _push_updates(self, spec, updates, tally: Tally) -> None:
        if not updates:
            return
        answer = self.provider.push_update(
            spec.remote_type, [(link.remote_id, diff, refs) for link, diff, refs in updates]
        )
        now = timezone.now()
        done = []
        for (link, diff, _), remote_id, modified, error in zip(
            updates, answer.ids, answer.modified, answer.errors, strict=True
        ):
            if remote_id is None:
                tally.fail("push", link.remote_id, link.local_id, error or "Not updated.")
                continue
            link.synced_values = {**link.synced_values, **diff}
            link.synced_hash = values_hash(link.synced_values)
            link.remote_modified, link.synced_at = modified, now
            link.changed_by = SyncLink.Side.LOCAL
            done.append(link)
            tally.updated += 1
        links_save(done)

    def _ensure_id_field(self, spec: ObjectSpec) -> None:
        """Once per connection and object: the remote's unique field for our record keys
        (made, or checked, by the provider; RemoteError when it cannot be had)."""
        position = self.run.position.setdefault("id_fields", [])
        known = self.connection.cursors.get("id_fields", {})
        if known.get(spec.remote_type) or spec.remote_type in position:
            return
        self.provider.ensure_id_field(spec.remote_type)
        # Kept on the connection when the phase ends (_phase_done), where it is locked anyway.
        position.append(spec.remote_type)

    def _push_creates(self, spec, creates, tally: Tally) -> None:
        """Creates are upserts on our record key: sent again after a worker died between the
        remote's answer and the ledger's save, they find the records made the first time."""
        if not creates:
            return
        try:
            self._ensure_id_field(spec)
        except RemoteError as error:
            for pk, _, _ in creates:
                tally.fail("push", "", pk, str(error))
            return
        answer = self.provider.push_create(
            spec.remote_type,
            [(self.connection.remote_key(pk), values, refs) for pk, values, refs in creates],
        )
        now = timezone.now()
        rows = []
        for (pk, values, _), remote_id, modified, error in zip(
            creates, answer.ids, answer.modified, answer.errors, strict=True
        ):
            if remote_id is None:
                tally.fail("push", "", pk, error or "Not created.")
                continue
            linked_existing = bool(error)
            rows.append(
                {"connection_id": self.connection.pk, "object_type": spec.remote_type,
                 "remote_id": remote_id, "local_model": spec.local_model, "local_id": pk,
                 "remote_modified": modified,
                 # Linked to a remote record that had the email: agree on nothing yet, so
                 # the next pull merges both under the connection's policy.
                 "synced_values": {} if linked_existing else values,
                 "synced_hash": "" if linked_existing else values_hash(values),
                 "changed_by": "local", "held_fields": [],
                 "note": "Linked by email" if linked_existing else "", "synced_at": now}
            )  # fmt: skip
            tally.created += 0 if linked_existing else 1
        existing = self._links(spec.remote_type, [row["remote_id"] for row in rows])
        bulk_insert(SyncLink, [row for row in rows if row["remote_id"] not in existing])

    # -- our deletions -------------------------------------------------------------------------

    def _step_tombstones(self, spec, cursor, tally: Tally):
        since = self.connection.cursors.get("tombstones_until")
        until = datetime.fromisoformat(self.run.position["push_end"])
        for object_spec in self.objects:
            resource = TOMBSTONE_RESOURCE[object_spec.local_model]
            gone = Tombstone.objects.filter(
                resource=resource, user__isnull=True, removed_at__lte=until
            )
            if since:
                gone = gone.filter(removed_at__gt=datetime.fromisoformat(since))
            links = list(
                SyncLink.objects.filter(
                    connection=self.connection, local_model=object_spec.local_model,
                    object_type=object_spec.remote_type, deleted_at__isnull=True,
                    local_id__in=gone.values("object_id"),
                )
            )  # fmt: skip
            for start in range(0, len(links), object_spec.push_batch):
                chunk = links[start : start + object_spec.push_batch]
                self.provider.push_delete(
                    object_spec.remote_type, [link.remote_id for link in chunk]
                )
                SyncLink.objects.filter(pk__in=[link.pk for link in chunk]).update(
                    deleted_at=timezone.now(), note="Deleted in the CRM"
                )
                tally.deleted += len(chunk)
        return None


def _parents_of(record: Remote) -> list[str]:
    return record.parent_remote_ids or (
        [record.parent_remote_id] if record.parent_remote_id else []
    )


def links_save(links: list[SyncLink]) -> None:
    """The ledger rows' agreed values after a page, one UPDATE each sent in one pipeline:
    bulk_update's CASE expressions cost seconds per thousand rows of JSON."""
    fields = ["synced_values", "synced_hash", "held_fields", "remote_modified", "synced_at",
              "changed_by"]  # fmt: skip
    if connection.vendor != "postgresql":  # the embedded demo's SQLite
        SyncLink.objects.bulk_update(links, fields)
        return
    if not links:
        return
    with connection.cursor() as cursor:
        cursor.executemany(
            f"UPDATE {SyncLink._meta.db_table} SET synced_values = %s, synced_hash = %s, "
            "held_fields = %s, remote_modified = %s, synced_at = %s, changed_by = %s "
            "WHERE id = %s",
            [
                (Jsonb(link.synced_values), link.synced_hash, Jsonb(link.held_fields),
                 link.remote_modified, link.synced_at, link.changed_by, link.pk)
                for link in links
            ],
        )  # fmt: skip
