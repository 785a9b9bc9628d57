"""Who may see and change what: the one place that decides visibility.

Rule (DESIGN.md section 1): a rep sees records they own or that are shared with them;
a manager sees their teams' records as well; an admin sees everything. Every view,
selector, export and API goes through these functions. Models are looked up lazily so
that `crm` does not import the apps that sit on top of it.
"""

from django.apps import apps
from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet
from django.shortcuts import get_object_or_404

from crm.roles import Role, role_of

# Above this many shared records the filter uses a subquery instead of a literal id list.
SHARED_IDS_INLINE_LIMIT = 1000

# The sets below are read at most once per request and kept on the user object (like
# role_of): literal id lists let PostgreSQL use the owner indexes, where an OR with a
# correlated subquery forces a scan of the whole table.


def team_users(user) -> list:
    """The user and, for a manager, every member of the teams they manage (active or not)."""
    cached = getattr(user, "_crm_team_users", None)
    if cached is None:
        if role_of(user) == Role.MANAGER:
            User = get_user_model()
            cached = list(
                User.objects.filter(Q(pk=user.pk) | Q(team_memberships__team__managers=user))
                .distinct()
                .order_by("first_name", "last_name", "username")
            )
        else:
            cached = [user]
        user._crm_team_users = cached
    return cached


def team_user_ids(user) -> list[int]:
    return [member.pk for member in team_users(user)]


def assignable_users(user) -> QuerySet:
    """Who this user may make owner of a record: self (rep), their teams (manager), all (admin)."""
    User = get_user_model()
    active = User.objects.filter(is_active=True).order_by("first_name", "last_name", "username")
    if role_of(user) == Role.ADMIN:
        return active
    return active.filter(pk__in=team_user_ids(user))


def assignable_user_list(user) -> list:
    """assignable_users as a list, without a query for reps and managers."""
    if role_of(user) == Role.ADMIN:
        return list(assignable_users(user))
    return [member for member in team_users(user) if member.is_active]


def _owned_by(user, field: str) -> Q:
    """Records whose `field` user is the user or, for a manager, one of their team."""
    return Q(**{f"{field}__in": team_user_ids(user)})


# Customers -----------------------------------------------------------------------------


def _shared_customers(user, field: str = "pk") -> Q:
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
    Customer = apps.get_model("customers", "Customer")
    queryset = Customer.objects.all() if queryset is None else queryset
    if role_of(user) == Role.ADMIN:
        return queryset
    return queryset.filter(_owned_by(user, "owner") | _shared_customers(user))


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
    # A join on the customer, not `customer IN (subquery)`: the planner can then walk an
    # index in order and stop (the board's columns), instead of hashing every visible
    # customer first.
    return queryset.filter(
        _owned_by(user, "assigned_to")
        | _owned_by(user, "customer__owner")
        | _shared_customers(user, "customer__pk")
    )


def editable_sales(user, queryset: QuerySet | None = None) -> QuerySet:
    """Deals assigned within the user's reach (an unassigned deal: the customer's owner).

    Owning the customer is not enough to change another rep's deal on it.
    """
    Sale = apps.get_model("sales", "Sale")
    queryset = Sale.objects.all() if queryset is None else queryset
    if role_of(user) == Role.ADMIN:
        return queryset
    unassigned_on_mine = Q(
        assigned_to__isnull=True, customer__in=editable_customers(user).values("pk")
    )
    return queryset.filter(_owned_by(user, "assigned_to") | unassigned_on_mine)


def customer_has_deals_beyond_reach(user, customer) -> bool:
    """True when deleting the customer would also delete deals this user may not change."""
    Sale = apps.get_model("sales", "Sale")
    on_customer = Sale.objects.filter(customer=customer)
    return on_customer.exclude(pk__in=editable_sales(user, on_customer).values("pk")).exists()


def access_sale_by_id(user, sale_id, *, for_change: bool = False):
    finder = editable_sales if for_change else visible_sales
    return get_object_or_404(finder(user), pk=sale_id)


# Tasks -----------------------------------------------------------------------------------


def visible_tasks(user, queryset: QuerySet | None = None) -> QuerySet:
    """Tasks assigned to or created by the user (managers: their teams'), and the tasks on
    deals the user may change."""
    Task = apps.get_model("sales", "Task")
    queryset = Task.objects.all() if queryset is None else queryset
    if role_of(user) == Role.ADMIN:
        return queryset
    return queryset.filter(
        _owned_by(user, "assigned_to")
        | Q(created_by=user)
        | Q(sale__in=editable_sales(user).values("pk"))
    )


def access_task_by_id(user, task_id):
    return get_object_or_404(visible_tasks(user), pk=task_id)


def visible_teams(user) -> QuerySet:
    """Teams a user may filter by: all (admin), those they manage (manager), their own (rep)."""
    Team = apps.get_model("crm", "Team")
    role = role_of(user)
    if role == Role.ADMIN:
        return Team.objects.order_by("name")
    if role == Role.MANAGER:
        return Team.objects.filter(managers=user).order_by("name")
    return Team.objects.filter(memberships__user=user).order_by("name")
