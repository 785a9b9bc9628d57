"""Querysets of the sales models: chainable, named reads (`Sale.objects.open().stale()`)."""

from datetime import datetime, timedelta

from django.apps import apps
from django.db import models
from django.db.models import BooleanField, ExpressionWrapper, Q
from django.db.models.functions import Coalesce
from django.utils import timezone


def quiet_for(now: datetime, days: int) -> Q:
    """No activity for `days` (counting from the stage entry when there was none); over a
    queryset with the `quiet_since` alias (SaleQuerySet.with_quiet_since)."""
    return Q(quiet_since__lt=now - timedelta(days=days))


def stale_condition(*, now: datetime | None = None, max_days: dict | None = None) -> Q:
    """Q over Sale (with the `quiet_since` alias) for deals that are stale: longer in their
    stage than its maximum (`max_days` per status, read from the stage settings when None),
    or matching a manager's "no activity" flag rule. Reads the rules once: build it once
    and pass it as `condition` where several querysets use it (the board's columns)."""
    StageSetting = apps.get_model("sales", "StageSetting")
    AutomationRule = apps.get_model("sales", "AutomationRule")
    now = now or timezone.now()
    q = Q()
    if max_days is None:
        max_days = dict(StageSetting.objects.values_list("status", "max_days_in_stage"))
    for status, days in max_days.items():
        q |= Q(status=status, stage_entered_at__lt=now - timedelta(days=days))
    for rule in AutomationRule.objects.filter(
        is_active=True, to_status="", condition=AutomationRule.Condition.NO_ACTIVITY
    ):
        q |= Q(status=rule.from_status) & quiet_for(now, rule.days)
    return q if q else Q(pk__in=[])


class SaleQuerySet(models.QuerySet):
    def open(self):
        return self.exclude(status__in=self.model.CLOSED_STATUSES)

    def with_related(self):
        return self.select_related("customer", "assigned_to")

    def with_quiet_since(self):
        """`quiet_since`: the last activity, or the stage entry when there was none."""
        return self.alias(quiet_since=Coalesce("last_activity_at", "stage_entered_at"))

    def stale(self, *, now=None, max_days=None, condition: Q | None = None):
        """The stale deals (see stale_condition; `condition` when built already)."""
        if condition is None:
            condition = stale_condition(now=now, max_days=max_days)
        return self.with_quiet_since().filter(condition)

    def with_is_stale(self, *, now=None, max_days=None, condition: Q | None = None):
        """`is_stale` on every deal (see stale_condition; `condition` when built already)."""
        if condition is None:
            condition = stale_condition(now=now, max_days=max_days)
        flag = ExpressionWrapper(condition, output_field=BooleanField())
        return self.with_quiet_since().annotate(is_stale=flag)


class TaskQuerySet(models.QuerySet):
    def pending(self):
        return self.filter(completed_at__isnull=True)

    def overdue(self, *, now=None):
        now = now or timezone.now()
        return self.pending().filter(due_at__lt=now)

    def due_between(self, start, end):
        return self.pending().filter(due_at__gte=start, due_at__lt=end)

    def with_related(self):
        return self.select_related("sale", "customer", "assigned_to")
