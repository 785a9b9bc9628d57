from django import forms
from django.contrib import admin

from crm.errors import ValidationFailed
from documents import services
from documents.models import Document, DocumentAccess, DocumentCategory


class DocumentCategoryForm(forms.ModelForm):
    class Meta:
        model = DocumentCategory
        fields = ["name", "parent"]

    def clean(self):
        cleaned = super().clean()
        if "name" in cleaned:  # a name the field itself accepted
            try:
                services.category_check(
                    category=self.instance, name=cleaned["name"], parent=cleaned.get("parent")
                )
            except ValidationFailed as error:
                raise forms.ValidationError({error.field: error.message}) from None
        return cleaned


@admin.register(DocumentCategory)
class DocumentCategoryAdmin(admin.ModelAdmin):
    form = DocumentCategoryForm
    list_display = ["name", "parent"]
    search_fields = ["name"]

    def save_model(self, request, obj, form, change) -> None:
        """Through the service, like every write: checked again in its transaction, audited."""
        services.category_save(
            actor=request.user,
            name=form.cleaned_data["name"],
            parent=form.cleaned_data.get("parent"),
            category=obj,
        )


@admin.register(Document)
class DocumentAdmin(admin.ModelAdmin):
    list_display = ["title", "version", "document_type", "mime_type", "uploaded_by", "uploaded_at"]
    list_filter = ["document_type", "is_active", "processing_status"]
    search_fields = ["title", "original_name"]
    raw_id_fields = ["customer", "sale", "uploaded_by", "parent_document", "category"]
    filter_horizontal = ["allowed_users"]
    exclude = ["extracted_text"]


@admin.register(DocumentAccess)
class DocumentAccessAdmin(admin.ModelAdmin):
    list_display = ["timestamp", "document", "user", "action", "ip_address"]
    list_filter = ["action"]
    raw_id_fields = ["document", "user"]

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # an access log is not edited
