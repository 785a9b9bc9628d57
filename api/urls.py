from django.contrib.auth.decorators import login_required
from django.urls import include, path, re_path
from rest_framework.routers import SimpleRouter

from api import campaigns, customers, docs, documents, leads, people, sales, stats, tokens
from api.errors import json_not_found

app_name = "api"

router = SimpleRouter(trailing_slash=True)
router.register("customers", customers.CustomerViewSet, basename="customer")
router.register("notes", customers.NoteViewSet, basename="note")
router.register("leads", leads.LeadViewSet, basename="lead")
router.register("lead-activities", leads.LeadActivityViewSet, basename="lead-activity")
router.register("deals", sales.DealViewSet, basename="deal")
router.register("deal-activities", sales.DealActivityViewSet, basename="deal-activity")
router.register("tasks", sales.TaskViewSet, basename="task")
router.register("documents", documents.DocumentViewSet, basename="document")
router.register("teams", people.TeamViewSet, basename="team")
router.register("users", people.UserViewSet, basename="user")
router.register("campaigns", campaigns.CampaignViewSet, basename="campaign")

v1 = [
    path("auth/token/", tokens.TokenView.as_view(), name="token"),
    path("quick-stats/", stats.QuickStatsView.as_view(), name="quick_stats"),
    *router.urls,
]

urlpatterns = [
    path("v1/", include(v1)),
    path("schema/", docs.SchemaView.as_view(), name="schema"),
    # The docs are pages for people: a browser without a session goes to the login page.
    path("docs/", login_required(docs.SwaggerView.as_view(url_name="api:schema")), name="docs"),
    path(
        "docs/redoc/",
        login_required(docs.RedocView.as_view(url_name="api:schema")),
        name="redoc",
    ),
    path("tokens/", tokens.tokens_page, name="tokens"),
    path("tokens/<int:pk>/revoke/", tokens.token_revoke, name="token_revoke"),
    # [\s\S]: any character, a newline too (".*" let "/api/v1/x\n/" fall through to HTML).
    re_path(r"^[\s\S]*$", json_not_found, name="not_found"),
]
