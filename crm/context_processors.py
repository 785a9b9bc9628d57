from crm.roles import Role, role_of


def role(request) -> dict:
    """The user's role for navigation; asked lazily so anonymous pages pay nothing."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    current = role_of(user)
    return {
        "user_role": current,
        "is_admin_role": current == Role.ADMIN,
        "is_manager_role": current in (Role.MANAGER, Role.ADMIN),
    }


def realtime(request) -> dict:
    """The websocket's address: REALTIME_URL when set (a separate websocket service, see
    crm/settings.py); else /ws/ for pages served by the ASGI application (crm.asgi), and none
    for a page served over WSGI (tests' live server), which loads its bell once instead of
    retrying a socket that never opens."""
    from django.conf import settings
    from django.core.handlers.asgi import ASGIRequest

    if settings.REALTIME_URL:
        return {"realtime_url": settings.REALTIME_URL}
    return {"realtime_url": "/ws/" if isinstance(request, ASGIRequest) else ""}
