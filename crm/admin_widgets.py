"""Django admin's autocomplete widgets, proof against garbage: re-rendering a form that was
posted a value that is not an id (`abc`, `²`, `[]`) makes Django's own widget filter the
related table by it, which raises (a 500) instead of showing the field's error."""

from django.contrib.admin.widgets import AutocompleteSelect, AutocompleteSelectMultiple
from django.core.exceptions import ValidationError


class _GarbageProof:
    def optgroups(self, name, value, attr=None):
        target = self.field.remote_field.model._meta.pk
        valid = []
        for item in value:
            try:
                if item not in (None, "") and target.to_python(item) is not None:
                    valid.append(item)
            except (ValidationError, ValueError, TypeError, OverflowError):
                continue
        return super().optgroups(name, valid, attr)


class GarbageProofAutocompleteSelect(_GarbageProof, AutocompleteSelect):
    pass


class GarbageProofAutocompleteSelectMultiple(_GarbageProof, AutocompleteSelectMultiple):
    pass


class GarbageProofAutocompleteMixin:
    """For ModelAdmins and inlines with `autocomplete_fields`: the widgets above."""

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if "widget" not in kwargs and db_field.name in self.get_autocomplete_fields(request):
            kwargs["widget"] = GarbageProofAutocompleteSelect(
                db_field, self.admin_site, using=kwargs.get("using")
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if "widget" not in kwargs and db_field.name in self.get_autocomplete_fields(request):
            kwargs["widget"] = GarbageProofAutocompleteSelectMultiple(
                db_field, self.admin_site, using=kwargs.get("using")
            )
        return super().formfield_for_manytomany(db_field, request, **kwargs)
