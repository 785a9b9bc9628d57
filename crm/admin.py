from django.contrib import admin

from crm.admin_widgets import GarbageProofAutocompleteMixin
from crm.models import AuditEvent, SchedulerHeartbeat, Team, TeamMembership


class TeamMembershipInline(GarbageProofAutocompleteMixin, admin.TabularInline):
    model = TeamMembership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ["name", "created_at"]
    search_fields = ["name"]
    filter_horizontal = ["managers"]
    inlines = [TeamMembershipInline]


@admin.register(TeamMembership)
class TeamMembershipAdmin(GarbageProofAutocompleteMixin, admin.ModelAdmin):
    list_display = ["user", "team", "is_senior", "joined_at"]
    list_filter = ["team", "is_senior"]
    search_fields = ["user__username", "user__email", "team__name"]
    autocomplete_fields = ["user", "team"]


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records the app writes through its services only: shown in admin, never edited,
    added or deleted there, also by admins."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    """The audit trail is append-only."""

    list_display = ["at", "actor", "verb", "content_type", "object_repr"]
    list_filter = ["verb", "content_type"]
    search_fields = ["object_repr", "actor__username"]
    date_hierarchy = "at"
    list_select_related = ["actor", "content_type"]


@admin.register(SchedulerHeartbeat)
class SchedulerHeartbeatAdmin(admin.ModelAdmin):
    list_display = ["name", "last_seen_at"]
