"""Signed, expiring tracking tokens that name a customer (for links, forms and pixels)."""

from django.conf import settings
from django.core import signing

SALT = "leads.tracking"


def tracking_token_for(customer_id: int) -> str:
    return signing.dumps({"c": customer_id}, salt=SALT, compress=True)


def customer_id_from_token(token: str) -> int:
    """The customer id inside a valid token; raises signing.BadSignature when tampered or
    signing.SignatureExpired (a BadSignature) when older than TRACKING_TOKEN_MAX_AGE."""
    payload = signing.loads(token, salt=SALT, max_age=settings.TRACKING_TOKEN_MAX_AGE_SECONDS)
    return int(payload["c"])
