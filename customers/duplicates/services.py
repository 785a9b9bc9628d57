"""Writes for duplicate customers: scanning, dismissing, merging, undoing a merge and the
bulk merge. Every merge and every undo runs in one transaction and leaves one audit entry."""

import json
import logging
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from uuid import UUID

from django.apps import apps
from django.conf import settings
from django.core import serializers
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from crm import cache as crm_cache
from crm.errors import PermissionDenied, ValidationFailed
from crm.models import Tombstone
from crm.permissions import editable_customers, require_admin, require_manager
from crm.permissions.duplicates import may_merge, may_own
from crm.permissions.viewers import customer_viewer_ids, sale_viewer_ids
from crm.reactions import Event, react
from crm.services import (
    audit_record,
    diff_snapshots,
    model_snapshot,
    tombstones_record_deleted,
    tombstones_record_reach_lost,
)
from customers.duplicates import matching
from customers.duplicates.models import CustomerMerge, DuplicateJob, DuplicatePair
from customers.duplicates.relations import (
    MANY_TO_MANY,
    RELATIONS,
    Handling,
    customer_relations,
    relation_key,
    unhandled_relations,
)
from customers.models import Customer, EmailConsent
from customers.services import AUDITED_FIELDS, customers_changed

logger = logging.getLogger(__name__)

# The fields a merge lets the user choose, one value per field from either record.
MERGE_FIELDS = [field for field in AUDITED_FIELDS if field != "email_consent_source"]
# Follow from the choices rather than being chosen: consent's source and time go with the
# consent chosen; the earliest unsubscribe and creation date stay.
FOLLOWING_FIELDS = ["email_consent_source", "email_consent_at", "unsubscribed_at", "created_at"]
SNAPSHOT_FIELDS = MERGE_FIELDS + FOLLOWING_FIELDS
BOTH = "both"  # the notes of both records, one after the other
COMBINABLE_FIELDS = {"notes"}
# Least permissive first: a merge never turns a withdrawal into consent by default.
CONSENT_ORDER = [EmailConsent.WITHDRAWN, EmailConsent.UNKNOWN, EmailConsent.GRANTED]
SCAN_PARTS = 10
STALE_JOB = timedelta(hours=1)  # longer than the task time limit: its worker died


# Finding --------------------------------------------------------------------------------------


def duplicate_scan_start(*, actor=None) -> DuplicateJob:
    """Queue a scan of every customer, or return the one already queued or running."""
    if actor is not None:
        require_manager(actor, "Only managers and admins start a duplicates scan.")
    return _job_start(kind=DuplicateJob.Kind.SCAN, actor=actor)


def _job_start(*, kind: str, actor, **fields) -> DuplicateJob:
    from customers.duplicates import tasks

    DuplicateJob.objects.filter(
        kind=kind,
        status__in=[DuplicateJob.Status.QUEUED, DuplicateJob.Status.RUNNING],
        created_at__lt=timezone.now() - STALE_JOB,
    ).update(status=DuplicateJob.Status.FAILED, error="Stopped: no worker finished it.")
    with transaction.atomic():
        active = DuplicateJob.objects.filter(
            kind=kind, status__in=[DuplicateJob.Status.QUEUED, DuplicateJob.Status.RUNNING]
        ).first()
        if active:
            return active
        try:
            with transaction.atomic():
                job = DuplicateJob.objects.create(kind=kind, started_by=actor, **fields)
        except IntegrityError:  # another request started one a moment ago
            return DuplicateJob.objects.get(
                kind=kind, status__in=[DuplicateJob.Status.QUEUED, DuplicateJob.Status.RUNNING]
            )
        task = tasks.duplicates_scan if kind == DuplicateJob.Kind.SCAN else tasks.bulk_merge
        transaction.on_commit(lambda: task.delay(job.pk))
    return job


def _job_claim(job_id: int, kind: str) -> DuplicateJob | None:
    """The job, now running; None when it is gone or already finished (a redelivery)."""
    with transaction.atomic():
        job = DuplicateJob.objects.select_for_update().filter(pk=job_id, kind=kind).first()
        if job is None or not job.is_active:
            return None
        job.status = DuplicateJob.Status.RUNNING
        job.started_at = job.started_at or timezone.now()
        job.save(update_fields=["status", "started_at"])
    return job


