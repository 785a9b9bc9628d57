"""Django admin: connections without their secrets (the encrypted field is not even listed),
runs and the ledger read-only."""

from django.contrib import admin

from integrations.models import Connection, SyncConflict, SyncLink, SyncRun


@admin.register(Connection)
class ConnectionAdmin(admin.ModelAdmin):
    list_display = ["name", "provider", "conflict_policy", "is_enabled", "first_import_done_at"]
    fields = ["name", "provider", "auth_flow", "domain", "conflict_policy", "is_enabled",
              "last_tested_at", "last_test_ok", "last_test_message"]  # fmt: skip
    readonly_fields = ["provider", "auth_flow", "last_tested_at", "last_test_ok",
                       "last_test_message"]  # fmt: skip

    def has_add_permission(self, request):
        return False  # secrets are entered on the connection page, where they are encrypted


@admin.register(SyncRun)
class SyncRunAdmin(admin.ModelAdmin):
    list_display = ["connection", "kind", "status", "created_at", "finished_at", "api_calls"]
    list_filter = ["status", "kind"]

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(SyncLink)
class SyncLinkAdmin(admin.ModelAdmin):
    list_display = ["connection", "object_type", "remote_id", "local_model", "local_id",
                    "changed_by", "deleted_at"]  # fmt: skip
    search_fields = ["remote_id"]
    list_filter = ["object_type"]

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(SyncConflict)
class SyncConflictAdmin(admin.ModelAdmin):
    list_display = ["connection", "link", "field", "detected_at", "resolved_at"]

    def has_change_permission(self, request, obj=None):
        return False
