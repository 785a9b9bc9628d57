from django import forms
from django.contrib import admin

from sales import services
from sales.models import Sale, SaleActivity, StageChange, Task


class StageChangeInline(admin.TabularInline):
    model = StageChange
    extra = 0
    readonly_fields = [
        "from_status",
        "to_status",
        "changed_by",
        "is_automatic",
        "reason",
        "changed_at",
        "left_at",
    ]
    can_delete = False


class SaleAdminForm(forms.ModelForm):
    """SaleAdmin's form (the admin supplies the model and fields)."""

    def clean_status(self):
        status = self.cleaned_data["status"]
        if self.instance.pk is None and status in Sale.CLOSED_STATUSES:
            raise forms.ValidationError(
                "Create the deal in an open stage, then close it as won or lost on its page."
            )
        return status


@admin.register(Sale)
class SaleAdmin(admin.ModelAdmin):
    list_display = [
        "title",
        "customer",
        "assigned_to",
        "status",
        "amount",
        "currency",
        "expected_close_date",
        "closed_at",
        "created_at",
    ]
    list_filter = ["status", "currency", "assigned_to"]
    search_fields = ["title", "customer__name", "customer__email"]
    list_select_related = ["customer", "assigned_to"]
    autocomplete_fields = ["customer", "assigned_to"]
    date_hierarchy = "created_at"
    readonly_fields = ["stage_entered_at", "created_at", "updated_at"]
    inlines = [StageChangeInline]
    show_full_result_count = False
    form = SaleAdminForm
    # Stage moves and new deals go through the sales services, which keep the stage
    # history, stage tasks, automation, audit and the analytics columns; a status edited
    # here would skip all of them.
    STAGE_FIELDS = ["status", "closed_at", "lost_reason"]

    def get_readonly_fields(self, request, obj=None):
        return [*self.readonly_fields, *(self.STAGE_FIELDS if obj else [])]

    def get_exclude(self, request, obj=None):
        return None if obj else ["closed_at", "lost_reason"]

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        data = {name: value for name, value in form.cleaned_data.items() if value is not None}
        created = services.sale_create(actor=request.user, data=data)
        obj.pk = created.pk
        obj.refresh_from_db()


@admin.register(SaleActivity)
class SaleActivityAdmin(admin.ModelAdmin):
    list_display = ["sale", "kind", "user", "occurred_at"]
    list_filter = ["kind"]
    search_fields = ["text", "sale__title"]
    list_select_related = ["sale", "user"]
    autocomplete_fields = ["sale", "user"]


@admin.register(Task)
class TaskAdmin(admin.ModelAdmin):
    list_display = ["title", "assigned_to", "priority", "due_at", "completed_at", "is_auto_created"]
    list_filter = ["priority", "is_auto_created", ("completed_at", admin.EmptyFieldListFilter)]
    search_fields = ["title", "description"]
    list_select_related = ["assigned_to"]
    autocomplete_fields = ["sale", "customer", "assigned_to", "created_by"]


@admin.register(StageChange)
class StageChangeAdmin(admin.ModelAdmin):
    list_display = ["sale", "from_status", "to_status", "changed_by", "is_automatic", "changed_at"]
    list_filter = ["to_status", "is_automatic"]
    search_fields = ["sale__title", "reason"]
    list_select_related = ["sale", "changed_by"]
