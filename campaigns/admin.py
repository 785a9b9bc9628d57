from django import forms
from django.contrib import admin

from campaigns.models import (
    CampaignRun,
    CustomerSegment,
    EmailCampaign,
    EmailEvent,
    EmailMessage,
    EmailTemplate,
    OutboxMessage,
    SendBatch,
)
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
    list_display = ["name", "status", "campaign_type", "sent_count", "opened_count", "created_at"]
    list_filter = ["status", "campaign_type"]
    search_fields = ["name"]
    raw_id_fields = ["template", "segment", "created_by", "periodic_task"]


@admin.register(CampaignRun)
class CampaignRunAdmin(admin.ModelAdmin):
    list_display = ["campaign", "run_key", "status", "total", "started_at", "finished_at"]
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
    list_display = ["sg_event_id", "event", "email", "occurred_at", "processed_at"]
    list_filter = ["event"]
    search_fields = ["email", "sg_event_id"]
    raw_id_fields = ["message"]


@admin.register(OutboxMessage)
class OutboxMessageAdmin(admin.ModelAdmin):
    list_display = ["to_email", "subject", "created_at"]
    search_fields = ["to_email", "subject"]
