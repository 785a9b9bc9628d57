"""The three roles are Django groups; these helpers read a user's role once per request."""

from enum import StrEnum

REP_GROUP = "Sales rep"
MANAGER_GROUP = "Sales manager"
ADMIN_GROUP = "Admin"
ALL_GROUPS = (REP_GROUP, MANAGER_GROUP, ADMIN_GROUP)


class Role(StrEnum):
    REP = "rep"
    MANAGER = "manager"
    ADMIN = "admin"


def role_of(user) -> Role:
    """The user's strongest role; cached on the user object so each request asks once."""
    cached = getattr(user, "_crm_role", None)
    if cached is not None:
        return cached
    if user.is_superuser:
        role = Role.ADMIN
    else:
        groups = set(user.groups.values_list("name", flat=True))
        if ADMIN_GROUP in groups:
            role = Role.ADMIN
        elif MANAGER_GROUP in groups:
            role = Role.MANAGER
        else:
            role = Role.REP
    user._crm_role = role
    return role


def is_admin(user) -> bool:
    return role_of(user) == Role.ADMIN


def is_manager_or_admin(user) -> bool:
    return role_of(user) in (Role.MANAGER, Role.ADMIN)
