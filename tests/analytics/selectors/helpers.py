"""Deals and readings the analytics selector tests share. The dashboard reads velocity, the
funnel and the trend from one deal_flow, and the revenue windows and months from one
won_revenue; the *_of / revenue_* readings check each on its own."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.utils import timezone

from analytics.selectors.deal_flow import deal_flow
from analytics.selectors.revenue import won_revenue
from sales.models import Sale
from tests.factories import SaleFactory, stage_history

NOW = timezone.now()


def revenue_windows(**kwargs):
    return won_revenue(months=1, **kwargs)["windows"]


def revenue_months(**kwargs):
    return won_revenue(**kwargs)["by_month"]


def velocity_of(**kwargs):
    return deal_flow(months=0, **kwargs)["velocity"]


def funnel_of(days=365, **kwargs):
    return deal_flow(days=days, months=0, **kwargs)["funnel"]


def trend_of(months=6, **kwargs):
    return deal_flow(days=1, months=months, **kwargs)["trend"]


def won_deal(customer, amount, days_ago, created_days_ago=None, **fields):
    closed = NOW - timedelta(days=days_ago)
    sale = SaleFactory(customer=customer, assigned_to=customer.owner, status="WON",
                       amount=Decimal(amount) if amount is not None else None,
                       closed_at=closed, **fields)  # fmt: skip
    created = NOW - timedelta(
        days=created_days_ago if created_days_ago is not None else days_ago + 30
    )
    Sale.objects.filter(pk=sale.pk).update(created_at=created)
    return sale


MID_MARCH = datetime(2025, 3, 15, 15, 0, tzinfo=UTC)


def deal_created(customer, days_ago, status="NEW", **fields):
    closed = NOW if status in ("WON", "LOST") else None
    sale = SaleFactory(customer=customer, status=status, closed_at=closed, **fields)
    Sale.objects.filter(pk=sale.pk).update(created_at=NOW - timedelta(days=days_ago))
    return sale


def moves_through(sale, *statuses):
    stage_history(sale, *((status, NOW - timedelta(days=20 - offset))
                          for offset, status in enumerate(statuses)))  # fmt: skip
