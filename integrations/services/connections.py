"""Writes for connections and the conflicts queue; admins only."""

from typing import Any

from django.db import transaction
from django.utils import timezone

from crm.errors import ValidationFailed
from crm.permissions import require_admin
from crm.services import audit_record
from customers.services import customers_sync_write
from integrations.mapping import (
    CUSTOMER_FIELDS,
    DEFAULT_FIELD_MAPS,
    DEFAULT_STAGE_MAPS,
    SALE_FIELDS,
    python_value,
    values_hash,
)
from integrations.models import Connection, SyncConflict, SyncLink
from integrations.secrets import secrets_encrypt
from sales.models import Sale
from sales.services.sync import sales_sync_write

SECRET_FIELDS = {
    Connection.AuthFlow.TOKEN: ("access_token",),
    Connection.AuthFlow.CLIENT_CREDENTIALS: ("consumer_key", "consumer_secret"),
    Connection.AuthFlow.PASSWORD: (
        "consumer_key", "consumer_secret", "username", "password", "security_token",
    ),
}  # fmt: skip
# What the audit trail may record about a connection (never its secrets).
AUDITED = ["name", "provider", "auth_flow", "domain", "conflict_policy", "is_enabled",
           "push_existing"]  # fmt: skip


def _check_flow(provider: str, flow: str) -> None:
    allowed = (
        {Connection.AuthFlow.TOKEN}
        if provider == Connection.Provider.HUBSPOT
        else {Connection.AuthFlow.CLIENT_CREDENTIALS, Connection.AuthFlow.PASSWORD}
    )
    if flow not in allowed:
        raise ValidationFailed("This sign-in method is not offered by this provider.",
                               field="auth_flow")  # fmt: skip


def _check_secrets(flow: str, secrets: dict[str, str], *, partial: bool) -> dict[str, str]:
    wanted = SECRET_FIELDS[flow]
    given = {k: v.strip() for k, v in secrets.items() if k in wanted and v and v.strip()}
    if not partial:
        for name in wanted:
            if name not in given and name != "security_token":
                raise ValidationFailed("This field is required.", field=name)
    return given


@transaction.atomic
def connection_create(*, actor, data: dict[str, Any], secrets: dict[str, str]) -> Connection:
    require_admin(actor, "Only admins can connect a CRM.")
    _check_flow(data["provider"], data["auth_flow"])
    given = _check_secrets(data["auth_flow"], secrets, partial=False)
    if Connection.objects.filter(name__iexact=data["name"]).exists():
        raise ValidationFailed("A connection with this name exists.", field="name")
    connection = Connection.objects.create(
        **data,
        run_as=actor,
        secrets_encrypted=secrets_encrypt(given),
        field_map=DEFAULT_FIELD_MAPS[data["provider"]],
        stage_map=DEFAULT_STAGE_MAPS[data["provider"]],
    )
    audit_record(actor=actor, verb="create", instance=connection,
                 changes={k: data.get(k) for k in AUDITED})  # fmt: skip
    return connection


@transaction.atomic
def connection_update(
    *, actor, connection: Connection, data: dict[str, Any], secrets: dict[str, str]
) -> Connection:
    """Blank secret fields keep the stored ones (the form never shows them)."""
    require_admin(actor, "Only admins can change a connection.")
    connection = Connection.objects.select_for_update().get(pk=connection.pk)
    _check_flow(connection.provider, data.get("auth_flow", connection.auth_flow))
    from integrations.secrets import secrets_decrypt

    given = _check_secrets(data.get("auth_flow", connection.auth_flow), secrets, partial=True)
    changes = {
        k: [getattr(connection, k), v] for k, v in data.items() if getattr(connection, k) != v
    }
    for name, value in data.items():
        setattr(connection, name, value)
    fields = [*data, "updated_at"]
    if given:
        connection.secrets_encrypted = secrets_encrypt(
            {**secrets_decrypt(connection.secrets_encrypted), **given}
        )
        fields.append("secrets_encrypted")
        changes["secrets"] = "replaced"
    connection.save(update_fields=fields)
    if changes:
        audit_record(actor=actor, verb="update", instance=connection, changes=changes)
    return connection