def _job_progress(job: DuplicateJob, *, done: int, total: int, label: str, **counts) -> None:
    DuplicateJob.objects.filter(pk=job.pk).update(
        steps_done=done, steps_total=total, step_label=label, **counts
    )


def _job_finish(job: DuplicateJob, *, error: str = "", **counts) -> None:
    DuplicateJob.objects.filter(pk=job.pk).update(
        status=DuplicateJob.Status.FAILED if error else DuplicateJob.Status.DONE,
        error=error,
        finished_at=timezone.now(),
        **counts,
    )


def duplicate_scan_run(*, job_id: int) -> None:
    """Find the duplicate pairs among all customers (matching's blocking and scoring, set-
    based in SQL), in steps whose progress the queue page shows. Dismissed pairs stay
    dismissed; open pairs no longer found go."""
    job = _job_claim(job_id, DuplicateJob.Kind.SCAN)
    if job is None:
        return
    if connection.vendor != "postgresql":
        _job_finish(job, error="Finding duplicates needs PostgreSQL (pg_trgm).")
        return
    total = 2 + SCAN_PARTS + 1
    try:
        with connection.cursor() as cursor:
            _job_progress(job, done=0, total=total, label="Reading the customers")
            matching.scan_prepare_keys(cursor)
            _job_progress(job, done=1, total=total, label="Grouping likely matches")
            matching.scan_prepare_blocks(cursor)
            for part in range(SCAN_PARTS):
                _job_progress(
                    job, done=2 + part, total=total, label=f"Comparing ({part + 1}/{SCAN_PARTS})"
                )
                matching.scan_score_part(cursor, part=part, parts=SCAN_PARTS, job_id=job.pk)
            pairs = matching.scan_finish(cursor, job_id=job.pk)
    except Exception as error:
        logger.exception("Duplicates scan %s failed", job.pk)
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE IF EXISTS dup_keys, dup_blocks")
        _job_finish(job, error=f"The scan failed: {error}"[:2000])
        raise
    _job_finish(job, pair_count=pairs)


def duplicate_pairs_refresh_for(*, customer: Customer) -> None:
    """Score one customer against the others again (after a merge or an undo): its open
    pairs become what matching finds now; its dismissed pairs stay."""
    found = matching.matches_for(
        {
            "name": customer.name,
            "email": customer.email,
            "phone": customer.phone,
            "company": customer.company,
        },
        exclude_ids=[customer.pk],
        limit=50,
        min_confidence=settings.DUPLICATE_MIN_CONFIDENCE,
    )
    DuplicatePair.objects.filter(status=DuplicatePair.Status.OPEN).filter(
        customer_a=customer
    ).delete()
    DuplicatePair.objects.filter(status=DuplicatePair.Status.OPEN).filter(
        customer_b=customer
    ).delete()
    dismissed = set(
        DuplicatePair.objects.filter(customer_a=customer).values_list("customer_b", flat=True)
    ) | set(DuplicatePair.objects.filter(customer_b=customer).values_list("customer_a", flat=True))
    DuplicatePair.objects.bulk_create(
        [
            DuplicatePair(
                customer_a_id=min(customer.pk, other),
                customer_b_id=max(customer.pk, other),
                confidence=confidence,
                reasons=reasons,
            )
            for other, confidence, reasons in found
            if other not in dismissed
        ],
        ignore_conflicts=True,
    )


@transaction.atomic
def duplicate_pair_dismiss(*, actor, pair: DuplicatePair) -> DuplicatePair:
    """ "Not a duplicate": the pair stays, dismissed, and no scan reopens it."""
    require_manager(actor, "Only managers and admins review duplicates.")
    pair = DuplicatePair.objects.select_for_update().get(pk=pair.pk)
    if pair.status == DuplicatePair.Status.DISMISSED:
        return pair
    pair.status = DuplicatePair.Status.DISMISSED
    pair.dismissed_by = actor
    pair.dismissed_at = timezone.now()
    pair.save(update_fields=["status", "dismissed_by", "dismissed_at"])
    return pair


