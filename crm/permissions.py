"""Who may see and change what: the one place that decides visibility.

Rule (DESIGN.md section 1): a rep sees records they own or that are shared with them;
a manager sees their teams' records as well; an admin sees everything. Every view,
selector, export and API goes through these functions. Models are looked up lazily so
that `crm` does not import the apps that sit on top of it.
"""

from django.apps import apps
from django.contrib.auth import get_user_model
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.shortcuts import get_object_or_404

from crm.roles import Role, role_of


def team_user_ids(user) -> QuerySet:
    """Ids of the user and of every member of the teams the user manages (a subquery)."""
    User = get_user_model()
    return (
        User.objects.filter(Q(pk=user.pk) | Q(team_memberships__team__managers=user))
        .values("pk")
        .distinct()
    )


def assignable_users(user) -> QuerySet:
    """Who this user may make owner of a record: self (rep), their teams (manager), all (admin)."""
    User = get_user_model()
    active = User.objects.filter(is_active=True).order_by("first_name", "last_name", "username")
    role = role_of(user)
    if role == Role.ADMIN:
        return active
    if role == Role.MANAGER:
        return active.filter(pk__in=team_user_ids(user))
    return active.filter(pk=user.pk)


def _owned_by(user, field: str) -> Q:
    """Records whose `field` user is within this user's reach (self, or the managed teams).

    For a manager this also covers what is shared with their team members.
    """
    if role_of(user) == Role.MANAGER:
        return Q(**{f"{field}__in": team_user_ids(user)})
    return Q(**{field: user})


# Customers -----------------------------------------------------------------------------


def visible_customers(user, queryset: QuerySet | None = None) -> QuerySet:
    Customer = apps.get_model("customers", "Customer")
    queryset = Customer.objects.all() if queryset is None else queryset
    if role_of(user) == Role.ADMIN:
        return queryset
    shared = Exists(
        Customer.shared_with.through.objects.filter(
            _owned_by(user, "user"), customer_id=OuterRef("pk")
        )
    )
    return queryset.filter(_owned_by(user, "owner") | shared)


def editable_customers(user, queryset: QuerySet | None = None) -> QuerySet:
    """Sharing gives read access; changing a customer needs ownership (or the owner's manager)."""
    Customer = apps.get_model("customers", "Customer")
    queryset = Customer.objects.all() if queryset is None else queryset
    if role_of(user) == Role.ADMIN:
        return queryset
    return queryset.filter(_owned_by(user, "owner"))


def access_customer_by_id(user, customer_id, *, for_change: bool = False):
    """The customer, or 404 when it does not exist or is out of the user's reach."""
    finder = editable_customers if for_change else visible_customers
    return get_object_or_404(finder(user), pk=customer_id)


# Deals -----------------------------------------------------------------------------------


def visible_sales(user, queryset: QuerySet | None = None) -> QuerySet:
    """Deals assigned to the user's reach, or on customers the user can see."""
    Sale = apps.get_model("sales", "Sale")
    queryset = Sale.objects.all() if queryset is None else queryset
    if role_of(user) == Role.ADMIN:
        return queryset
    return queryset.filter(
        _owned_by(user, "assigned_to") | Q(customer__in=visible_customers(user).values("pk"))
    )


def editable_sales(user, queryset: QuerySet | None = None) -> QuerySet:
    Sale = apps.get_model("sales", "Sale")
    queryset = Sale.objects.all() if queryset is None else queryset
    if role_of(user) == Role.ADMIN:
        return queryset
    return queryset.filter(
        _owned_by(user, "assigned_to") | Q(customer__in=editable_customers(user).values("pk"))
    )


def access_sale_by_id(user, sale_id, *, for_change: bool = False):
    finder = editable_sales if for_change else visible_sales
    return get_object_or_404(finder(user), pk=sale_id)


# Tasks -----------------------------------------------------------------------------------


def visible_tasks(user, queryset: QuerySet | None = None) -> QuerySet:
    """Tasks assigned to or created by the user (managers: their teams')."""
    Task = apps.get_model("sales", "Task")
    queryset = Task.objects.all() if queryset is None else queryset
    if role_of(user) == Role.ADMIN:
        return queryset
    return queryset.filter(_owned_by(user, "assigned_to") | Q(created_by=user))


def access_task_by_id(user, task_id):
    return get_object_or_404(visible_tasks(user), pk=task_id)
