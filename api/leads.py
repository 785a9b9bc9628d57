"""Leads (customers in the lead stage) with their score, grade and top factors, and what
they did (lead activities: a call answered, logged from the phone)."""

import django_filters
from django.db.models import F, Value
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import mixins, serializers

from api.base import MAX_REMOVED, ScopedViewSet, resource_schema
from api.customers import customer_for_change
from api.serializers import SparseSerializer, UserBriefField
from crm.http import json_for_storage
from crm.models import Tombstone
from crm.permissions import visible_customers
from crm.permissions.customers import visible_lead_activities
from customers.models import Customer
from leads.models import ActivityType, Grade, LeadActivity
from leads.selectors import lead_score_breakdown
from leads.services.activities import lead_activity_record

TOP_FACTORS = 3


class FactorSerializer(serializers.Serializer):
    factor = serializers.CharField()
    points = serializers.IntegerField()
    max = serializers.IntegerField()


class LeadSerializer(SparseSerializer):
    owner = UserBriefField()
    score = serializers.IntegerField(source="lead_score.total_score", default=None, allow_null=True)
    ai_score = serializers.IntegerField(source="lead_score.ai_score", default=None, allow_null=True)
    grade = serializers.CharField(source="lead_score.grade", default=None, allow_null=True)
    scored_at = serializers.DateTimeField(
        source="lead_score.last_calculated", default=None, allow_null=True
    )
    top_factors = serializers.SerializerMethodField()
    changed_at = serializers.DateTimeField(read_only=True)

    class Meta:
        model = Customer
        fields = [
            "id", "name", "email", "phone", "company", "source", "owner", "score", "ai_score",
            "grade", "scored_at", "top_factors", "changed_at",
        ]  # fmt: skip
        read_only_fields = fields

    @extend_schema_field(FactorSerializer(many=True))
    def get_top_factors(self, customer) -> list[dict]:
        score = getattr(customer, "lead_score", None)
        factors = [row for row in lead_score_breakdown(score=score) if row["points"]]
        factors.sort(key=lambda row: -row["points"])
        return [{**row, "factor": str(row["factor"])} for row in factors[:TOP_FACTORS]]


class LeadFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(method="search", max_length=200)
    grade = django_filters.ChoiceFilter(field_name="lead_score__grade", choices=Grade.choices)
    score_min = django_filters.NumberFilter(field_name="score", lookup_expr="gte")
    score_max = django_filters.NumberFilter(field_name="score", lookup_expr="lte")
    owner = django_filters.NumberFilter(field_name="owner_id")

    class Meta:
        model = Customer
        fields = ["source"]

    def search(self, queryset, name, value):
        return queryset.search(value)


@resource_schema()
class LeadViewSet(ScopedViewSet):
    """Your leads, best score first; `changed_at` moves when the lead or its score changes."""

    visible = visible_customers
    tombstone = Tombstone.Resource.CUSTOMER
    queryset = Customer.objects.all()
    serializer_class = LeadSerializer
    filterset_class = LeadFilter
    ordering = ("-score", "-id")
    updated_field = "changed_at"

    def removed_since(self, since) -> list[int]:
        """Deleted or out of reach (tombstones), and the leads that left the lead stage since
        (converted, lost): changed since and visible, but leads no more. A customer that
        never was a lead can be among them; a client drops the ids it does not hold."""
        removed = super().removed_since(since)
        left = (
            visible_customers(self.request.user, Customer.objects.exclude(pk__in=removed))
            .exclude(lifecycle_stage=Customer.LifecycleStage.LEAD)
            .filter(updated_at__gte=since)
            .order_by("pk")
            .values_list("pk", flat=True)[: MAX_REMOVED - len(removed)]
        )
        return sorted([*removed, *left])

    def base_queryset(self):
        return (
            Customer.objects.leads()
            .select_related("owner", "lead_score")
            .annotate(
                score=Coalesce(F("lead_score__total_score"), Value(0)),
                changed_at=Greatest(
                    "updated_at", Coalesce("lead_score__last_calculated", "updated_at")
                ),
            )
        )


class LeadActivitySerializer(SparseSerializer):
    recorded_by = UserBriefField()

    class Meta:
        model = LeadActivity
        fields = [
            "id", "customer", "activity_type", "details", "score_impact", "timestamp",
            "recorded_by",
        ]  # fmt: skip
        read_only_fields = fields


class LeadActivityInputSerializer(serializers.Serializer):
    customer = serializers.IntegerField(min_value=1, max_value=2**62)
    activity_type = serializers.ChoiceField(choices=ActivityType.choices)
    details = serializers.DictField(required=False)
    timestamp = serializers.DateTimeField(required=False)


class LeadActivityFilter(django_filters.FilterSet):
    class Meta:
        model = LeadActivity
        fields = ["customer", "activity_type"]


@resource_schema(request=LeadActivityInputSerializer, created=LeadActivitySerializer)
class LeadActivityViewSet(mixins.CreateModelMixin, ScopedViewSet):
    """What your leads did. Logging one (a call answered) rescores the lead, as on its page."""

    visible = visible_lead_activities
    queryset = LeadActivity.objects.select_related("recorded_by")
    serializer_class = LeadActivitySerializer
    filterset_class = LeadActivityFilter
    updated_field = "timestamp"

    def create(self, request, *args, **kwargs):
        serializer = LeadActivityInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        customer = customer_for_change(request.user, data["customer"])
        try:
            details = json_for_storage(data.get("details") or {})
        except ValueError as error:
            raise serializers.ValidationError({"details": [str(error)]}) from error
        activity = lead_activity_record(
            customer=customer,
            activity_type=data["activity_type"],
            details=details,
            timestamp=data.get("timestamp") or timezone.now(),
            recorded_by=request.user,
        )
        return self.created(activity)
