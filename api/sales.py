"""Deals (stage moves through the board's rules, 409 on a stale move), their activities
(log a call from the phone) and tasks (mine, due, complete)."""

from datetime import datetime, time, timedelta

import django_filters
from django.contrib.auth import get_user_model
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, serializers
from rest_framework.decorators import action
from rest_framework.response import Response

from api.base import ScopedViewSet, resource_schema
from api.serializers import SparseSerializer, UserBriefField, VisibleRelatedField
from crm.errors import PermissionDenied
from crm.models import Tombstone
from crm.permissions import editable_sales, visible_customers, visible_sales, visible_tasks
from crm.permissions.core import visible_users
from crm.permissions.sales import visible_sale_activities
from customers.models import Customer
from sales import services
from sales.models import Sale, SaleActivity, Task

User = get_user_model()


class CustomerBriefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Customer
        fields = ["id", "name", "company"]


class DealSerializer(SparseSerializer):
    customer = CustomerBriefSerializer(read_only=True)
    assigned_to = UserBriefField()

    class Meta:
        model = Sale
        fields = [
            "id", "title", "customer", "assigned_to", "amount", "currency", "status",
            "expected_close_date", "closed_at", "lost_reason", "probability",
            "stage_entered_at", "last_activity_at", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = fields


class DealInputSerializer(serializers.ModelSerializer):
    customer = VisibleRelatedField(visible=visible_customers, model=Customer)
    assigned_to = VisibleRelatedField(
        visible=visible_users, model=User, required=False, allow_null=True
    )

    class Meta:
        model = Sale
        fields = [
            "title", "customer", "assigned_to", "amount", "currency", "expected_close_date",
            "probability",
        ]  # fmt: skip


class DealMoveSerializer(serializers.Serializer):
    to_status = serializers.ChoiceField(choices=Sale.Status.choices)
    expected_status = serializers.ChoiceField(
        choices=Sale.Status.choices,
        required=False,
        help_text="The stage you saw the deal in: if it moved since, the answer is 409.",
    )
    closed_on = serializers.DateField(required=False)
    lost_reason = serializers.CharField(required=False, allow_blank=True, max_length=255)


class DealFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(field_name="title", lookup_expr="icontains", max_length=200)
    assigned_to = django_filters.NumberFilter(field_name="assigned_to_id")
    customer = django_filters.NumberFilter(field_name="customer_id")
    close_from = django_filters.DateFilter(field_name="expected_close_date", lookup_expr="gte")
    close_to = django_filters.DateFilter(field_name="expected_close_date", lookup_expr="lte")
    open = django_filters.BooleanFilter(method="only_open")

    class Meta:
        model = Sale
        fields = ["status", "currency"]

    def only_open(self, queryset, name, value):
        if value is None:
            return queryset
        return queryset.open() if value else queryset.filter(status__in=Sale.CLOSED_STATUSES)


@resource_schema(request=DealInputSerializer, created=DealSerializer, updated=DealSerializer)
class DealViewSet(
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    ScopedViewSet,
):
    """Deals assigned to you or on customers you see (managers: their teams'). The stage
    changes only through `move`, with the board's rules."""

    visible = visible_sales
    editable = editable_sales
    tombstone = Tombstone.Resource.DEAL
    queryset = Sale.objects.select_related("customer", "assigned_to")
    serializer_class = DealSerializer
    filterset_class = DealFilter
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def create(self, request, *args, **kwargs):
        serializer = DealInputSerializer(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        sale = services.sale_create(actor=request.user, data=serializer.validated_data)
        return self.created(self.queryset.get(pk=sale.pk))

    def update(self, request, *args, **kwargs):
        sale = self.get_change_object()
        serializer = DealInputSerializer(
            sale, data=request.data, partial=True, context={"request": request}
        )
        serializer.is_valid(raise_exception=True)
        services.sale_update(actor=request.user, sale=sale, data=serializer.validated_data)
        return Response(DealSerializer(self.queryset.get(pk=sale.pk)).data)

    def destroy(self, request, *args, **kwargs):
        services.sale_delete(actor=request.user, sale=self.get_change_object())
        return Response(status=204)

    @extend_schema(
        request=DealMoveSerializer,
        responses={
            200: DealSerializer,
            409: OpenApiResponse(description="The deal moved since you saw it."),
        },
    )
    @action(detail=True, methods=["post"])
    def move(self, request, pk=None):
        """Move the deal to another stage (the board's drag): WON and LOST need closed_on,
        LOST a lost_reason; with expected_status a move over someone else's is a 409."""
        sale = self.get_change_object()
        serializer = DealMoveSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        services.sale_change_stage(
            actor=request.user,
            sale=sale,
            to_status=data["to_status"],
            closed_on=data.get("closed_on"),
            lost_reason=data.get("lost_reason", ""),
            expected_status=data.get("expected_status"),
        )
        return Response(DealSerializer(self.queryset.get(pk=sale.pk)).data)


class DealActivitySerializer(SparseSerializer):
    user = UserBriefField()

    class Meta:
        model = SaleActivity
        fields = ["id", "sale", "kind", "text", "user", "occurred_at", "created_at"]
        read_only_fields = fields


class DealActivityInputSerializer(serializers.Serializer):
    sale = serializers.IntegerField(min_value=1, max_value=2**62)
    kind = serializers.ChoiceField(choices=SaleActivity.Kind.choices)
    text = serializers.CharField(max_length=20_000, allow_blank=True)
    occurred_at = serializers.DateTimeField(required=False)


class DealActivityFilter(django_filters.FilterSet):
    class Meta:
        model = SaleActivity
        fields = ["sale", "kind"]


@resource_schema(request=DealActivityInputSerializer, created=DealActivitySerializer)
class DealActivityViewSet(mixins.CreateModelMixin, ScopedViewSet):
    """Calls, emails, meetings and notes on the deals you see; logging one needs the deal to
    be yours (it also moves the customer's last contact and runs the pipeline rules)."""

    visible = visible_sale_activities
    queryset = SaleActivity.objects.select_related("user")
    serializer_class = DealActivitySerializer
    filterset_class = DealActivityFilter
    updated_field = "created_at"

    def create(self, request, *args, **kwargs):
        serializer = DealActivityInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        sale = sale_for_change(request.user, data["sale"])
        activity = services.sale_activity_add(
            actor=request.user,
            sale=sale,
            kind=data["kind"],
            text=data["text"],
            occurred_at=data.get("occurred_at"),
        )
        return self.created(activity)


def sale_for_change(user, sale_id: int) -> Sale:
    """404 for a deal out of sight, 403 for one the user may only read."""
    from django.http import Http404

    sale = visible_sales(user).filter(pk=sale_id).first()
    if sale is None:
        raise Http404
    if not editable_sales(user).filter(pk=sale_id).exists():
        raise PermissionDenied("You can read this deal but not change it.")
    return sale


class TaskSerializer(SparseSerializer):
    assigned_to = UserBriefField()
    is_done = serializers.BooleanField(read_only=True)

    class Meta:
        model = Task
        fields = [
            "id", "title", "description", "sale", "customer", "assigned_to", "priority",
            "due_at", "completed_at", "is_done", "is_auto_created", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = fields


class TaskInputSerializer(serializers.ModelSerializer):
    sale = VisibleRelatedField(visible=visible_sales, model=Sale, required=False, allow_null=True)
    customer = VisibleRelatedField(
        visible=visible_customers, model=Customer, required=False, allow_null=True
    )
    assigned_to = VisibleRelatedField(visible=visible_users, model=User, required=False)

    class Meta:
        model = Task
        fields = ["title", "description", "sale", "customer", "assigned_to", "priority", "due_at"]


class TaskFilter(django_filters.FilterSet):
    mine = django_filters.BooleanFilter(method="only_mine")
    done = django_filters.BooleanFilter(field_name="completed_at", lookup_expr="isnull",
                                        exclude=True)  # fmt: skip
    due = django_filters.ChoiceFilter(
        method="due_when",
        choices=[("overdue", "Overdue"), ("today", "Today"), ("upcoming", "Upcoming")],
    )

    class Meta:
        model = Task
        fields = ["sale", "customer", "priority"]

    def only_mine(self, queryset, name, value):
        if value is None:
            return queryset
        user = self.request.user
        return queryset.filter(assigned_to=user) if value else queryset.exclude(assigned_to=user)

    def due_when(self, queryset, name, value):
        now = timezone.now()
        start = timezone.make_aware(datetime.combine(timezone.localdate(), time.min))
        end = start + timedelta(days=1)
        pending = queryset.pending()
        if value == "overdue":
            return pending.overdue(now=now)
        if value == "today":
            return pending.due_between(start, end)
        return pending.filter(due_at__gte=end)


@resource_schema(request=TaskInputSerializer, created=TaskSerializer)
class TaskViewSet(mixins.CreateModelMixin, ScopedViewSet):
    """Tasks assigned to or created by you, and those on your deals (`mine=true`: yours;
    `due=overdue|today|upcoming`; `done=false`)."""

    visible = visible_tasks
    tombstone = Tombstone.Resource.TASK
    queryset = Task.objects.select_related("assigned_to")
    serializer_class = TaskSerializer
    filterset_class = TaskFilter
    ordering = ("due_at", "id")

    def create(self, request, *args, **kwargs):
        serializer = TaskInputSerializer(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        task = services.task_create(actor=request.user, data=serializer.validated_data)
        return self.created(self.queryset.get(pk=task.pk))

    @extend_schema(request=None, responses={200: TaskSerializer})
    @action(detail=True, methods=["post"])
    def complete(self, request, pk=None):
        """Mark the task done (again: no change)."""
        task = services.task_complete(actor=request.user, task=self.get_object())
        return Response(TaskSerializer(self.queryset.get(pk=task.pk)).data)

    @extend_schema(request=None, responses={200: TaskSerializer})
    @action(detail=True, methods=["post"])
    def reopen(self, request, pk=None):
        task = services.task_reopen(actor=request.user, task=self.get_object())
        return Response(TaskSerializer(self.queryset.get(pk=task.pk)).data)
