"""Connection secrets encrypted at rest with Fernet (cryptography). The key comes from the
environment (SYNC_SECRETS_KEY, comma-separated for rotation: the first encrypts, all decrypt);
without it, one is derived from SECRET_KEY, so changing SECRET_KEY then loses the secrets."""

import base64
import hashlib
import json

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


class SecretsUnreadable(Exception):
    """The stored secrets do not decrypt with the configured keys."""


def _fernet() -> MultiFernet:
    keys = [key.strip() for key in settings.SYNC_SECRETS_KEY.split(",") if key.strip()]
    if not keys:
        digest = hashlib.sha256(f"sync-secrets:{settings.SECRET_KEY}".encode()).digest()
        keys = [base64.urlsafe_b64encode(digest).decode()]
    return MultiFernet([Fernet(key) for key in keys])


def secrets_encrypt(values: dict[str, str]) -> str:
    return _fernet().encrypt(json.dumps(values).encode()).decode()


def secrets_decrypt(token: str) -> dict[str, str]:
    try:
        return json.loads(_fernet().decrypt(token.encode()))
    except (InvalidToken, ValueError) as exc:
        raise SecretsUnreadable("The connection's secrets cannot be decrypted.") from exc
