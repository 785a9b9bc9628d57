"""Getting and revoking device tokens: the API's sign-in (POST /api/v1/auth/token/) and the
"Devices and API tokens" page (/api/tokens/)."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import authenticate
from django.core.cache import cache
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

from api import services
from api.base import ApiView
from api.errors import error_response
from api.models import DeviceToken
from crm.errors import ValidationFailed
from crm.http import client_ip
from crm.roles import is_admin


class TokenRequestSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=4096, style={"input_type": "password"})
    device_name = serializers.CharField(max_length=100)


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="Send as `Authorization: Token <token>`.")
    device_name = serializers.CharField()
    expiry = serializers.DateTimeField()


class TokenView(ApiView):
    """POST: sign in with username and password and get a token for this device (the same
    device again replaces its token). DELETE: revoke the token of this request."""

    def get_permissions(self):
        return [AllowAny()] if self.request.method == "POST" else super().get_permissions()

    def get_authenticators(self):
        if self.request is not None and self.request.method == "POST":
            return []  # the credentials are in the body; no session (and so no CSRF)
        return super().get_authenticators()

    @extend_schema(
        request=TokenRequestSerializer,
        responses={201: TokenSerializer, 401: OpenApiResponse(description="Wrong credentials")},
        auth=[],
    )
    def post(self, request):
        serializer = TokenRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        key = f"login-failures:{client_ip(request._request) or '-'}:{data['username'].lower()}"
        cache.add(key, 0, timeout=settings.LOGIN_FAILURE_WINDOW_SECONDS)
        if cache.incr(key) > settings.LOGIN_FAILURE_LIMIT:
            response = error_response(
                429, "Too many failed sign-in attempts. Wait and try again.", "throttled"
            )
            response["Retry-After"] = str(settings.LOGIN_FAILURE_WINDOW_SECONDS)
            return response
        user = authenticate(request._request, username=data["username"], password=data["password"])
        if user is None or not user.is_active:
            return error_response(401, "Wrong username or password.", "authentication_failed")
        cache.delete(key)
        token, raw = services.device_token_create(actor=user, device_name=data["device_name"])
        body = {"token": raw, "device_name": token.device_name, "expiry": token.expiry}
        return Response(TokenSerializer(body).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={204: None})
    def delete(self, request):
        if not isinstance(request.auth, DeviceToken):
            return error_response(400, "This request was not made with a token.", "no_token")
        services.device_token_revoke(actor=request.user, token=request.auth)
        return Response(status=status.HTTP_204_NO_CONTENT)


# The page ----------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def tokens_page(request):
    """Your devices and their tokens (an admin: everyone's); a new token for a device is
    shown once, right after it is made."""
    new_token = None
    error = None
    if request.method == "POST":
        try:
            token, new_token = services.device_token_create(
                actor=request.user, device_name=request.POST.get("device_name", "")
            )
        except ValidationFailed as failure:
            error = failure.message
    everyone = is_admin(request.user)
    context = {
        "tokens": services.device_tokens_for(user=request.user, everyone=everyone),
        "everyone": everyone,
        "new_token": new_token,
        "error": error,
    }
    return render(request, "api/tokens.html", context, status=422 if error else 200)


@require_POST
def token_revoke(request, pk: int):
    tokens = services.device_tokens_for(user=request.user, everyone=is_admin(request.user))
    token = tokens.filter(pk=pk).first()
    if token is None:
        messages.error(request, "That token is gone already.")
    else:
        services.device_token_revoke(actor=request.user, token=token)
        messages.success(request, f"Revoked the token of “{token.device_name}”.")
    return redirect("api:tokens")
