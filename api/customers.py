"""Customers (with the seed's lightweight mobile list: `fields=mobile`) and their notes."""

import django_filters
from django.contrib.auth import get_user_model
from django.db.models import Prefetch
from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import mixins, serializers
from rest_framework.response import Response

from api.base import ScopedViewSet, resource_schema
from api.serializers import SparseSerializer, UserBriefField
from crm.models import Tombstone
from crm.permissions import editable_customers, visible_customers
from crm.permissions.customers import visible_customer_notes
from customers import services
from customers.duplicates.selectors import likely_duplicates
from customers.models import ConsentSource, Customer, CustomerNote, Tag

LIGHT_COLUMNS = {
    "id", "name", "email", "phone", "company", "industry", "region", "lifecycle_stage",
    "engagement_level", "last_contact_date", "created_at", "updated_at",
}  # fmt: skip
MOBILE_FIELDS = ["id", "name", "company", "email", "phone", "lifecycle_stage", "updated_at"]


@extend_schema_field({"type": "array", "items": {"type": "string"}})
class TagNamesField(serializers.Field):
    """The customer's tag names (from the list with_tags prefetched)."""

    def __init__(self, **kwargs):
        super().__init__(read_only=True, **kwargs)

    def to_representation(self, tags) -> list[str]:
        return [tag.name for tag in tags]


def with_tags(customers):
    """Customers with their owner and tags (a list per customer: no manager per row)."""
    return customers.select_related("owner").prefetch_related(
        Prefetch("tags", queryset=Tag.objects.order_by("name"), to_attr="tag_list")
    )


