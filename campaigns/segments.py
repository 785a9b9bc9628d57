"""Segment criteria: a JSON object of known keys, checked, then compiled to one queryset.

    {"engagement_level": ["HIGH", "VIP"], "region": ["emea"], "tags": [3],
     "score_min": 50, "grade": ["hot", "warm"], "last_contact_within_days": 30,
     "company_size_min": 50, "owner": [7], "email_consent": ["granted"]}

An unknown key or a bad value is a ValidationFailed naming it: a typo must never widen a
campaign's audience by being ignored.
"""

from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from crm.errors import ValidationFailed
from crm.permissions import visible_customers
from customers.models import Customer, EmailConsent, Industry, Region, Tag
from leads.models import Grade

CHOICE_KEYS = {
    "engagement_level": ("Engagement level", Customer.EngagementLevel.values),
    "region": ("Region", Region.values),
    "lifecycle_stage": ("Lifecycle stage", Customer.LifecycleStage.values),
    "industry": ("Industry", Industry.values),
    "grade": ("Lead grade", Grade.values),
    "email_consent": ("Email consent", EmailConsent.values),
}
NUMBER_KEYS = {
    "score_min": ("Minimum lead score", 0, 100),
    "score_max": ("Maximum lead score", 0, 100),
    "last_contact_within_days": ("Last contact within (days)", 0, 36500),
    "last_contact_not_within_days": ("No contact within (days)", 0, 36500),
    "company_size_min": ("Minimum company size", 0, 10_000_000),
    "company_size_max": ("Maximum company size", 0, 10_000_000),
}
ID_KEYS = {"tags": "Tags", "owner": "Owner"}
KNOWN_KEYS = set(CHOICE_KEYS) | set(NUMBER_KEYS) | set(ID_KEYS)
RANGES = [
    ("score_min", "score_max"),
    ("company_size_min", "company_size_max"),
]


def criteria_clean(criteria: Any) -> dict[str, Any]:
    """The criteria with empty values dropped, or ValidationFailed naming what is wrong."""
    if not isinstance(criteria, dict):
        raise ValidationFailed("Segment criteria must be a JSON object.")
    unknown = sorted(set(criteria) - KNOWN_KEYS)
    if unknown:
        raise ValidationFailed(f"Unknown segment criteria: {', '.join(unknown)}.")
    cleaned: dict[str, Any] = {}
    for key, value in criteria.items():
        if value in (None, "", []):
            continue
        if key in CHOICE_KEYS:
            label, allowed = CHOICE_KEYS[key]
            values = value if isinstance(value, list) else [value]
            bad = [v for v in values if v not in allowed]
            if bad:
                raise ValidationFailed(f"{label}: unknown value(s) {bad}.", field=key)
            cleaned[key] = sorted(set(values))
        elif key in NUMBER_KEYS:
            label, low, high = NUMBER_KEYS[key]
            number = _integer(value, label, key)
            if not low <= number <= high:
                raise ValidationFailed(f"{label} must be between {low} and {high}.", field=key)
            cleaned[key] = number
        else:
            values = value if isinstance(value, list) else [value]
            cleaned[key] = sorted({_integer(v, ID_KEYS[key], key) for v in values})
    for low, high in RANGES:
        if low in cleaned and high in cleaned and cleaned[low] > cleaned[high]:
            raise ValidationFailed(
                f"{NUMBER_KEYS[low][0]} is above {NUMBER_KEYS[high][0].lower()}.", field=low
            )
    _check_ids_exist(cleaned)
    return cleaned


def _integer(value: Any, label: str, key: str) -> int:
    if isinstance(value, bool):
        raise ValidationFailed(f"{label} must be a whole number.", field=key)
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: float("inf")
        raise ValidationFailed(f"{label} must be a whole number.", field=key) from None
    if isinstance(value, float) and value != number:
        raise ValidationFailed(f"{label} must be a whole number.", field=key)
    return number


