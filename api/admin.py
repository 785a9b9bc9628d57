from django.contrib import admin, messages

from api import services
from api.models import DeviceToken, IdempotentRequest
from crm.admin import ReadOnlyAdmin


@admin.register(DeviceToken)
class DeviceTokenAdmin(ReadOnlyAdmin):
    """Device tokens: issued on sign-in or the Devices and API tokens page, revoked here by an
    admin (through the service, so the revocation is audited)."""

    list_display = ["device_name", "user", "created", "last_used_at", "expiry"]
    search_fields = ["device_name", "user__username"]
    list_select_related = ["user"]
    exclude = ["digest"]
    actions = ["revoke"]

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request, queryset):
        for token in queryset:
            services.device_token_revoke(actor=request.user, token=token)
        messages.success(request, "Revoked.")


@admin.register(IdempotentRequest)
class IdempotentRequestAdmin(ReadOnlyAdmin):
    list_display = ["key", "user", "status_code", "created_at"]
    search_fields = ["key", "user__username"]
    list_select_related = ["user"]