@transaction.atomic
def duplicate_pair_reopen(*, actor, pair: DuplicatePair) -> DuplicatePair:
    require_manager(actor, "Only managers and admins review duplicates.")
    pair = DuplicatePair.objects.select_for_update().get(pk=pair.pk)
    pair.status = DuplicatePair.Status.OPEN
    pair.dismissed_by = None
    pair.dismissed_at = None
    pair.save(update_fields=["status", "dismissed_by", "dismissed_at"])
    return pair


# Merging --------------------------------------------------------------------------------------


def _is_empty(value) -> bool:
    return value is None or value == ""


def merge_default_choices(*, survivor: Customer, other: Customer) -> dict[str, int | str]:
    """{field: id of the customer whose value stays, or BOTH} for the fields whose values
    differ: the survivor's, unless it has none; the latest contact; the least permissive
    consent; both records' notes."""
    choices: dict[str, int | str] = {}
    for name in MERGE_FIELDS:
        attname = Customer._meta.get_field(name).attname
        mine, theirs = getattr(survivor, attname), getattr(other, attname)
        if mine == theirs:
            continue
        pick = survivor.pk
        if _is_empty(mine) and not _is_empty(theirs):
            pick = other.pk
        elif name == "last_contact_date" and not _is_empty(theirs):
            pick = other.pk if mine is None or theirs > mine else survivor.pk
        elif name == "email_consent":
            pick = min((survivor, other), key=lambda c: CONSENT_ORDER.index(c.email_consent)).pk
        elif name in COMBINABLE_FIELDS and not _is_empty(mine) and not _is_empty(theirs):
            pick = BOTH
        choices[name] = pick
    return choices


def _apply_choices(survivor: Customer, other: Customer, choices: dict[str, int | str]) -> None:
    for name in MERGE_FIELDS:
        pick = choices.get(name, survivor.pk)
        field = Customer._meta.get_field(name)
        if pick == BOTH and name in COMBINABLE_FIELDS:
            mine, theirs = getattr(survivor, name), getattr(other, name)
            if theirs and theirs not in mine:
                setattr(survivor, name, f"{mine}\n\n{theirs}".strip())
        elif pick == other.pk:
            setattr(survivor, field.attname, getattr(other, field.attname))
        elif pick not in (survivor.pk, BOTH):
            raise ValidationFailed(f"Choose which record's {field.verbose_name} to keep.")
    if choices.get("email_consent") == other.pk:
        survivor.email_consent_source = other.email_consent_source
        survivor.email_consent_at = other.email_consent_at
    stamps = [c.unsubscribed_at for c in (survivor, other) if c.unsubscribed_at]
    survivor.unsubscribed_at = min(stamps) if stamps else None
    survivor.created_at = min(survivor.created_at, other.created_at)


class _ExactEncoder(json.JSONEncoder):
    """Django's JSON encoder rounds times to milliseconds; an undo restores them exactly."""

    def default(self, value):
        if isinstance(value, datetime | date | time):
            return value.isoformat()
        if isinstance(value, Decimal | UUID):
            return str(value)
        return super().default(value)


def _serialized(queryset) -> list[dict]:
    """The rows as Django's serializer writes them (with their many-to-many ids), JSON-safe."""
    return json.loads(json.dumps(serializers.serialize("python", queryset), cls=_ExactEncoder))


def _restore(rows: list[dict]):
    """Django's deserializer over _serialized rows: DeserializedObjects to save()."""
    return serializers.deserialize("python", rows)


def _conflicting_ids(model, fk: str, *, survivor_id: int, other_id: int) -> list[int]:
    """Rows of the merged-away customer that a uniqueness including `fk` forbids on the
    survivor (a row of the survivor already takes their place)."""
    ids: set[int] = set()
    if (
        model._meta.get_field(fk).unique
        and model._base_manager.filter(**{fk: survivor_id}).exists()
    ):
        # One row per customer (a one-to-one): the survivor's own stays.
        ids |= set(model._base_manager.filter(**{fk: other_id}).values_list("pk", flat=True))
    for constraint in model._meta.constraints:
        fields = getattr(constraint, "fields", ())
        if fk not in fields:
            continue
        others = [name for name in fields if name != fk]
        condition = getattr(constraint, "condition", None)
        survivor_rows = model._base_manager.filter(
            **{fk: survivor_id}, **{name: OuterRef(name) for name in others}
        )
        rows = model._base_manager.filter(**{fk: other_id})
        if condition is not None:
            survivor_rows, rows = survivor_rows.filter(condition), rows.filter(condition)
        ids |= set(rows.filter(Exists(survivor_rows)).values_list("pk", flat=True))
    return sorted(ids)


