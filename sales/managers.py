from datetime import timedelta

from django.db import models
from django.utils import timezone


class SaleQuerySet(models.QuerySet):
    def open(self):
        return self.exclude(status__in=self.model.CLOSED_STATUSES)

    def won(self):
        return self.filter(status=self.model.Status.WON)

    def with_related(self):
        return self.select_related("customer", "assigned_to")


class TaskQuerySet(models.QuerySet):
    def pending(self):
        return self.filter(completed_at__isnull=True)

    def overdue(self, *, now=None):
        now = now or timezone.now()
        return self.pending().filter(due_at__lt=now)

    def due_between(self, start, end):
        return self.pending().filter(due_at__gte=start, due_at__lt=end)

    def due_within(self, *, days: int, now=None):
        now = now or timezone.now()
        return self.due_between(now, now + timedelta(days=days))

    def with_related(self):
        return self.select_related("sale", "customer", "assigned_to")
