"""Customers: a rep sees the ones they own or that are shared with them (a manager: their
teams'); changing one needs ownership."""

from django.apps import apps
from django.db.models import Q, QuerySet
from django.shortcuts import get_object_or_404

from crm.permissions.core import owned_by, queryset_or_all, team_user_ids
from crm.roles import Role, role_of

# Above this many shared records the filter uses a subquery instead of a literal id list
# (see core.py for why literal lists).
SHARED_IDS_INLINE_LIMIT = 1000


def shared_customers(user, field: str = "pk") -> Q:
    """Customers shared with the user (a manager: with anyone in their teams), as a Q on
    `field` (the customer's pk, or e.g. "customer__pk" from a deal)."""
    Customer = apps.get_model("customers", "Customer")
    shared = Customer.shared_with.through.objects.filter(user_id__in=team_user_ids(user))
    cached = getattr(user, "_crm_shared_customer_ids", None)
    if cached is None:
        cached = list(shared.values_list("customer_id", flat=True)[: SHARED_IDS_INLINE_LIMIT + 1])
        user._crm_shared_customer_ids = cached
    if len(cached) > SHARED_IDS_INLINE_LIMIT:
        return Q(**{f"{field}__in": shared.values("customer_id")})
    return Q(**{f"{field}__in": cached})


def visible_customers(user, queryset: QuerySet | None = None) -> QuerySet:
    queryset = queryset_or_all(queryset, "customers.Customer")
    if role_of(user) == Role.ADMIN:
        return queryset
    return queryset.filter(owned_by(user, "owner") | shared_customers(user))


def editable_customers(user, queryset: QuerySet | None = None) -> QuerySet:
    """Sharing gives read access; changing a customer needs ownership (or the owner's manager)."""
    queryset = queryset_or_all(queryset, "customers.Customer")
    if role_of(user) == Role.ADMIN:
        return queryset
    return queryset.filter(owned_by(user, "owner"))


def access_customer_by_id(user, customer_id, *, for_change: bool = False):
    """The customer, or 404 when it does not exist or is out of the user's reach."""
    finder = editable_customers if for_change else visible_customers
    return get_object_or_404(finder(user), pk=customer_id)


def visible_customer_notes(user, queryset: QuerySet | None = None) -> QuerySet:
    """Notes on the customers the user sees."""
    notes = queryset_or_all(queryset, "customers.CustomerNote")
    if role_of(user) == Role.ADMIN:
        return notes
    return notes.filter(customer__in=visible_customers(user).values("pk"))


def visible_lead_activities(user, queryset: QuerySet | None = None) -> QuerySet:
    """What the leads the user sees did (opens, visits, calls answered...)."""
    activities = queryset_or_all(queryset, "leads.LeadActivity")
    if role_of(user) == Role.ADMIN:
        return activities
    return activities.filter(customer__in=visible_customers(user).values("pk"))
