"""Reads for duplicate customers, always through crm.permissions."""

from dataclasses import dataclass, field
from typing import Any

from django.apps import apps
from django.db.models import Count, Q, QuerySet

from crm.permissions import visible_customers
from crm.permissions.duplicates import visible_customer_merges, visible_duplicate_pairs
from crm.roles import is_manager_or_admin
from customers.duplicates import matching
from customers.duplicates.models import CustomerMerge, DuplicateJob, DuplicatePair
from customers.duplicates.relations import COUNTED
from customers.duplicates.services import MERGE_FIELDS, merge_default_choices
from customers.models import Customer


def duplicate_queue(
    *, user, status: str = DuplicatePair.Status.OPEN, min_confidence: int = 0
) -> QuerySet[DuplicatePair]:
    """The pairs the user reviews, most certain first, with both customers joined."""
    pairs = visible_duplicate_pairs(user).filter(status=status)
    if min_confidence:
        pairs = pairs.filter(confidence__gte=min_confidence)
    return pairs.select_related("customer_a__owner", "customer_b__owner", "dismissed_by").order_by(
        "-confidence", "id"
    )


@dataclass
class FieldRow:
    name: str
    label: str
    value_a: Any
    value_b: Any
    default: int | str  # the id of the customer whose value stays by default, or "both"
    differs: bool


@dataclass
class Comparison:
    a: Customer
    b: Customer
    rows: list[FieldRow]
    counts: list[tuple[str, int, int]] = field(default_factory=list)


def _shown(customer: Customer, name: str) -> Any:
    model_field = Customer._meta.get_field(name)
    if model_field.choices:
        return getattr(customer, f"get_{name}_display")()
    value = getattr(customer, name)
    return "" if value is None else value


def pair_comparison(*, a: Customer, b: Customer) -> Comparison:
    """The two customers side by side: every mergeable field (the default pick when they
    differ, with `a` as survivor) and how many deals, tasks, notes ... each has."""
    defaults = merge_default_choices(survivor=a, other=b)
    rows = [
        FieldRow(
            name=name,
            label=str(Customer._meta.get_field(name).verbose_name).capitalize(),
            value_a=_shown(a, name),
            value_b=_shown(b, name),
            default=defaults.get(name, a.pk),
            differs=name in defaults,
        )
        for name in MERGE_FIELDS
    ]
    counts = []
    for label, key in COUNTED:
        model_label, fk = key.rsplit(".", 1)
        model = apps.get_model(model_label)
        found = dict(
            model._base_manager.filter(**{f"{fk}__in": [a.pk, b.pk]})
            .values_list(fk)
            .annotate(n=Count("pk"))
            .order_by()
        )
        counts.append((label, found.get(a.pk, 0), found.get(b.pk, 0)))
    return Comparison(a=a, b=b, rows=rows, counts=counts)


@dataclass
class LikelyDuplicate:
    customer: Customer | None  # None: out of the user's sight (only counted)
    confidence: int
    reasons: list[str]


def likely_duplicates(
    *, user, data: dict[str, Any], exclude_ids: list[int] | None = None, limit: int = 5
) -> list[LikelyDuplicate]:
    """The existing customers that `data` (a new customer's name, email, phone, company)
    likely duplicates, best first: the ones the user sees with the record, the others only
    counted (their names are not the user's to read)."""
    found = matching.matches_for(data, exclude_ids=exclude_ids, limit=limit)
    if not found:
        return []
    seen = visible_customers(user).select_related("owner").in_bulk([pk for pk, _, _ in found])
    return [
        LikelyDuplicate(customer=seen.get(pk), confidence=confidence, reasons=reasons)
        for pk, confidence, reasons in found
    ]


def customer_merges(*, user) -> QuerySet[CustomerMerge]:
    return visible_customer_merges(user).select_related("survivor", "merged_by", "undone_by")


def duplicate_pairs_of(*, user, customer: Customer, limit: int = 5) -> list[DuplicatePair]:
    """The open pairs the customer is in, for its page (managers and admins; a rep gets none
    without a query)."""

    if not is_manager_or_admin(user):
        return []
    pairs = duplicate_queue(user=user).filter(Q(customer_a=customer) | Q(customer_b=customer))
    return list(pairs[:limit])


def latest_job(*, kind: str) -> DuplicateJob | None:
    return DuplicateJob.objects.filter(kind=kind).select_related("started_by").first()
