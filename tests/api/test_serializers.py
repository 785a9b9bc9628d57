"""api.serializers.SparseSerializer formats rows itself on the hot path: its output must be
exactly DRF's own."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from rest_framework import serializers

from api.customers import CustomerSerializer, with_tags
from api.leads import LeadSerializer, LeadViewSet
from api.sales import DealSerializer, TaskSerializer
from customers.models import Customer
from sales.models import Sale, Task
from tests.factories import CustomerFactory, SaleFactory, TagFactory, TaskFactory

pytestmark = pytest.mark.django_db


def _both(serializer_class, rows):
    fast = serializer_class(rows, many=True).data
    drf = [serializers.ModelSerializer.to_representation(serializer_class(row), row)
           for row in rows]  # fmt: skip
    return fast, drf


@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin"])
def test_the_fast_path_gives_drfs_output(rep, settings, zone):
    settings.TIME_ZONE = zone
    CustomerFactory(owner=rep, tags=[TagFactory(name="b"), TagFactory(name="a")],
                    annual_revenue=Decimal("12.5"), website="",
                    last_contact_date=timezone.localdate())  # fmt: skip
    CustomerFactory(owner=None, region="", industry="")
    sale = SaleFactory(customer=CustomerFactory(owner=rep), assigned_to=None, amount=None)
    Sale.objects.filter(pk=sale.pk).update(closed_at=None)
    TaskFactory(assigned_to=rep, completed_at=timezone.now() - timedelta(hours=1))
    fast, drf = _both(CustomerSerializer, list(with_tags(Customer.objects.all())))
    assert fast == drf and fast[0]["tags"] in (["a", "b"], [])
    fast, drf = _both(DealSerializer, list(Sale.objects.select_related("customer", "assigned_to")))
    assert fast == drf
    fast, drf = _both(TaskSerializer, list(Task.objects.select_related("assigned_to")))
    assert fast == drf
    leads = list(LeadViewSet().base_queryset())
    fast, drf = _both(LeadSerializer, leads)
    assert fast == drf
