from datetime import timedelta

import pytest
from django.utils import timezone

from sales.models import Sale
from tests.factories import CustomerFactory, SaleFactory

pytestmark = pytest.mark.django_db

NOW = timezone.now()


def _deal(rep, status, entered_days_ago):
    sale = SaleFactory(customer=CustomerFactory(owner=rep), assigned_to=rep, status=status)
    Sale.objects.filter(pk=sale.pk).update(stage_entered_at=NOW - timedelta(days=entered_days_ago))
    return sale


@pytest.mark.parametrize("days_in_stage,stale", [(13, False), (15, True)])
def test_stale_after_the_stages_maximum_days(rep, teams, days_in_stage, stale):
    sale = _deal(rep, status="NEW", entered_days_ago=days_in_stage)  # NEW: 14 days
    assert Sale.objects.filter(pk=sale.pk).stale(now=NOW).exists() is stale
    (flagged,) = Sale.objects.filter(pk=sale.pk).with_is_stale(now=NOW)
    assert flagged.is_stale is stale
