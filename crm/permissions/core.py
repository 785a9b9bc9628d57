"""The rule every area builds on: who is in a user's reach (self, or a manager's teams), who
may be made owner of a record, which teams a user may pick, and the role gates."""

from django.apps import apps
from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet

from crm.errors import PermissionDenied
from crm.roles import Role, is_admin, is_manager_or_admin, role_of

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


def owned_by(user, field: str) -> Q:
    """Records whose `field` user is the user or, for a manager, one of their team."""
    return Q(**{f"{field}__in": team_user_ids(user)})


def queryset_or_all(queryset: QuerySet | None, model: str) -> QuerySet:
    """The queryset to narrow: the caller's, or every row of `model` ("app_label.Model",
    looked up lazily so that crm imports no app above it)."""
    return apps.get_model(model).objects.all() if queryset is None else queryset


def require_manager(user, message: str = "Only managers and admins can do this.") -> None:
    """Refuse (403) anyone but a manager or an admin."""
    if not is_manager_or_admin(user):
        raise PermissionDenied(message)


def require_admin(user, message: str = "Only admins can do this.") -> None:
    if not is_admin(user):
        raise PermissionDenied(message)


def visible_teams(user) -> QuerySet:
    """Teams a user may filter by: all (admin), those they manage (manager), their own (rep)."""
    Team = apps.get_model("crm", "Team")
    role = role_of(user)
    if role == Role.ADMIN:
        return Team.objects.order_by("name")
    if role == Role.MANAGER:
        return Team.objects.filter(managers=user).order_by("name")
    return Team.objects.filter(memberships__user=user).order_by("name")


def visible_users(user, queryset: QuerySet | None = None) -> QuerySet:
    """People a user may look up: an admin everyone; others themselves, their teams'
    members and managers (a manager: the teams they manage, too)."""
    users = get_user_model().objects.all() if queryset is None else queryset
    if role_of(user) == Role.ADMIN:
        return users
    teams = visible_teams(user).values("pk")
    User = get_user_model()
    in_reach = User.objects.filter(
        Q(pk__in=team_user_ids(user))
        | Q(team_memberships__team__in=teams)
        | Q(managed_teams__in=teams)
    )
    return users.filter(pk__in=in_reach.values("pk"))


def visible_teams_of(user, queryset: QuerySet | None = None) -> QuerySet:
    """visible_teams as a filter of `queryset` (the API's base viewset narrows querysets)."""
    teams = visible_teams(user)
    return teams if queryset is None else queryset.filter(pk__in=teams.values("pk"))
