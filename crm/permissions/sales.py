"""Deals and tasks: a deal is visible with its customer or its assignee; changing it needs the
assignment (an unassigned deal: the customer's owner)."""

from django.apps import apps
from django.db.models import Q, QuerySet
from django.shortcuts import get_object_or_404

from crm.permissions.core import owned_by, queryset_or_all
from crm.permissions.customers import editable_customers, shared_customers
from crm.roles import Role, role_of


def visible_sales(user, queryset: QuerySet | None = None) -> QuerySet:
    """Deals assigned to the user's reach, or on customers the user can see."""
    queryset = queryset_or_all(queryset, "sales.Sale")
    if role_of(user) == Role.ADMIN:
        return queryset
    # customer_owner is the customer's owner kept on the deal by database triggers: no join
    # with the customers (which made every count and total of a list hash-join all deals
    # with all customers), and the board's columns still walk their index in order.
    return queryset.filter(
        owned_by(user, "assigned_to")
        | owned_by(user, "customer_owner")
        | shared_customers(user, "customer_id")
    )


def editable_sales(user, queryset: QuerySet | None = None) -> QuerySet:
    """Deals assigned within the user's reach (an unassigned deal: the customer's owner).

    Owning the customer is not enough to change another rep's deal on it.
    """
    queryset = queryset_or_all(queryset, "sales.Sale")
    if role_of(user) == Role.ADMIN:
        return queryset
    unassigned_on_mine = Q(
        assigned_to__isnull=True, customer__in=editable_customers(user).values("pk")
    )
    return queryset.filter(owned_by(user, "assigned_to") | unassigned_on_mine)


def customer_has_deals_beyond_reach(user, customer) -> bool:
    """True when deleting the customer would also delete deals this user may not change."""
    Sale = apps.get_model("sales", "Sale")
    on_customer = Sale.objects.filter(customer=customer)
    return on_customer.exclude(pk__in=editable_sales(user, on_customer).values("pk")).exists()


def can_attach_to(user, *, customer=None, sale=None) -> bool:
    """May the user attach something (a document) to this deal, or without a deal to this
    customer? Attaching changes the record, so a share to read is not enough (a proposal
    on a deal even moves its stage); the rep's own deal on a customer they may only read
    takes attachments: the deal decides."""
    if sale is not None:
        return editable_sales(user).filter(pk=sale.pk).exists()
    if customer is not None:
        return editable_customers(user).filter(pk=customer.pk).exists()
    return True


def can_share_with(user, *, customer, sale=None) -> bool:
    """May the user send content (a tracked document link) to this customer? It acts on
    the customer's behalf: whoever may change the customer may, and so may the rep of the
    deal it is sent from; a share to read is not enough."""
    if editable_customers(user).filter(pk=customer.pk).exists():
        return True
    return sale is not None and editable_sales(user).filter(pk=sale.pk).exists()


def access_sale_by_id(user, sale_id, *, for_change: bool = False):
    finder = editable_sales if for_change else visible_sales
    return get_object_or_404(finder(user), pk=sale_id)


def visible_tasks(user, queryset: QuerySet | None = None) -> QuerySet:
    """Tasks assigned to or created by the user (managers: their teams'), and the tasks on
    deals the user may change."""
    queryset = queryset_or_all(queryset, "sales.Task")
    if role_of(user) == Role.ADMIN:
        return queryset
    return queryset.filter(
        owned_by(user, "assigned_to")
        | Q(created_by=user)
        | Q(sale__in=editable_sales(user).values("pk"))
    )


def access_task_by_id(user, task_id):
    return get_object_or_404(visible_tasks(user), pk=task_id)


def visible_sale_activities(user, queryset: QuerySet | None = None) -> QuerySet:
    """Activities logged on the deals the user sees."""
    activities = queryset_or_all(queryset, "sales.SaleActivity")
    if role_of(user) == Role.ADMIN:
        return activities
    return activities.filter(sale__in=visible_sales(user).values("pk"))