def _check_ids_exist(cleaned: dict[str, Any]) -> None:
    if "tags" in cleaned:
        found = set(Tag.objects.filter(pk__in=cleaned["tags"]).values_list("pk", flat=True))
        missing = sorted(set(cleaned["tags"]) - found)
        if missing:
            raise ValidationFailed(f"Tags: no tag with id {missing}.", field="tags")
    if "owner" in cleaned:
        users = get_user_model().objects.filter(pk__in=cleaned["owner"])
        missing = sorted(set(cleaned["owner"]) - set(users.values_list("pk", flat=True)))
        if missing:
            raise ValidationFailed(f"Owner: no user with id {missing}.", field="owner")


def criteria_filter(criteria: dict[str, Any], *, now=None) -> Q:
    """One Q over Customer for checked criteria (criteria_clean first). Days count back
    from today's local date: "within 1 day" is today and yesterday."""
    today = timezone.localdate(now or timezone.now())
    q = Q()
    for key in CHOICE_KEYS:
        if key in criteria and key != "grade":
            q &= Q(**{f"{key}__in": criteria[key]})
    if "grade" in criteria:
        q &= Q(lead_score__grade__in=criteria["grade"])
    if "score_min" in criteria:
        q &= Q(lead_score__total_score__gte=criteria["score_min"])
    if "score_max" in criteria:
        q &= Q(lead_score__total_score__lte=criteria["score_max"])
    if "company_size_min" in criteria:
        q &= Q(company_size__gte=criteria["company_size_min"])
    if "company_size_max" in criteria:
        q &= Q(company_size__lte=criteria["company_size_max"])
    if "last_contact_within_days" in criteria:
        since = today - timedelta(days=criteria["last_contact_within_days"])
        q &= Q(last_contact_date__gte=since)
    if "last_contact_not_within_days" in criteria:
        since = today - timedelta(days=criteria["last_contact_not_within_days"])
        q &= Q(last_contact_date__lt=since) | Q(last_contact_date__isnull=True)
    if "owner" in criteria:
        q &= Q(owner_id__in=criteria["owner"])
    if "tags" in criteria:
        # Exists, not a join: a customer with two of the tags is still one recipient.
        tagged = Customer.tags.through.objects.filter(
            customer_id=OuterRef("pk"), tag_id__in=criteria["tags"]
        )
        q &= Q(Exists(tagged))
    return q


def segment_customers(*, user, criteria: dict[str, Any]) -> QuerySet:
    """The customers matching the criteria among those `user` may see."""
    return visible_customers(user, Customer.objects.filter(criteria_filter(criteria)))


CHOICE_LABELS = {
    "engagement_level": dict(Customer.EngagementLevel.choices),
    "region": dict(Region.choices),
    "lifecycle_stage": dict(Customer.LifecycleStage.choices),
    "industry": dict(Industry.choices),
    "grade": dict(Grade.choices),
    "email_consent": dict(EmailConsent.choices),
}


def criteria_summary(criteria: dict[str, Any], *, names: dict[str, dict[int, str]]) -> list[str]:
    """The criteria in words, one clause each ("Region: EMEA, APAC", "Minimum lead score:
    50"); `names` gives the tags' and owners' names by id ({"tags": {3: "vip"}, ...})."""
    clauses = []
    for key, value in criteria.items():
        values = value if isinstance(value, list) else [value]
        if key in CHOICE_KEYS:
            labels = CHOICE_LABELS[key]
            clauses.append(
                f"{CHOICE_KEYS[key][0]}: {', '.join(labels.get(v, str(v)) for v in values)}"
            )
        elif key in NUMBER_KEYS:
            clauses.append(f"{NUMBER_KEYS[key][0]}: {value}")
        elif key in ID_KEYS:
            known = names.get(key, {})
            clauses.append(f"{ID_KEYS[key]}: {', '.join(known.get(v, f'#{v}') for v in values)}")
    return clauses
