"""The dashboards' scopes: whose numbers a user may look at.

The executive dashboard, its exports and the deals behind its numbers are for managers and
admins. A manager may narrow them to a team they manage or to one person of their teams
(themselves included); an admin to any team or person. Every number counts only what
visible_sales / visible_customers let the user see, narrowed to the scope (deals by their
owner, customers by theirs; crm.permissions.scopes). Each user's home page shows their own
numbers (of_owner on the user).
"""

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db.models import QuerySet

from crm.permissions.core import owned_by, require_manager, team_user_ids, team_users, visible_teams
from crm.permissions.customers import visible_customers
from crm.permissions.sales import visible_sales
from crm.permissions.scopes import ScopeOutOfReach, of_owner, of_team
from crm.roles import Role, role_of

DASHBOARD_ONLY = "The executive dashboard is for managers and admins."


@dataclass(frozen=True)
class AnalyticsScope:
    """Whose deals: everyone the user sees, one team, or one rep (within what they see)."""

    team_id: int | None = None
    rep_id: int | None = None


UNSCOPED = AnalyticsScope()  # everything the user sees


def require_dashboard(user) -> None:
    """Refuse (403) anyone but a manager or an admin."""
    require_manager(user, DASHBOARD_ONLY)


def access_dashboard_scope(user, *, team_id: int | None = None, rep_id: int | None = None):
    """The scope (a team and/or a rep) if the user may look at it: managers and admins only;
    a manager only a team they manage and a rep of their teams (or themselves). Raises
    PermissionDenied (a 403) for a rep, ScopeOutOfReach (a 404) for a team or rep out of
    reach."""
    require_dashboard(user)
    scope = AnalyticsScope(team_id=team_id, rep_id=rep_id)
    if role_of(user) == Role.ADMIN:
        return scope
    if rep_id and rep_id not in team_user_ids(user):
        raise ScopeOutOfReach("You do not manage this rep.")
    if team_id and not visible_teams(user).filter(pk=team_id).exists():
        raise ScopeOutOfReach("You do not manage this team.")
    return scope


def dashboard_view_key(user) -> str:
    """Whose view of the data the user has (for the dashboard's cache keys): every admin
    sees the same; anyone else their own."""
    return "all" if role_of(user) == Role.ADMIN else f"u{user.pk}"


def dashboard_reps(user) -> list:
    """People whose numbers the user may look at one by one: everyone for an admin, the
    members of a manager's teams (and the manager)."""
    if role_of(user) == Role.ADMIN:
        return list(get_user_model().objects.order_by("first_name", "last_name", "username"))
    return team_users(user)  # kept on the user: no query when the dashboard runs too


def scoped_sales(user, scope: AnalyticsScope = UNSCOPED) -> QuerySet:
    """Visible deals, of one team's or one rep's (by owner) when scoped."""
    sales = visible_sales(user)
    if scope.team_id:
        sales = of_team(sales, scope.team_id)
    if scope.rep_id:
        sales = of_owner(sales, scope.rep_id)
    return sales


def scoped_sales_of_own_reps(user, scope: AnalyticsScope = UNSCOPED) -> QuerySet:
    """Visible deals assigned within the user's reach: what a leaderboard of "my reps" ranks
    (a deal on a team's customer may be assigned to another team's rep, who is not theirs
    to rank). An admin's reach is everyone."""
    sales = scoped_sales(user, scope)
    if role_of(user) == Role.ADMIN:
        return sales
    return sales.filter(owned_by(user, "assigned_to"))


def scoped_customers(user, scope: AnalyticsScope = UNSCOPED) -> QuerySet:
    """Visible customers, of one team's or one rep's book (by owner) when scoped."""
    customers = visible_customers(user)
    if scope.team_id:
        customers = of_team(customers, scope.team_id, field="owner")
    if scope.rep_id:
        customers = of_owner(customers, scope.rep_id, field="owner")
    return customers