def _touch(model) -> dict:
    """Bump updated_at where the model has one, so the API's delta sync sees the move."""
    fields = {field.name for field in model._meta.concrete_fields}
    return {"updated_at": timezone.now()} if "updated_at" in fields else {}


@transaction.atomic
def customers_merge(
    *,
    actor,
    survivor_id: int,
    other_id: int,
    choices: dict[str, int | str] | None = None,
    pair: DuplicatePair | None = None,
) -> CustomerMerge:
    """Merge customer `other_id` into `survivor_id`: the survivor takes the chosen values
    (merge_default_choices where none is given), every row pointing at the other customer
    moves to the survivor (relations.RELATIONS says how, kind by kind), the other customer
    is deleted, and the CustomerMerge keeps what an undo needs. Refused unless the actor may
    change both customers."""
    if survivor_id == other_id:
        raise ValidationFailed("Choose two different customers to merge.")
    if not may_merge(actor, [survivor_id, other_id]):
        raise PermissionDenied("You may only merge customers you can change.")
    missing = unhandled_relations()
    if missing:
        raise ValidationFailed(
            "Merging does not know what to do with " + ", ".join(missing) + " yet."
        )
    locked = {
        customer.pk: customer
        for customer in editable_customers(actor)
        .select_for_update()
        .filter(pk__in=[survivor_id, other_id])
    }
    if len(locked) != 2:
        raise PermissionDenied("You may only merge customers you can change.")
    survivor, other = locked[survivor_id], locked[other_id]
    if choices is None:
        choices = merge_default_choices(survivor=survivor, other=other)
    before = model_snapshot(survivor, SNAPSHOT_FIELDS)
    other_snapshot = _serialized(Customer.objects.filter(pk=other.pk))
    other_fields = model_snapshot(other, SNAPSHOT_FIELDS)
    other_viewers = customer_viewer_ids([other.pk])

    moved: dict[str, list[int]] = {}
    detached: dict[str, list[int]] = {}
    removed: list[dict] = []
    sale_key = "sales.Sale.customer"
    other_sale_ids = list(
        apps.get_model("sales", "Sale")
        ._base_manager.filter(customer_id=other.pk)
        .values_list("pk", flat=True)
    )
    sales_seen_before = sale_viewer_ids(other_sale_ids)
    for relation in customer_relations():
        key = relation_key(relation)
        model, fk = relation.related_model, relation.field.name
        handling = RELATIONS[key]
        if handling == Handling.KEEP_ASIDE:
            removed += _serialized(model._base_manager.filter(**{fk: other.pk}))
        elif handling == Handling.MOVE:
            if relation.many_to_many:
                raise ValidationFailed(f"Merging cannot move the rows of {key} yet.")
            conflicts = _conflicting_ids(model, fk, survivor_id=survivor.pk, other_id=other.pk)
            if conflicts and relation.field.null:
                model._base_manager.filter(pk__in=conflicts).update(**{fk: None})
                detached[key] = conflicts
            elif conflicts:
                conflicting = model._base_manager.filter(pk__in=conflicts)
                removed += _serialized(conflicting)
                conflicting.delete()
            rows = model._base_manager.filter(**{fk: other.pk})
            ids = list(rows.values_list("pk", flat=True))
            if ids:
                model._base_manager.filter(pk__in=ids).update(**{fk: survivor.pk}, **_touch(model))
                moved[key] = ids
    added: dict[str, list[int]] = {}
    for name in MANY_TO_MANY:
        mine = set(getattr(survivor, name).values_list("pk", flat=True))
        new = sorted(set(getattr(other, name).values_list("pk", flat=True)) - mine)
        if new:
            getattr(survivor, name).add(*new)
            added[name] = new

    tombstones_record_deleted(resource=Tombstone.Resource.CUSTOMER, viewers=other_viewers)
    Customer.objects.filter(pk=other.pk).delete()
    _apply_choices(survivor, other, choices)
    after = model_snapshot(survivor, SNAPSHOT_FIELDS)
    changes = diff_snapshots(before, after)
    survivor.save(update_fields=[*SNAPSHOT_FIELDS, "updated_at"])
    tombstones_record_reach_lost(
        resource=Tombstone.Resource.DEAL,
        before=sales_seen_before,
        after=sale_viewer_ids(moved.get(sale_key, [])),
    )
    merge = CustomerMerge.objects.create(
        survivor=survivor,
        merged_customer_id=other.pk,
        merged_name=other.name[:200],
        merged_snapshot=other_snapshot,
        survivor_changes=changes,
        moved=moved,
        detached=detached,
        removed_rows=removed,
        added_relations=added,
        confidence=pair.confidence if pair else None,
        reasons=pair.reasons if pair else [],
        merged_by=actor,
    )
    audit_record(
        actor=actor,
        verb="merge",
        instance=survivor,
        changes={
            "merge": merge.pk,
            "merged_customer": {"id": other.pk, **other_fields},
            "survivor_before": before,
            "survivor_after": after,
            "moved": {key: len(ids) for key, ids in moved.items()},
        },
    )
    _after_change(survivor_ids=[survivor.pk], moved=moved)
    duplicate_pairs_refresh_for(customer=survivor)
    return merge


