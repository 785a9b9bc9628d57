"""Churn risk (DESIGN.md "Analytics"): three factors per customer (no contact, no open
deals, low engagement), their weighted sum, and the customers most at risk with why."""

from datetime import UTC, datetime

from django.db.models import (
    Case,
    Exists,
    ExpressionWrapper,
    F,
    FloatField,
    OuterRef,
    QuerySet,
    Value,
    When,
)
from django.db.models.functions import Greatest, Least
from django.utils import timezone

from analytics.expressions import DaysBetween
from analytics.selectors.periods import LOST, WON
from crm.permissions.analytics import UNSCOPED, AnalyticsScope, scoped_customers
from customers.models import Customer
from sales.models import Sale

CHURN_CONTACT_DAYS = 180  # no contact for this long counts fully towards churn
CHURN_WEIGHTS = {"contact": 0.4, "deals": 0.3, "engagement": 0.3}
ENGAGEMENT_RISK = {"LOW": 1.0, "MEDIUM": 0.5, "HIGH": 0.2, "VIP": 0.0}


def customers_with_churn(
    *, user, scope: AnalyticsScope = UNSCOPED, now: datetime | None = None
) -> QuerySet[Customer]:
    """Customers annotated with the three churn factors, each 0-1, and their weighted sum:
    days since contact (capped at CHURN_CONTACT_DAYS; never contacted counts fully), no
    open deals, and engagement (LOW 1 … VIP 0)."""
    return _with_churn(
        _churn_candidates(user=user, scope=scope),
        has_open_deals=Exists(_open_deals()),
        now=now or timezone.now(),
    )


def _churn_candidates(*, user, scope: AnalyticsScope) -> QuerySet[Customer]:
    return scoped_customers(user, scope).exclude(lifecycle_stage=Customer.LifecycleStage.CHURNED)


def _open_deals() -> QuerySet[Sale]:
    return Sale.objects.filter(customer=OuterRef("pk")).exclude(status__in=[WON, LOST])


def _with_churn(customers: QuerySet, *, has_open_deals, now: datetime) -> QuerySet[Customer]:
    # A last contact date has no time zone and the database reads it as midnight UTC: measure
    # it against the local wall clock written as UTC, so the days counted here are the local
    # calendar days churn_reasons names, in any TIME_ZONE.
    wall_clock = timezone.localtime(now).replace(tzinfo=UTC)
    contact = Case(
        When(last_contact_date__isnull=True, then=Value(1.0)),
        default=Least(
            DaysBetween("last_contact_date", Value(wall_clock)) / float(CHURN_CONTACT_DAYS),
            Value(1.0),
        ),
        output_field=FloatField(),
    )
    engagement = Case(
        *(
            When(engagement_level=level, then=Value(risk))
            for level, risk in ENGAGEMENT_RISK.items()
        ),
        default=Value(0.5),
        output_field=FloatField(),
    )
    return customers.annotate(
        has_open_deals=has_open_deals,
        contact_risk=Greatest(contact, Value(0.0)),
        deals_risk=Case(
            When(has_open_deals=True, then=Value(0.0)),
            default=Value(1.0),
            output_field=FloatField(),
        ),  # fmt: skip
        engagement_risk=engagement,
    ).annotate(
        churn_probability=ExpressionWrapper(
            F("contact_risk") * CHURN_WEIGHTS["contact"]
            + F("deals_risk") * CHURN_WEIGHTS["deals"]
            + F("engagement_risk") * CHURN_WEIGHTS["engagement"],
            output_field=FloatField(),
        )
    )


def churn_reasons(customer, *, now: datetime | None = None) -> list[str]:
    """Why a customer (annotated by customers_with_churn) is at risk, in words."""
    now = now or timezone.now()
    reasons = []
    if customer.last_contact_date is None:
        reasons.append("Never contacted")
    elif customer.contact_risk >= 0.5:
        days = (timezone.localdate(now) - customer.last_contact_date).days
        reasons.append(f"No contact for {days} days")
    if not customer.has_open_deals:
        reasons.append("No open deals")
    if customer.engagement_risk >= 1.0:
        reasons.append("Low engagement")
    return reasons


CHURN_RISK_THRESHOLD = 0.6


def churn_risk_customers(
    *,
    user,
    scope: AnalyticsScope = UNSCOPED,
    threshold: float = CHURN_RISK_THRESHOLD,
    limit: int = 20,
    now=None,
) -> list:
    """The `limit` customers most at risk (at least `threshold`), with their reasons.

    Two queries, customers without open deals and those with, each with its deals factor a
    constant: the planner then sorts each half by probability and checks open deals only
    until it has `limit` (an anti-join and a semi-join), instead of looking up the open
    deals of every customer to sort them (200k customers: 0.42 s -> 0.24 s)."""
    now = now or timezone.now()
    candidates = _churn_candidates(user=user, scope=scope)
    halves = [
        _with_churn(candidates.filter(~Exists(_open_deals())), has_open_deals=Value(False),
                    now=now),
        _with_churn(candidates.filter(Exists(_open_deals())), has_open_deals=Value(True),
                    now=now),
    ]  # fmt: skip
    found = [
        customer
        for half in halves
        for customer in half.filter(churn_probability__gte=threshold)
        .select_related("owner")
        .order_by("-churn_probability", "pk")[:limit]
    ]
    rows = sorted(found, key=lambda customer: (-customer.churn_probability, customer.pk))[:limit]
    for customer in rows:
        customer.churn_reasons = churn_reasons(customer, now=now)
    return rows
