"""Serializers shape JSON; they hold no business rule (the services do)."""

from django.contrib.auth import get_user_model
from django.utils import timezone
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

    # Fields whose JSON is the model attribute as it is (DRF's to_representation would only
    # call str() or int() on it again): read directly, the lists' hot path.
    PLAIN = (
        serializers.CharField,
        serializers.IntegerField,
        serializers.BooleanField,
        serializers.ChoiceField,
    )

    def _plan(self) -> list:
        plan = getattr(self, "_representation_plan", None)
        if plan is None:
            plan = []
            zone = timezone.get_current_timezone()
            for field in self._readable_fields:
                simple = len(field.source_attrs) == 1
                if simple and type(field) in (*self.PLAIN, BlankableChoiceField):
                    plan.append((field.field_name, field.source_attrs[0], None))
                elif (
                    simple
                    and type(field) is serializers.DateTimeField
                    and not hasattr(field, "format")
                ):
                    plan.append((field.field_name, field.source_attrs[0], _iso_in(zone)))
                else:
                    plan.append((field.field_name, None, field))
            self._representation_plan = plan
        return plan

    def to_representation(self, instance):
        """DRF's Serializer.to_representation (same output: tests/api/test_serializers.py),
        with plain attributes read directly and times formatted in one step: a list of 200
        customers is about twice as fast."""
        row = {}
        for name, attribute, how in self._plan():
            if attribute is not None:
                value = getattr(instance, attribute)
                row[name] = how(value) if how is not None and value is not None else value
                continue
            try:
                value = how.get_attribute(instance)
            except serializers.SkipField:
                continue
            row[name] = None if value is None else how.to_representation(value)
        return row

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


def _iso_in(zone):
    """DRF's ISO 8601 output of an aware datetime in `zone` ("Z" for UTC)."""

    def iso(value):
        text = value.astimezone(zone).isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text

    return iso


class UserBriefSerializer(serializers.ModelSerializer):
    name = serializers.SerializerMethodField()

    class Meta:
        model = get_user_model()
        fields = ["id", "username", "name"]

    def get_name(self, user) -> str:
        return user.get_full_name() or user.username


@extend_schema_field(UserBriefSerializer(allow_null=True))
class UserBriefField(serializers.Field):
    """A user as {id, username, name}, read only; what UserBriefSerializer gives, without a
    nested serializer per row."""

    def __init__(self, **kwargs):
        kwargs["read_only"] = True
        super().__init__(**kwargs)

    def to_representation(self, user) -> dict:
        return {"id": user.pk, "username": user.username,
                "name": user.get_full_name() or user.username}  # fmt: skip


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
