"""Narrowing what a user sees to one owner or one team: the filters the deal list, the
board, the dashboards and the home page offer. Each is applied to a queryset already
limited by crm.permissions (visible_sales, visible_customers) and, where the user picks the
owner or team, to a choice crm.permissions offered or approved (assignable users,
visible_teams, access_dashboard_scope); so a narrowing never widens what a user sees.

A record belongs to a team by its owner (`field`: a deal's assigned_to, a customer's
owner), with team membership as it is now.
"""

from django.db.models import QuerySet
from django.http import Http404

from crm.errors import PermissionDenied


class ScopeOutOfReach(PermissionDenied, Http404):
    """A team, person or forecast scope the user may not look at. Refused like a record out
    of reach: a 404 in a request (its existence is not revealed), a PermissionDenied to a
    caller."""


def of_owner(queryset: QuerySet, owner, *, field: str = "assigned_to") -> QuerySet:
    """The records of `owner` (a user or an id)."""
    return queryset.filter(**{field: owner})


def of_reach(queryset: QuerySet, user, *, field: str = "assigned_to") -> QuerySet:
    """The records of the user's reach: their own, and a manager's teams' (the home page's
    "my numbers", which for a manager are the team's)."""
    from crm.permissions.core import owned_by

    return queryset.filter(owned_by(user, field))


OTHER_TEAMS = "others"  # the owner filter's choice for outside_reach


def outside_reach(queryset: QuerySet, user, *, field: str = "assigned_to") -> QuerySet:
    """The visible records owned outside the user's reach: a team's customer's deal assigned
    to another team's rep (the board's "Other teams' reps")."""
    from crm.permissions.core import owned_by

    return queryset.exclude(owned_by(user, field)).exclude(**{f"{field}__isnull": True})


def of_team(queryset: QuerySet, team_id: int, *, field: str = "assigned_to") -> QuerySet:
    """The records owned by a member of the team (a subquery on its memberships)."""
    from crm.selectors import team_member_ids

    return queryset.filter(**{f"{field}__in": team_member_ids(team_id)})
