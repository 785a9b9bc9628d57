"""Writes of the API layer: device tokens (issue, revoke), audited like every write."""

from django.db import transaction
from knox.settings import knox_settings

from api.models import DeviceToken
from crm.errors import PermissionDenied, ValidationFailed
from crm.roles import is_admin
from crm.services import audit_record

MAX_DEVICES_PER_USER = 20


@transaction.atomic
def device_token_create(*, actor, device_name: str) -> tuple[DeviceToken, str]:
    """A new token for one of the actor's devices, replacing that device's old token.
    Returns the row and the token itself, which is shown once and never stored."""
    device_name = " ".join((device_name or "").split())[:100]
    if not device_name:
        raise ValidationFailed("Name the device (e.g. “Anna's phone”).", field="device_name")
    DeviceToken.objects.filter(user=actor, device_name=device_name).delete()
    if DeviceToken.objects.filter(user=actor).count() >= MAX_DEVICES_PER_USER:
        raise ValidationFailed(
            f"You have {MAX_DEVICES_PER_USER} devices; revoke one first.", field="device_name"
        )
    token, raw = DeviceToken.objects.create(
        user=actor, expiry=knox_settings.TOKEN_TTL, device_name=device_name
    )
    audit_record(actor=actor, verb="create", instance=token,
                 changes={"device_name": device_name, "expiry": token.expiry})  # fmt: skip
    return token, raw


@transaction.atomic
def device_token_revoke(*, actor, token: DeviceToken) -> None:
    """Revoke a token: its user or an admin. The device's next call answers 401."""
    if token.user_id != actor.pk and not is_admin(actor):
        raise PermissionDenied("Only the token's owner or an admin can revoke it.")
    audit_record(actor=actor, verb="delete", instance=token,
                 changes={"device_name": token.device_name, "user": token.user_id})  # fmt: skip
    token.delete()


def device_tokens_for(*, user, everyone: bool = False):
    """The user's device tokens; with `everyone`, an admin sees every user's."""
    tokens = DeviceToken.objects.select_related("user").order_by("user__username", "-created")
    if everyone and is_admin(user):
        return tokens
    return tokens.filter(user=user)
