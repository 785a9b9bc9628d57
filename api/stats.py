"""quick_stats: the seed's mobile numbers (pipeline total per currency, deals this month, won
this month) plus tasks due today and hot leads; each an aggregate in SQL over what the user
sees."""

from datetime import datetime, time, timedelta
from decimal import Decimal

from django.db.models import Count, Q, Sum
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from api.base import ApiView, ConditionalMixin
from crm.permissions import visible_customers, visible_sales
from customers.models import Customer
from leads.models import Grade
from sales.models import Sale, Task


class MoneySerializer(serializers.Serializer):
    currency = serializers.CharField()
    count = serializers.IntegerField()
    amount = serializers.DecimalField(max_digits=18, decimal_places=2)


class QuickStatsSerializer(serializers.Serializer):
    pipeline = MoneySerializer(many=True, help_text="Open deals per currency.")
    deals_this_month = serializers.IntegerField(help_text="Deals created this month.")
    won_this_month = MoneySerializer(many=True)
    tasks_due_today = serializers.IntegerField(help_text="Your open tasks due today.")
    tasks_overdue = serializers.IntegerField()
    hot_leads = serializers.IntegerField()


def quick_stats(*, user, now=None) -> dict:
    now = now or timezone.now()
    today = timezone.localdate(now)
    month_start = timezone.make_aware(datetime.combine(today.replace(day=1), time.min))
    day_start = timezone.make_aware(datetime.combine(today, time.min))
    deals = visible_sales(user)
    pipeline = (
        deals.open()
        .values("currency")
        .annotate(count=Count("id"), amount=Sum("amount", default=Decimal(0)))
        .order_by("currency")
    )
    won = (
        deals.filter(status=Sale.Status.WON, closed_at__gte=month_start)
        .values("currency")
        .annotate(count=Count("id"), amount=Sum("amount", default=Decimal(0)))
        .order_by("currency")
    )
    tasks = Task.objects.filter(assigned_to=user, completed_at__isnull=True).aggregate(
        due_today=Count("id", filter=Q(due_at__gte=day_start, due_at__lt=day_start + timedelta(1))),
        overdue=Count("id", filter=Q(due_at__lt=now)),
    )
    hot = visible_customers(user, Customer.objects.leads()).filter(lead_score__grade=Grade.HOT)
    return {
        "pipeline": list(pipeline),
        "deals_this_month": deals.filter(created_at__gte=month_start).count(),
        "won_this_month": list(won),
        "tasks_due_today": tasks["due_today"],
        "tasks_overdue": tasks["overdue"],
        "hot_leads": hot.count(),
    }


class QuickStatsView(ConditionalMixin, ApiView):
    """Numbers for the phone's home screen, over the deals and leads you see."""

    @extend_schema(responses=QuickStatsSerializer)
    def get(self, request):
        return Response(QuickStatsSerializer(quick_stats(user=request.user)).data)
