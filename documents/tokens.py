"""Signed, expiring share links for a document version (proposals sent to customers)."""

from django.conf import settings
from django.core import signing
from django.urls import reverse

SALT = "documents.share"


def share_token(document_id: int) -> str:
    return signing.TimestampSigner(salt=SALT).sign_object({"d": document_id})


def share_url(document_id: int) -> str:
    return settings.SITE_URL + reverse("document_share_open", args=[share_token(document_id)])


def share_token_read(token: str) -> int:
    """The document id; signing.BadSignature when tampered, SignatureExpired when old."""
    payload = signing.TimestampSigner(salt=SALT).unsign_object(
        token, max_age=settings.DOCUMENT_SHARE_MAX_AGE_SECONDS
    )
    return int(payload["d"])
