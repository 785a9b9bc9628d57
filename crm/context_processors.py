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
    """The websocket's address for pages served by the ASGI application (crm.asgi); a page
    served over WSGI (crm.wsgi: gunicorn's gthread workers, tests' live server) cannot open
    one, so it loads its bell once instead of retrying a socket that never opens."""
    from django.core.handlers.asgi import ASGIRequest

    return {"realtime_url": "/ws/" if isinstance(request, ASGIRequest) else ""}
