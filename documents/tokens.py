"""Signed, expiring share links for a document version (proposals sent to customers)."""

from django.conf import settings
from django.core import signing
from django.urls import reverse

SALT = "documents.share"


def share_token(document_id: int, customer_id: int | None = None) -> str:
    """`customer_id`: the customer the link was made for (a recommendation shared to them),
    whose engagement its opens record; without it, the document's own customer."""
    payload = {"d": document_id} if customer_id is None else {"d": document_id, "c": customer_id}
    return signing.TimestampSigner(salt=SALT).sign_object(payload)


def share_url(document_id: int, customer_id: int | None = None) -> str:
    token = share_token(document_id, customer_id)
    return settings.SITE_URL + reverse("document_share_open", args=[token])


def share_token_read(token: str) -> int:
    """The document id; signing.BadSignature when tampered, SignatureExpired when old."""
    return share_token_read_full(token)[0]


def share_token_read_full(token: str) -> tuple[int, int | None]:
    """(document id, customer id or None); the same errors as share_token_read."""
    payload = signing.TimestampSigner(salt=SALT).unsign_object(
        token, max_age=settings.DOCUMENT_SHARE_MAX_AGE_SECONDS
    )
    customer = payload.get("c")
    return int(payload["d"]), int(customer) if customer is not None else None
