from django import forms
from django.contrib import admin, messages
from django.db import transaction

from campaigns.models import (
    CampaignRun,
    CustomerSegment,
    EmailCampaign,
    EmailEvent,
    EmailMessage,
    EmailTemplate,
    OutboxMessage,
    ProviderConnection,
    SendBatch,
)
from campaigns.providers import provider_statuses
from campaigns.segments import criteria_clean
from crm.errors import ValidationFailed


@admin.register(EmailTemplate)
class EmailTemplateAdmin(admin.ModelAdmin):
    list_display = ["name", "category", "is_active", "updated_at"]
    list_filter = ["category", "is_active"]
    search_fields = ["name", "subject"]


class CustomerSegmentAdminForm(forms.ModelForm):
    class Meta:
        model = CustomerSegment
        fields = ["name", "description", "criteria", "customer_count", "last_updated", "created_by"]

    def clean_criteria(self):
        try:
            return criteria_clean(self.cleaned_data["criteria"])
        except ValidationFailed as error:
            raise forms.ValidationError(error.message) from None


@admin.register(CustomerSegment)
class CustomerSegmentAdmin(admin.ModelAdmin):
    form = CustomerSegmentAdminForm
    list_display = ["name", "customer_count", "last_updated"]
    search_fields = ["name"]


@admin.register(EmailCampaign)
class EmailCampaignAdmin(admin.ModelAdmin):
    list_display = ["name", "status", "campaign_type", "provider", "sent_count", "opened_count",
                    "created_at"]  # fmt: skip
    list_filter = ["status", "campaign_type", "provider"]
    search_fields = ["name"]
    raw_id_fields = ["template", "segment", "created_by", "periodic_task"]


@admin.register(CampaignRun)
class CampaignRunAdmin(admin.ModelAdmin):
    list_display = ["campaign", "run_key", "status", "provider", "total", "started_at",
                    "finished_at"]  # fmt: skip
    list_filter = ["status"]
    raw_id_fields = ["campaign"]


@admin.register(SendBatch)
class SendBatchAdmin(admin.ModelAdmin):
    list_display = ["id", "run", "status", "size", "started_at", "error"]
    list_filter = ["status"]
    raw_id_fields = ["run"]


@admin.register(EmailMessage)
class EmailMessageAdmin(admin.ModelAdmin):
    list_display = ["email", "campaign", "status", "sent_at", "opened_at"]
    list_filter = ["status"]
    search_fields = ["email"]
    raw_id_fields = ["campaign", "run", "customer"]


@admin.register(EmailEvent)
class EmailEventAdmin(admin.ModelAdmin):
    list_display = ["sg_event_id", "provider", "event", "email", "occurred_at", "processed_at"]
    list_filter = ["provider", "event"]
    search_fields = ["email", "sg_event_id"]
    raw_id_fields = ["message"]


@admin.register(OutboxMessage)
class OutboxMessageAdmin(admin.ModelAdmin):
    list_display = ["to_email", "subject", "created_at"]
    search_fields = ["to_email", "subject"]


@admin.register(ProviderConnection)
class ProviderConnectionAdmin(admin.ModelAdmin):
    """Email providers: the page lists every provider with whether it is configured and
    which one is the default (from the settings), then the Mailgun domains connected and
    how many suppressions each brought into the one list."""

    list_display = ["__str__", "status", "imported", "seen", "imported_at", "last_error"]
    readonly_fields = ["provider", "account", "status", "imported", "seen", "imported_at",
                       "last_error", "created_at"]  # fmt: skip
    actions = ["import_again"]

    def has_add_permission(self, request):
        return False  # a connection is made by configuring the provider

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "provider_statuses": provider_statuses()}
        return super().changelist_view(request, extra_context=extra_context)

    @admin.action(description="Import the suppression lists again")
    def import_again(self, request, queryset):
        from campaigns.tasks import import_mailgun_suppressions

        ids = list(queryset.filter(provider="mailgun").values_list("pk", flat=True))
        for pk in ids:
            transaction.on_commit(lambda pk=pk: import_mailgun_suppressions.delay(pk))
        self.message_user(request, f"Import queued for {len(ids)} connection(s).", messages.INFO)