def _after_change(*, survivor_ids: list[int], moved: dict[str, list[int]]) -> None:
    """Lead scores and the search index follow (crm.reactions); cached deal figures too."""
    customers_changed(survivor_ids)
    for key, model in (
        ("sales.Task.customer", "task"),
        ("documents.Document.customer", "document"),
    ):
        if moved.get(key):
            react(Event.RECORDS_CHANGED, model=model, ids=moved[key])
    crm_cache.bump_on_commit(crm_cache.DEALS)


def merge_undo_deadline(merge: CustomerMerge):
    return merge.merged_at + timedelta(days=settings.DUPLICATE_UNDO_DAYS)


def merge_undo_refusal(merge: CustomerMerge) -> str:
    """Why the merge can no longer be undone, or "" when it can."""
    if merge.undone_at:
        return "This merge was undone already."
    if timezone.now() > merge_undo_deadline(merge):
        return f"A merge can be undone for {settings.DUPLICATE_UNDO_DAYS} days; this one is older."
    if merge.survivor_id is None:
        return "The customer it was merged into has been deleted."
    return ""


@transaction.atomic
def customer_merge_undo(*, actor, merge: CustomerMerge) -> Customer:
    """Restore the merged-away customer as it was and move back exactly the rows the merge
    moved (rows added to the survivor since stay with it); the survivor's fields the merge
    changed go back unless someone changed them since."""
    merge = CustomerMerge.objects.select_for_update().get(pk=merge.pk)
    refusal = merge_undo_refusal(merge)
    if refusal:
        raise ValidationFailed(refusal)
    survivor = editable_customers(actor).select_for_update().filter(pk=merge.survivor_id).first()
    fields = merge.merged_snapshot[0]["fields"]
    if survivor is None or not may_own(actor, fields.get("owner")):
        raise PermissionDenied("You may only undo merges of customers you can change.")
    if Customer.objects.filter(pk=merge.merged_customer_id).exists():
        raise ValidationFailed("The merged customer exists again; nothing to undo.")

    reverted = {}
    current = model_snapshot(survivor, SNAPSHOT_FIELDS)
    for name, (before, after) in merge.survivor_changes.items():
        if current.get(name) == after:
            field = Customer._meta.get_field(name)
            value = None if before is None else field.to_python(before)
            setattr(survivor, field.attname, value)
            reverted[name] = [after, before]
    if reverted:
        survivor.save(update_fields=[*reverted, "updated_at"])
    email = (fields.get("email") or "").lower()
    taken = Customer.objects.filter(email=email).exclude(pk=merge.merged_customer_id).first()
    if taken:
        raise ValidationFailed(
            f"“{taken}” now uses {email}; change that address first, then undo the merge."
        )
    for restored in _restore(merge.merged_snapshot):
        restored.save()
    # Saved raw, so updated_at kept its old value: the API's delta sync must see it return.
    Customer.objects.filter(pk=merge.merged_customer_id).update(updated_at=timezone.now())
    customer = Customer.objects.get(pk=merge.merged_customer_id)
    for name, ids in merge.added_relations.items():
        getattr(survivor, name).remove(*ids)

    moved_back = {}
    for key, ids in merge.moved.items():
        model, fk = _relation_model(key)
        moved_back[key] = model._base_manager.filter(pk__in=ids, **{fk: survivor.pk}).update(
            **{fk: customer.pk}, **_touch(model)
        )
    for key, ids in merge.detached.items():
        model, fk = _relation_model(key)
        model._base_manager.filter(pk__in=ids, **{f"{fk}__isnull": True}).update(
            **{fk: customer.pk}
        )
    lost = 0
    for row in _restore(merge.removed_rows):
        try:
            with transaction.atomic():
                row.save()
        except IntegrityError:  # what it pointed at is gone, or its place is taken now
            lost += 1
    sale_ids = merge.moved.get("sales.Sale.customer", [])
    seen_before = sale_viewer_ids(sale_ids)
    merge.undone_at = timezone.now()
    merge.undone_by = actor
    merge.save(update_fields=["undone_at", "undone_by"])
    tombstones_record_reach_lost(
        resource=Tombstone.Resource.DEAL, before=seen_before, after=sale_viewer_ids(sale_ids)
    )
    audit_record(
        actor=actor,
        verb="unmerge",
        instance=customer,
        changes={
            "merge": merge.pk,
            "survivor": survivor.pk,
            "moved_back": moved_back,
            "survivor_reverted": reverted,
            "rows_not_restored": lost,
        },
    )
    _after_change(survivor_ids=[survivor.pk, customer.pk], moved=merge.moved)
    duplicate_pairs_refresh_for(customer=survivor)
    return customer


