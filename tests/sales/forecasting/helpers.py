"""Deals, stage histories and readings the forecasting tests share."""

from datetime import date, datetime, timedelta
from decimal import Decimal

from django.utils import timezone

from sales.forecasting.probability import win_probability_expression
from sales.models import Sale, StageChange
from tests.factories import CustomerFactory, SaleFactory, StageChangeFactory

TODAY = date(2026, 3, 10)
NOW = timezone.make_aware(datetime(2026, 3, 10, 12, 0))


def make_deal(
    owner, status="NEW", amount="1000.00", *, engagement="MEDIUM", age_days=10, now=NOW, **fields
):
    """An open (or closed) deal of `owner` on a customer of the given engagement, created
    `age_days` before `now`, closing 5 days after it unless told otherwise."""
    fields.setdefault("expected_close_date", timezone.localdate(now) + timedelta(days=5))
    if status in Sale.CLOSED_STATUSES:
        fields.setdefault("closed_at", now)
    return SaleFactory(
        customer=CustomerFactory(owner=owner, engagement_level=engagement),
        assigned_to=owner,
        status=status,
        amount=Decimal(amount) if amount is not None else None,
        created_at=now - timedelta(days=age_days),
        **fields,
    )


def probabilities_in_sql(now=NOW) -> dict[str, Decimal]:
    annotated = Sale.objects.annotate(p=win_probability_expression(now))
    return dict(annotated.values_list("title", "p"))


def usd_row(result) -> dict:
    (row,) = [row for row in result["currencies"] if row["currency"] == "USD"]
    return row


def closed_history(count: int, owner) -> None:
    """`count` closed deals: 60 won (entered NEW and PROPOSAL, one of them PROPOSAL twice),
    40 lost after PROPOSAL, the rest lost in NEW. NEW: 60 of `count` won; PROPOSAL: 60 of
    100; nobody entered CONTACTED or NEGOTIATION."""
    customer = CustomerFactory(owner=owner)
    kinds = ["won"] * 60 + ["lost_proposal"] * 40 + ["lost_new"] * (count - 100)
    sales = Sale.objects.bulk_create(
        Sale(
            title=f"closed {i}",
            customer=customer,
            assigned_to=owner,
            amount=Decimal(100),
            status=Sale.Status.WON if kind == "won" else Sale.Status.LOST,
            closed_at=NOW - timedelta(days=1),
        )
        for i, kind in enumerate(kinds)
    )
    changes = []
    for sale, kind in zip(sales, kinds, strict=True):
        stages = ["NEW"] if kind == "lost_new" else ["NEW", "PROPOSAL"]
        if sale.title == "closed 0":
            stages.append("PROPOSAL")  # re-entered: still one deal that entered PROPOSAL
        changes += [
            StageChange(sale=sale, to_status=stage, changed_at=NOW - timedelta(days=5))
            for stage in stages
        ]
        changes.append(
            StageChange(sale=sale, to_status=sale.status, changed_at=NOW - timedelta(days=1))
        )
    StageChange.objects.bulk_create(changes)


def enter_stages(sale, *stages, at=None):
    at = at or NOW - timedelta(days=30)
    for offset, stage in enumerate(stages):
        StageChangeFactory(sale=sale, to_status=stage, changed_at=at + timedelta(hours=offset))