@transaction.atomic
def connection_mappings_save(
    *, actor, connection: Connection, field_map: dict, stage_map: dict
) -> Connection:
    require_admin(actor, "Only admins can change mappings.")
    allowed = set(CUSTOMER_FIELDS) | set(SALE_FIELDS)
    if not isinstance(field_map, dict) or not all(
        isinstance(v, dict) and all(isinstance(k, str) and t in allowed for k, t in v.items())
        for v in field_map.values()
    ):
        raise ValidationFailed(
            "Map each remote object to {remote property: CRM field}; CRM fields: "
            + ", ".join(sorted(allowed)),
            field="field_map",
        )
    if not isinstance(stage_map, dict) or not all(
        isinstance(k, str) and v in Sale.Status.values for k, v in stage_map.items()
    ):
        raise ValidationFailed(
            "Map each remote stage to one of " + ", ".join(Sale.Status.values), field="stage_map"
        )
    connection.field_map, connection.stage_map = field_map, stage_map
    connection.save(update_fields=["field_map", "stage_map", "updated_at"])
    audit_record(actor=actor, verb="update", instance=connection,
                 changes={"field_map": field_map, "stage_map": stage_map})  # fmt: skip
    return connection


def connection_test(*, actor, connection: Connection, sleep=None) -> tuple[bool, str]:
    """One cheap authenticated call; the outcome is kept on the connection. The message is
    the remote's, never a secret."""
    require_admin(actor, "Only admins can test a connection.")
    from integrations.providers import provider_for

    try:
        ok, message = True, provider_for(connection, sleep=sleep).test()
    except Exception as error:  # noqa: BLE001 - any failure is the test's answer
        ok, message = False, f"{type(error).__name__}: {str(error)[:400]}"
    Connection.objects.filter(pk=connection.pk).update(
        last_tested_at=timezone.now(), last_test_ok=ok, last_test_message=message[:500]
    )
    return ok, message


@transaction.atomic
def connection_delete(*, actor, connection: Connection) -> None:
    require_admin(actor, "Only admins can delete a connection.")
    audit_record(actor=actor, verb="delete", instance=connection,
                 changes={k: getattr(connection, k) for k in AUDITED})  # fmt: skip
    connection.delete()


@transaction.atomic
def conflict_resolve(*, actor, conflict: SyncConflict, keep: str) -> SyncConflict:
    """Settle a queued conflict: keep the CRM's value (pushed at the next run) or take the
    remote's (written here)."""
    require_admin(actor, "Only admins can settle sync conflicts.")
    conflict = SyncConflict.objects.select_for_update().select_related("link").get(pk=conflict.pk)
    if conflict.resolved_at is not None:
        raise ValidationFailed("This conflict was settled already.")
    if keep not in SyncConflict.Resolution.values:
        raise ValidationFailed("Choose the CRM's or the remote value.")
    link = SyncLink.objects.select_for_update().get(pk=conflict.link_id)
    connection = Connection.objects.select_for_update().get(pk=link.connection_id)
    kinds = CUSTOMER_FIELDS if link.local_model == "customer" else SALE_FIELDS
    if keep == SyncConflict.Resolution.REMOTE and link.local_id:
        writer = customers_sync_write if link.local_model == "customer" else sales_sync_write
        value = python_value(kinds[conflict.field], conflict.remote_value)
        writer(actor=actor, creates=[], updates=[(link.local_id, {conflict.field: value})],
               via="conflict resolution")  # fmt: skip
    else:
        repush = connection.cursors.setdefault("repush", {}).setdefault(link.local_model, [])
        if link.local_id and link.local_id not in repush:
            repush.append(link.local_id)
        connection.save(update_fields=["cursors", "updated_at"])
    link.synced_values = {**link.synced_values, conflict.field: conflict.remote_value}
    link.synced_hash = values_hash(link.synced_values)
    link.held_fields = [f for f in link.held_fields if f != conflict.field]
    link.save(update_fields=["synced_values", "synced_hash", "held_fields"])
    conflict.resolved_at, conflict.resolved_by, conflict.resolution = timezone.now(), actor, keep
    conflict.save(update_fields=["resolved_at", "resolved_by", "resolution"])
    audit_record(
        actor=actor,
        verb="update",
        instance=connection,
        changes={"conflict": conflict.pk, "field": conflict.field, "kept": keep},
    )
    return conflict
