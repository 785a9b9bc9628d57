"""What leads do (opens, clicks, visits, downloads, ...): recorded with the score impact the
engagement rules give, and the leads rescored once the transaction commits."""

from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from crm.errors import ValidationFailed
from customers.models import Customer
from leads.models import ActivityType, Factor, LeadActivity, ScoringRule
from leads.services.rescore import lead_rescore_later


def lead_activity_record(
    *,
    customer: Customer,
    activity_type: str,
    details: dict[str, Any] | None = None,
    timestamp: datetime | None = None,
    recorded_by=None,
) -> LeadActivity:
    """Record what a lead did; its score impact comes from the engagement rules."""
    if activity_type not in ActivityType.values:
        raise ValidationFailed(f"Unknown activity type “{activity_type}”.", field="activity_type")
    timestamp = timestamp or timezone.now()
    if timestamp > timezone.now() + timedelta(minutes=5):
        raise ValidationFailed("An activity cannot happen in the future.", field="timestamp")
    rule = ScoringRule.objects.filter(factor=Factor.ENGAGEMENT, key=activity_type).first()
    with transaction.atomic():
        activity = LeadActivity.objects.create(
            customer=customer,
            activity_type=activity_type,
            details=details or {},
            score_impact=rule.points if rule else 0,
            timestamp=timestamp,
            recorded_by=recorded_by,
        )
        lead_rescore_later(customer_ids=[customer.pk])
    return activity


def lead_activities_record_bulk(*, rows: list[tuple[int, str, dict, datetime]]) -> int:
    """Record many activities at once, (customer id, type, details, timestamp) each, e.g. the
    opens and clicks of a webhook batch; the leads are rescored in one task after commit."""
    if not rows:
        return 0
    impacts = dict(
        ScoringRule.objects.filter(factor=Factor.ENGAGEMENT).values_list("key", "points")
    )
    activities = [
        LeadActivity(
            customer_id=customer_id,
            activity_type=activity_type,
            details=details,
            score_impact=impacts.get(activity_type, 0),
            timestamp=timestamp,
        )
        for customer_id, activity_type, details, timestamp in rows
        if activity_type in ActivityType.values
    ]
    with transaction.atomic():
        LeadActivity.objects.bulk_create(activities, batch_size=2000)
        lead_rescore_later(customer_ids=sorted({a.customer_id for a in activities}))
    return len(activities)
