from django.conf import settings
from django.db import models
from knox.models import AbstractAuthToken
from knox.settings import CONSTANTS


class DeviceToken(AbstractAuthToken):
    """A django-rest-knox token (only its SHA-512 digest is stored) for one device of a user:
    a new token for the same device replaces the old one. Listed and revoked by its user on
    the Devices and API tokens page, by admins there and in the Django admin."""

    # An id of our own: the audit trail and the page name a token without its digest.
    id = models.BigAutoField(primary_key=True)
    digest = models.CharField(max_length=CONSTANTS.DIGEST_LENGTH, unique=True)
    device_name = models.CharField(max_length=100)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "device_name"], name="devicetoken_one_per_device"
            )
        ]

    def __str__(self) -> str:
        return f"{self.device_name} ({self.user})"


class IdempotentRequest(models.Model):
    """The answer to a POST sent with an Idempotency-Key: the same key again (a phone
    retrying over a flaky network) gets this answer back and creates nothing twice."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of method, path and body")
    status_code = models.PositiveSmallIntegerField()
    body = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="idempotentrequest_once"),
        ]

    def __str__(self) -> str:
        return f"{self.key} ({self.user_id})"