def _relation_model(key: str):
    label, fk = key.rsplit(".", 1)
    return apps.get_model(label), fk


# Bulk -----------------------------------------------------------------------------------------


def bulk_merge_start(*, actor, min_confidence: int) -> DuplicateJob:
    """Merge every open pair at or above `min_confidence` with the default choices, in the
    background (admins only)."""
    require_admin(actor, "Only admins merge duplicates in bulk.")
    if not 1 <= min_confidence <= 100:
        raise ValidationFailed("Choose a confidence between 1 and 100.", field="min_confidence")
    return _job_start(kind=DuplicateJob.Kind.BULK_MERGE, actor=actor, min_confidence=min_confidence)


def bulk_merge_survivor(first: Customer, second: Customer) -> tuple[Customer, Customer]:
    """(survivor, merged-away) for a bulk merge: the older record stays."""
    return (
        (first, second)
        if (first.created_at, first.pk) <= (second.created_at, second.pk)
        else (
            second,
            first,
        )
    )


def bulk_merge_run(*, job_id: int) -> None:
    job = _job_claim(job_id, DuplicateJob.Kind.BULK_MERGE)
    if job is None:
        return
    actor = job.started_by
    pair_ids = list(
        DuplicatePair.objects.filter(
            status=DuplicatePair.Status.OPEN, confidence__gte=job.min_confidence
        ).values_list("pk", flat=True)
    )
    merged = skipped = 0
    for done, pair_id in enumerate(pair_ids):
        if done % 10 == 0:
            _job_progress(
                job,
                done=done,
                total=len(pair_ids),
                label=f"Merging pair {done + 1} of {len(pair_ids)}",
                merged_count=merged,
                skipped_count=skipped,
            )
        pair = DuplicatePair.objects.filter(pk=pair_id, status=DuplicatePair.Status.OPEN).first()
        if pair is None:  # one of its customers was merged into another already
            skipped += 1
            continue
        survivor, other = bulk_merge_survivor(pair.customer_a, pair.customer_b)
        try:
            customers_merge(actor=actor, survivor_id=survivor.pk, other_id=other.pk, pair=pair)
        except (ValidationFailed, PermissionDenied) as error:
            logger.info("Bulk merge %s skipped pair %s: %s", job.pk, pair_id, error)
            skipped += 1
        else:
            merged += 1
    _job_progress(
        job, done=len(pair_ids), total=len(pair_ids), label="Finished", merged_count=merged
    )
    _job_finish(job, merged_count=merged, skipped_count=skipped)
