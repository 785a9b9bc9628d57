"""Signed one-click unsubscribe links: they name a customer (and the message they came in)."""

from django.conf import settings
from django.core import signing
from django.urls import reverse

SALT = "campaigns.unsubscribe"


def unsubscribe_token(customer_id: int, message_id: int | None = None) -> str:
    payload = {"c": customer_id}
    if message_id:
        payload["m"] = message_id
    return signing.dumps(payload, salt=SALT, compress=True)


def unsubscribe_url(customer_id: int, message_id: int | None = None) -> str:
    token = unsubscribe_token(customer_id, message_id)
    return settings.SITE_URL + reverse("unsubscribe", args=[token])


def unsubscribe_token_read(token: str) -> tuple[int, int | None]:
    """(customer id, message id or None); signing.BadSignature when tampered or expired."""
    payload = signing.loads(token, salt=SALT, max_age=settings.UNSUBSCRIBE_TOKEN_MAX_AGE_SECONDS)
    return int(payload["c"]), (int(payload["m"]) if payload.get("m") else None)
