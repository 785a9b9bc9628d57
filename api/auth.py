"""Who is calling: a device token (django-rest-knox, hashed, expiring) or the browser's
session. A revoked token no longer exists and an expired one is deleted on use: both 401."""

from datetime import timedelta

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from knox.auth import TokenAuthentication
from rest_framework import exceptions

LAST_USED_PRECISION = timedelta(minutes=1)


class DeviceTokenAuthentication(TokenAuthentication):
    """knox's token check; also notes when the device last called (at most once a minute,
    so a busy phone does not write on every request), for the Devices and API tokens page."""

    def authenticate_credentials(self, token: bytes):
        # knox decodes the header as UTF-8 and fails with a 500 on anything else (latin-1
        # bytes from a broken client); a token is ASCII, so anything else is simply wrong.
        try:
            token.decode("ascii")
        except UnicodeDecodeError as error:
            raise exceptions.AuthenticationFailed("Invalid token.") from error
        return super().authenticate_credentials(token)

    def validate_user(self, auth_token):
        user, token = super().validate_user(auth_token)
        now = timezone.now()
        if token.last_used_at is None or now - token.last_used_at > LAST_USED_PRECISION:
            type(token).objects.filter(pk=token.pk).update(last_used_at=now)
            token.last_used_at = now
        return user, token


class DeviceTokenScheme(OpenApiAuthenticationExtension):
    """How the schema describes the token (`Authorization: Token crm_...`)."""

    target_class = DeviceTokenAuthentication
    name = "deviceToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Token <token>`, from POST /api/v1/auth/token/ or the Devices and "
            "API tokens page.",
        }
