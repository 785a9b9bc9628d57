from django.contrib import admin
from django.utils import timezone

from crm.admin_widgets import GarbageProofAutocompleteMixin
from customers.models import (
    ConsentSource,
    Customer,
    CustomerImport,
    CustomerNote,
    Suppression,
    Tag,
)


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    list_display = ["name", "color", "created_at"]
    search_fields = ["name"]


class CustomerNoteInline(GarbageProofAutocompleteMixin, admin.TabularInline):
    model = CustomerNote
    extra = 0
    fields = ["text", "author", "created_at"]
    readonly_fields = ["created_at"]
    autocomplete_fields = ["author"]


@admin.register(Customer)
class CustomerAdmin(GarbageProofAutocompleteMixin, admin.ModelAdmin):
    list_display = [
        "name",
        "email",
        "company",
        "lifecycle_stage",
        "engagement_level",
        "region",
        "industry",
        "owner",
        "last_contact_date",
        "created_at",
    ]
    list_filter = [
        "lifecycle_stage",
        "engagement_level",
        "region",
        "industry",
        "source",
        "email_consent",
        "tags",
    ]
    search_fields = ["name", "email", "company", "phone"]
    list_select_related = ["owner"]
    autocomplete_fields = ["owner", "shared_with"]
    filter_horizontal = ["tags"]
    date_hierarchy = "created_at"
    readonly_fields = ["email_consent_source", "email_consent_at", "created_at", "updated_at"]
    inlines = [CustomerNoteInline]
    show_full_result_count = False

    def save_model(self, request, obj, form, change):
        if "email_consent" in form.changed_data:
            obj.email_consent_source = ConsentSource.ADMIN
            obj.email_consent_at = timezone.now()
        super().save_model(request, obj, form, change)


@admin.register(CustomerNote)
class CustomerNoteAdmin(GarbageProofAutocompleteMixin, admin.ModelAdmin):
    list_display = ["customer", "author", "created_at"]
    search_fields = ["text", "customer__name"]
    list_select_related = ["customer", "author"]
    autocomplete_fields = ["customer", "author"]


@admin.register(CustomerImport)
class CustomerImportAdmin(admin.ModelAdmin):
    list_display = [
        "filename",
        "uploaded_by",
        "status",
        "row_count",
        "created_count",
        "updated_count",
        "skipped_count",
        "error_count",
        "created_at",
    ]
    list_filter = ["status", "duplicate_mode"]
    search_fields = ["filename", "uploaded_by__username"]
    list_select_related = ["uploaded_by"]
    readonly_fields = ["created_at", "finished_at"]


@admin.register(Suppression)
class SuppressionAdmin(admin.ModelAdmin):
    """One list for every provider: each row says where it came from."""

    list_display = ["email", "reason", "source", "detail", "created_at"]
    list_filter = ["source", "reason"]
    search_fields = ["email"]
    readonly_fields = ["source", "created_at"]
    show_full_result_count = False

    def save_model(self, request, obj, form, change):
        if not change:
            obj.source = Suppression.Source.ADMIN
            obj.email = obj.email.strip().lower()
        super().save_model(request, obj, form, change)
