"""The OpenAPI schema and its two readers, served from our own static files
(drf-spectacular-sidecar, no CDN) under the site's Content-Security-Policy."""

from csp.decorators import csp_update
from django.contrib.auth.decorators import login_not_required
from django.utils.decorators import method_decorator
from drf_spectacular.views import (
    SpectacularAPIView,
    SpectacularRedocView,
    SpectacularSwaggerSplitView,
)


class SchemaView(SpectacularAPIView):
    """The schema (JSON with ?format=json); for a signed-in user or a token (401 otherwise)."""

    @classmethod
    def as_view(cls, *args, **kwargs):
        return login_not_required(super().as_view(*args, **kwargs))


class SwaggerView(SpectacularSwaggerSplitView):
    """Swagger UI; its start-up script is a separate request (`?script`), so the page needs
    no inline script and the site's policy stays as it is."""


# Redoc renders the schema in a web worker it starts from a blob: URL.
@method_decorator(csp_update({"worker-src": ["'self'", "blob:"]}), name="dispatch")
class RedocView(SpectacularRedocView):
    template_name = "api/redoc.html"  # drf-spectacular's loads Google's web fonts
