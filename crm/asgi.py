"""The ASGI application: HTTP through Django, websockets (/ws/) through Channels, with the
session's user (AuthMiddlewareStack) and only from the site's own hosts (a page elsewhere
cannot open a socket with a signed-in user's cookie)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings")
# The web's statement timeout (crm/settings.py), as crm/wsgi.py sets it.
os.environ.setdefault(
    "STATEMENT_TIMEOUT_SECONDS", os.environ.get("WEB_STATEMENT_TIMEOUT_SECONDS", "5")
)
# A view runs in a thread of its own per request here: connections from a pool per process
# (crm/settings.py), not one kept per thread.
os.environ.setdefault("DATABASE_POOL_MAX_SIZE", "10")
django_asgi = get_asgi_application()  # before importing anything that touches models

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.urls import path  # noqa: E402

from crm.consumers import RealtimeConsumer  # noqa: E402

websocket_urls = [path("ws/", RealtimeConsumer.as_asgi())]

application = ProtocolTypeRouter(
    {
        "http": django_asgi,
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urls))),
    }
)