class CustomerSerializer(SparseSerializer):
    owner = UserBriefField()
    tags = TagNamesField(source="tag_list")

    class Meta:
        model = Customer
        fields = [
            "id", "name", "email", "phone", "company", "industry", "company_size",
            "annual_revenue", "region", "address", "website", "source", "lifecycle_stage",
            "engagement_level", "job_title", "decision_authority", "budget_range",
            "purchase_timeline", "owner", "tags", "notes", "last_contact_date",
            "email_consent", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = fields


class LikelyDuplicateSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    url = serializers.CharField(help_text="The existing customer in the API")
    confidence = serializers.IntegerField(help_text="0-100")
    reasons = serializers.ListField(child=serializers.CharField())


class CustomerCreatedSerializer(CustomerSerializer):
    """A new customer, with the existing ones it likely duplicates (a warning: it was
    created all the same). Those out of the caller's sight are only counted."""

    likely_duplicates = LikelyDuplicateSerializer(many=True, read_only=True)
    likely_duplicates_out_of_sight = serializers.IntegerField(read_only=True)

    class Meta(CustomerSerializer.Meta):
        fields = [*CustomerSerializer.Meta.fields, "likely_duplicates",
                  "likely_duplicates_out_of_sight"]  # fmt: skip
        read_only_fields = fields


class CustomerInputSerializer(serializers.ModelSerializer):
    owner = serializers.PrimaryKeyRelatedField(
        queryset=get_user_model().objects.filter(is_active=True), required=False
    )

    class Meta:
        model = Customer
        fields = [
            "name", "email", "phone", "company", "industry", "company_size", "annual_revenue",
            "region", "address", "website", "source", "lifecycle_stage", "engagement_level",
            "job_title", "decision_authority", "budget_range", "purchase_timeline", "owner",
            "notes", "last_contact_date", "email_consent",
        ]  # fmt: skip
        extra_kwargs = {"email": {"validators": []}}


class CustomerFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(method="search", max_length=200)
    owner = django_filters.NumberFilter(field_name="owner_id")
    tag = django_filters.CharFilter(field_name="tags__name", max_length=50)

    class Meta:
        model = Customer
        fields = ["lifecycle_stage", "engagement_level", "region", "industry", "source"]

    def search(self, queryset, name, value):
        return queryset.search(value)


@resource_schema(
    request=CustomerInputSerializer, created=CustomerCreatedSerializer, updated=CustomerSerializer
)
class CustomerViewSet(
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    ScopedViewSet,
):
    """Customers you own or that are shared with you (managers: their teams'). `fields=mobile`
    gives the lightweight list for the phone."""

    visible = visible_customers
    editable = editable_customers
    tombstone = Tombstone.Resource.CUSTOMER
    queryset = Customer.objects.all()
    serializer_class = CustomerSerializer
    filterset_class = CustomerFilter
    ordering = ("name", "id")
    sparse_presets = {"mobile": MOBILE_FIELDS}
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def base_queryset(self):
        fields = self.requested_fields() if self.request.method == "GET" else None
        if fields and set(fields) <= LIGHT_COLUMNS:  # the mobile list reads only these
            return Customer.objects.only(*fields)
        return with_tags(Customer.objects.all())

    def create(self, request, *args, **kwargs):
        serializer = CustomerInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        customer = services.customer_create(
            actor=request.user, data=serializer.validated_data, consent_source=ConsentSource.API
        )
        found = likely_duplicates(
            user=request.user, data=serializer.validated_data, exclude_ids=[customer.pk]
        )
        customer = with_tags(Customer.objects.all()).get(pk=customer.pk)
        customer.likely_duplicates = [
            {
                "id": match.customer.pk,
                "name": match.customer.name,
                "url": request.build_absolute_uri(
                    reverse("api:customer-detail", args=[match.customer.pk])
                ),
                "confidence": match.confidence,
                "reasons": match.reasons,
            }
            for match in found
            if match.customer is not None
        ]
        customer.likely_duplicates_out_of_sight = sum(1 for m in found if m.customer is None)
        return self.created(customer, CustomerCreatedSerializer)

    def update(self, request, *args, **kwargs):
        customer = self.get_change_object()
        serializer = CustomerInputSerializer(customer, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        services.customer_update(
            actor=request.user,
            customer=customer,
            data=serializer.validated_data,
            consent_source=ConsentSource.API,
        )
        return Response(
            CustomerSerializer(with_tags(Customer.objects.all()).get(pk=customer.pk)).data
        )

    def destroy(self, request, *args, **kwargs):
        services.customer_delete(actor=request.user, customer=self.get_change_object())
        return Response(status=204)


class NoteSerializer(SparseSerializer):
    author = UserBriefField()

    class Meta:
        model = CustomerNote
        fields = ["id", "customer", "author", "text", "created_at"]
        read_only_fields = fields


class NoteInputSerializer(serializers.Serializer):
    customer = serializers.IntegerField(min_value=1, max_value=2**62)
    text = serializers.CharField(max_length=20_000, allow_blank=True)


class NoteFilter(django_filters.FilterSet):
    class Meta:
        model = CustomerNote
        fields = ["customer"]


@resource_schema(request=NoteInputSerializer, created=NoteSerializer)
class NoteViewSet(mixins.CreateModelMixin, ScopedViewSet):
    """Notes on the customers you see; adding one needs the customer to be yours."""

    visible = visible_customer_notes
    queryset = CustomerNote.objects.select_related("author")
    serializer_class = NoteSerializer
    filterset_class = NoteFilter
    updated_field = "created_at"

    def create(self, request, *args, **kwargs):
        serializer = NoteInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        customer = customer_for_change(request.user, serializer.validated_data["customer"])
        note = services.customer_note_add(
            actor=request.user, customer=customer, text=serializer.validated_data["text"]
        )
        return self.created(note)


def customer_for_change(user, customer_id: int) -> Customer:
    """The customer a write is about: 404 when out of sight (so its existence is not
    revealed), 403 when only shared to read."""
    from django.http import Http404

    from crm.errors import PermissionDenied

    customer = visible_customers(user).filter(pk=customer_id).first()
    if customer is None:
        raise Http404
    if not editable_customers(user).filter(pk=customer_id).exists():
        raise PermissionDenied("This customer is shared with you to read; you cannot change it.")
    return customer
