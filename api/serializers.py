"""Serializers shape JSON; they hold no business rule (the services do)."""

from django.contrib.auth import get_user_model
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import exceptions, serializers


class BlankableChoiceField(serializers.ChoiceField):
    """A choice that may be empty ("" for unknown): DRF drops allow_blank from read-only
    fields, and the schema would then refuse the "" the API sends."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.allow_blank = True


class SparseSerializer(serializers.ModelSerializer):
    """`fields=a,b` (the view passes it on): only those fields; an unknown one is a 400.
    Read-only output: a blank model field's "" is a valid value in the schema."""

    def build_standard_field(self, field_name, model_field):
        field_class, kwargs = super().build_standard_field(field_name, model_field)
        if getattr(model_field, "blank", False):
            if issubclass(field_class, serializers.ChoiceField):
                field_class = BlankableChoiceField
            elif issubclass(field_class, serializers.URLField | serializers.EmailField):
                field_class = serializers.CharField  # "" is no URL or address
        return field_class, kwargs

    def __init__(self, *args, fields: list[str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        if fields:
            unknown = sorted(set(fields) - set(self.fields))
            if unknown:
                raise exceptions.ValidationError(
                    {"fields": [f"Unknown field: {', '.join(unknown)[:200]}."]}
                )
            for name in set(self.fields) - set(fields):
                self.fields.pop(name)


class UserBriefSerializer(serializers.ModelSerializer):
    name = serializers.SerializerMethodField()

    class Meta:
        model = get_user_model()
        fields = ["id", "username", "name"]

    def get_name(self, user) -> str:
        return user.get_full_name() or user.username


def user_brief(user) -> dict | None:
    return None if user is None else UserBriefSerializer(user).data


@extend_schema_field(OpenApiTypes.INT)
class VisibleRelatedField(serializers.PrimaryKeyRelatedField):
    """An id among the records the requesting user may see (crm.permissions): another id
    is refused like one that does not exist, so a record's existence is not revealed."""

    def __init__(self, *, visible, model, **kwargs):
        self.visible = visible
        self.model = model
        super().__init__(**kwargs)

    def get_queryset(self):
        return self.visible(self.context["request"].user, self.model.objects.all())
