from django import forms
from django.contrib import admin

from crm.admin import ReadOnlyAdmin
from crm.admin_widgets import GarbageProofAutocompleteMixin
from crm.errors import ValidationFailed
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

    def has_add_permission(self, request, obj=None):
        return False  # stage changes come from sale_change_stage only


class SaleAdminForm(forms.ModelForm):
    """SaleAdmin's form (the admin supplies the model and fields, and `actor`): the sales
    services' own checks, shown as form errors before anything is saved."""

    actor = None

    def clean(self):
        cleaned = super().clean()
        if self.errors:  # a field is already wrong: the services' checks need every field
            return cleaned
        adding = self.instance.pk is None
        data = cleaned if adding else {name: cleaned[name] for name in self.changed_data
                                       if name in cleaned}  # fmt: skip
        try:
            services.sale_input_check(actor=self.actor, data=data,
                                      sale=None if adding else self.instance)  # fmt: skip
        except ValidationFailed as error:
            self.add_error(error.field if error.field in self.fields else None, error.message)
        return cleaned


@admin.register(Sale)
class SaleAdmin(GarbageProofAutocompleteMixin, admin.ModelAdmin):
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

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        form.actor = request.user
        return form

    def save_model(self, request, obj, form, change):
        if change:
            changed = {name: form.cleaned_data[name] for name in form.changed_data}
            services.sale_update(actor=request.user, sale=obj, data=changed)
        else:
            created = services.sale_create(actor=request.user, data=form.cleaned_data)
            obj.pk = created.pk
        obj.refresh_from_db()


@admin.register(SaleActivity)
class SaleActivityAdmin(GarbageProofAutocompleteMixin, admin.ModelAdmin):
    list_display = ["sale", "kind", "user", "occurred_at"]
    list_filter = ["kind"]
    search_fields = ["text", "sale__title"]
    list_select_related = ["sale", "user"]
    autocomplete_fields = ["sale", "user"]


@admin.register(Task)
class TaskAdmin(GarbageProofAutocompleteMixin, admin.ModelAdmin):
    list_display = ["title", "assigned_to", "priority", "due_at", "completed_at", "is_auto_created"]
    list_filter = ["priority", "is_auto_created", ("completed_at", admin.EmptyFieldListFilter)]
    search_fields = ["title", "description"]
    list_select_related = ["assigned_to"]
    autocomplete_fields = ["sale", "customer", "assigned_to", "created_by"]


@admin.register(StageChange)
class StageChangeAdmin(ReadOnlyAdmin):
    """Read-only: the history is written by sale_change_stage (which also keeps each
    change's left_at and the deal's furthest stage), never by hand."""

    list_display = ["sale", "from_status", "to_status", "changed_by", "is_automatic", "changed_at"]
    list_filter = ["to_status", "is_automatic"]
    search_fields = ["sale__title", "reason"]
    list_select_related = ["sale", "changed_by"]
