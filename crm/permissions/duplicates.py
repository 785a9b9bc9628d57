"""Duplicate customers: the review queue is for managers (pairs of their teams' customers:
both customers in sight) and admins (all); merging needs the right to change both customers;
undoing a merge the right to change the survivor and to own what comes back."""

from django.db.models import Q, QuerySet
from django.shortcuts import get_object_or_404

from crm.permissions.core import queryset_or_all, require_manager, team_user_ids
from crm.permissions.customers import editable_customers, visible_customers
from crm.roles import Role, role_of


def visible_duplicate_pairs(user, queryset: QuerySet | None = None) -> QuerySet:
    """Pairs whose two customers the user sees; nothing for a rep."""
    pairs = queryset_or_all(queryset, "customers.DuplicatePair")
    role = role_of(user)
    if role == Role.ADMIN:
        return pairs
    if role != Role.MANAGER:
        return pairs.none()
    visible = visible_customers(user).values("pk")
    return pairs.filter(customer_a__in=visible, customer_b__in=visible)


def access_duplicate_pair_by_id(user, pair_id):
    """The pair, 403 for a rep, 404 when it is out of the user's sight."""
    require_manager(user, "Only managers and admins review duplicates.")
    return get_object_or_404(visible_duplicate_pairs(user), pk=pair_id)


def may_merge(user, customer_ids: list[int]) -> bool:
    """Whether the user may change every one of the customers (a merge changes both)."""
    return editable_customers(user).filter(pk__in=customer_ids).count() == len(set(customer_ids))


def visible_customer_merges(user, queryset: QuerySet | None = None) -> QuerySet:
    """Merges into customers the user may change (an admin: all); nothing for a rep."""
    merges = queryset_or_all(queryset, "customers.CustomerMerge")
    role = role_of(user)
    if role == Role.ADMIN:
        return merges
    if role != Role.MANAGER:
        return merges.none()
    return merges.filter(Q(survivor__in=editable_customers(user).values("pk")) | Q(merged_by=user))


def access_customer_merge_by_id(user, merge_id):
    require_manager(user, "Only managers and admins merge customers.")
    return get_object_or_404(visible_customer_merges(user), pk=merge_id)


def may_own(user, owner_id: int | None) -> bool:
    """Whether a customer owned by `owner_id` is within the user's reach (restoring one)."""
    return owner_id is None or role_of(user) == Role.ADMIN or owner_id in team_user_ids(user)
