"""Deals built for the pipeline rules' tests: in a stage since a given number of days."""

from datetime import datetime, timedelta

from sales.models import Sale
from tests.factories import CustomerFactory, SaleFactory


def deal_in_stage(rep, *, now: datetime, status="NEW", entered_days_ago=20, **fields) -> Sale:
    sale = SaleFactory(
        customer=CustomerFactory(owner=rep), assigned_to=rep, status=status, **fields
    )
    Sale.objects.filter(pk=sale.pk).update(stage_entered_at=now - timedelta(days=entered_days_ago))
    sale.refresh_from_db()
    return sale
