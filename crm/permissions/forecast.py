"""The forecast's scopes: whose deals a user may forecast. A rep only their own; a manager
also each team they manage and all of them together; an admin every team and everyone.

A scope says which deals it counts (`deals_q`): by their owner (assigned_to), with team
membership as it is now. sales.forecasting reads the deals of a scope approved here.
"""

from dataclasses import dataclass, field

from django.db.models import Q

from crm.permissions.core import team_user_ids, visible_teams
from crm.permissions.scopes import ScopeOutOfReach
from crm.roles import Role, role_of

# ForecastSnapshot.Scope's values (sales sits above crm: not imported here).
REP, TEAM, ALL = "rep", "team", "all"


@dataclass(frozen=True)
class ForecastScope:
    """Whose deals: "me", a team (by id) or "all" (everyone for an admin, a manager's teams)."""

    key: str  # the filter's value: "me", "<team id>", "all"
    label: str
    kind: str  # ForecastSnapshot.Scope
    user_id: int | None = None
    team_id: int | None = None
    user_ids: tuple[int, ...] | None = None  # a manager's "all": themselves and their teams
    snapshot_keys: tuple[str, ...] = field(default_factory=tuple)

    def deals_q(self, prefix: str = "") -> Q:
        """Q over Sale (or over a model reaching it through `prefix`, e.g. "sale__")."""
        from crm.selectors import team_member_ids

        if self.kind == REP:
            return Q(**{f"{prefix}assigned_to": self.user_id})
        if self.kind == TEAM:
            return Q(**{f"{prefix}assigned_to__in": team_member_ids(self.team_id)})
        if self.user_ids is not None:
            return Q(**{f"{prefix}assigned_to__in": self.user_ids})
        return Q()


def forecast_scopes(user) -> list[ForecastScope]:
    """The scopes a user may pick, the widest last."""
    scopes = [
        ForecastScope(
            key="me",
            label="My deals",
            kind=REP,
            user_id=user.pk,
            snapshot_keys=(f"rep:{user.pk}",),
        )
    ]
    role = role_of(user)
    if role == Role.REP:
        return scopes
    for team in visible_teams(user).only("pk", "name"):
        scopes.append(
            ForecastScope(
                key=str(team.pk),
                label=f"Team: {team.name}",
                kind=TEAM,
                team_id=team.pk,
                snapshot_keys=(f"team:{team.pk}",),
            )
        )
    if role == Role.ADMIN:
        scopes.append(ForecastScope(key="all", label="Everyone", kind=ALL, snapshot_keys=("all",)))
    else:
        ids = tuple(team_user_ids(user))  # one query, kept on the user
        scopes.append(
            ForecastScope(
                key="all",
                label="All my teams",
                kind=ALL,
                user_ids=ids,
                # The sum of the reps' snapshots: exactly the owners this scope counts.
                snapshot_keys=tuple(f"rep:{pk}" for pk in ids),
            )
        )
    return scopes


def access_forecast_scope(
    user, scope, *, scopes: list[ForecastScope] | None = None
) -> ForecastScope:
    """The scope `scope` ("me", a team id, "all", or a ForecastScope) if the user may see it
    (`scopes`: forecast_scopes(user) when read already); ScopeOutOfReach otherwise (a rep
    asking for a team, a manager for a team they do not manage): a 404 in a request."""
    if isinstance(scope, ForecastScope):
        scope = scope.key
    wanted = str(scope)
    for candidate in scopes if scopes is not None else forecast_scopes(user):
        if candidate.key == wanted:
            return candidate
    raise ScopeOutOfReach("You cannot see the forecast of this scope.")
