"""Deals brought by a CRM sync (integrations): written in bulk, with the stage history every
status change must leave, one audit row each and one search reaction for all. Synced deals
get no stage tasks nor pipeline automation: they are the remote team's deals as they are."""

from typing import Any

from django.utils import timezone

from crm import cache as crm_cache
from crm.bulk import bulk_insert
from crm.reactions import Event, react
from crm.services import audit_record_many
from sales.models import Sale, StageChange


def sales_sync_write(
    *, actor, creates: list[dict[str, Any]], updates: list[tuple[int, dict[str, Any]]], via: str
) -> list[int]:
    """`creates` and `updates` hold field values by attname (customer_id, assigned_to_id);
    returns the new deals' ids in order. Runs in the caller's transaction."""
    now = timezone.now()
    rows = []
    for values in creates:
        status = values.get("status") or Sale.Status.NEW
        row = {
            "currency": "USD",
            "created_at": now,
            "updated_at": now,
            "stage_entered_at": now,
            "lost_reason": "",
            **values,
            "status": status,
            "furthest_stage_rank": Sale.funnel_rank([status]),
        }
        if status in Sale.CLOSED_STATUSES and not row.get("closed_at"):
            row["closed_at"] = now
        rows.append(row)
    created = bulk_insert(Sale, rows)
    history = [
        StageChange(
            sale_id=pk, from_status="", to_status=row["status"], changed_by=actor, changed_at=now,
            reason=f"Synced from {via}",
        )
        for pk, row in zip(created, rows, strict=True)
    ]  # fmt: skip
    current = Sale.objects.in_bulk([pk for pk, _ in updates]) if updates else {}
    changed: list[tuple[Sale, dict[str, Any]]] = []
    fields: set[str] = set()
    moved: list[int] = []
    for pk, values in updates:
        sale = current.get(pk)
        if sale is None:
            continue
        new_status = values.get("status")
        if new_status and new_status != sale.status:
            history.append(
                StageChange(
                    sale_id=pk, from_status=sale.status, to_status=new_status, changed_by=actor,
                    changed_at=now, reason=f"Synced from {via}",
                )
            )  # fmt: skip
            moved.append(pk)
            sale.stage_entered_at = now
            sale.furthest_stage_rank = max(sale.furthest_stage_rank, Sale.funnel_rank([new_status]))
            sale.closed_at = (sale.closed_at or now) if new_status in Sale.CLOSED_STATUSES else None
            fields.update({"stage_entered_at", "furthest_stage_rank", "closed_at"})
        for name, value in values.items():
            setattr(sale, name, value)
        sale.updated_at = now
        fields.update(values)
        changed.append((sale, values))
    if changed:
        Sale.objects.bulk_update(
            [sale for sale, _ in changed], [*sorted(fields), "updated_at"], batch_size=1000
        )
    if moved:
        StageChange.objects.filter(sale_id__in=moved, left_at__isnull=True).update(left_at=now)
    StageChange.objects.bulk_create(history, batch_size=2000)
    audit_record_many(
        actor=actor,
        verb="create",
        entries=[
            (Sale.from_db(None, ["id", "title"], (pk, row.get("title", ""))), {"sync": via})
            for pk, row in zip(created, rows, strict=True)
        ],
    )
    audit_record_many(
        actor=actor,
        verb="update",
        entries=[(sale, {"sync": via, "fields": sorted(values)}) for sale, values in changed],
    )
    ids = [*created, *(sale.pk for sale, _ in changed)]
    if ids:
        react(Event.RECORDS_CHANGED, model="sale", ids=ids)
        crm_cache.bump_on_commit(crm_cache.DEALS)
    return created
