"""Shared writes: the audit trail that every other app's services append to."""

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.db import models
from django.utils import timezone

from crm.models import AuditEvent, SchedulerHeartbeat


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        # By value: 1000 and 1000.00 are the same amount.
        return format(value.normalize(), "f")
    if isinstance(value, date | datetime):
        return str(value)
    if isinstance(value, models.Model):
        return value.pk
    return value


def model_snapshot(instance: models.Model, fields: list[str]) -> dict[str, Any]:
    """Field values of `instance` (foreign keys as ids), ready for an audit diff."""
    snapshot = {}
    for name in fields:
        field = instance._meta.get_field(name)
        attname = field.attname if field.is_relation else name
        snapshot[name] = _jsonable(getattr(instance, attname))
    return snapshot


def diff_snapshots(before: dict[str, Any], after: dict[str, Any]) -> dict[str, list[Any]]:
    """{field: [old, new]} for every field whose value changed."""
    return {
        name: [before.get(name), value]
        for name, value in after.items()
        if before.get(name) != value
    }


def audit_record(
    *,
    actor,
    verb: str,
    instance: models.Model,
    changes: dict[str, Any] | None = None,
) -> AuditEvent:
    return AuditEvent.objects.create(
        actor=actor if getattr(actor, "pk", None) else None,
        verb=verb,
        content_type_id=_content_type_id(instance),
        object_id=str(instance.pk),
        object_repr=str(instance)[:200],
        changes={key: _jsonable(value) for key, value in (changes or {}).items()},
    )


# From this many rows an audit batch goes by COPY: no model instance per row (a CRM sync's
# first import writes 170,000 of them).
AUDIT_COPY_FROM = 500


def audit_record_many(*, actor, verb: str, entries: list[tuple[models.Model, dict]]) -> None:
    """One audit row per (instance, changes) pair, in one INSERT (or COPY), for bulk actions."""
    if not entries:
        return
    content_type_id = _content_type_id(entries[0][0])
    if len(entries) >= AUDIT_COPY_FROM:
        from crm.bulk import bulk_insert

        actor_id = getattr(actor, "pk", None)
        now = timezone.now()
        bulk_insert(
            AuditEvent,
            [
                {"actor_id": actor_id, "verb": verb, "content_type_id": content_type_id,
                 "object_id": str(instance.pk), "object_repr": str(instance)[:200],
                 "changes": {key: _jsonable(value) for key, value in changes.items()},
                 "at": now}
                for instance, changes in entries
            ],
        )  # fmt: skip
        return
    AuditEvent.objects.bulk_create(
        AuditEvent(
            actor=actor if getattr(actor, "pk", None) else None,
            verb=verb,
            content_type_id=content_type_id,
            object_id=str(instance.pk),
            object_repr=str(instance)[:200],
            changes={key: _jsonable(value) for key, value in changes.items()},
        )
        for instance, changes in entries
    )


def _content_type_id(instance: models.Model) -> int:
    from django.contrib.contenttypes.models import ContentType

    return ContentType.objects.get_for_model(instance).pk


def scheduler_heartbeat_record(*, name: str = "beat") -> None:
    SchedulerHeartbeat.objects.update_or_create(
        name=name, defaults={"last_seen_at": timezone.now()}
    )


def send_email(*, to: str, subject: str, text: str, html: str | None = None) -> None:
    """The one way the CRM sends a single email. Django's email backend for now (console in
    development, locmem in tests); the campaigns app backs it with SendGrid."""
    from django.conf import settings
    from django.core.mail import EmailMultiAlternatives

    message = EmailMultiAlternatives(
        subject=subject, body=text, from_email=settings.DEFAULT_FROM_EMAIL, to=[to]
    )
    if html:
        message.attach_alternative(html, "text/html")
    message.send()


def tombstones_record_deleted(*, resource: str, viewers: dict[int, set[int]]) -> None:
    """Records about to be deleted: whoever saw them (`viewers`, from crm.permissions'
    *_viewer_ids, taken before the delete) must drop them at their next sync; the row
    without a user is for admins, who see everything."""
    from crm.models import Tombstone

    now = timezone.now()
    Tombstone.objects.bulk_create(
        Tombstone(resource=resource, object_id=pk, user_id=user_id, removed_at=now)
        for pk, users in viewers.items()
        for user_id in [None, *users]
    )


def tombstones_record_reach_lost(
    *, resource: str, before: dict[int, set[int]], after: dict[int, set[int]]
) -> None:
    """Records that left users' reach: `before` and `after` map each record to the users who
    saw it before and after a change (crm.permissions' *_viewer_ids); who saw it before and
    no longer does gets a tombstone."""
    from crm.models import Tombstone

    now = timezone.now()
    Tombstone.objects.bulk_create(
        Tombstone(resource=resource, object_id=pk, user_id=user_id, removed_at=now)
        for pk, users in before.items()
        for user_id in users - after.get(pk, set())
    )
