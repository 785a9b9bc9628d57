from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.urls import include, path
from django.views.generic import RedirectView

from analytics import views as analytics_views
from campaigns import views_public as campaign_public
from crm import views
from documents import views as document_views
from leads import views_tracking

urlpatterns = [
    # Pages that do not link the icon (Django admin): browsers ask here.
    path(
        "favicon.ico",
        # The plain name, not static(): that needs the collected manifest at import time.
        login_not_required(
            RedirectView.as_view(url=f"{settings.STATIC_URL}favicon.svg", permanent=True)
        ),
    ),
    path("", analytics_views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("accounts/login/", views.RateLimitedLoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path(
        "accounts/password/",
        auth_views.PasswordChangeView.as_view(),
        name="password_change",
    ),
    path(
        "accounts/password/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
    path("notifications/", include("crm.urls_notifications")),
    path("customers/", include("customers.urls")),
    path("sales/", include("sales.urls")),
    path("leads/", include("leads.urls")),
    path("t/<str:token>/", views_tracking.track, name="track"),
    path("t/<str:token>/open.gif", views_tracking.track_open_pixel, name="track_pixel"),
    path("campaigns/", include("campaigns.urls")),
    path("documents/", include("documents.urls")),
    path("analytics/", include("analytics.urls")),
    path("search/", include("search.urls")),
    path("ai/", include("ai.urls")),
    path("integrations/", include("integrations.urls")),
    path("d/<str:token>/", document_views.document_share_open, name="document_share_open"),
    path("webhooks/sendgrid/", campaign_public.sendgrid_webhook, name="sendgrid_webhook"),
    path("webhooks/mailgun/", campaign_public.mailgun_webhook, name="mailgun_webhook"),
    path("u/<str:token>/", campaign_public.unsubscribe, name="unsubscribe"),
    path("api/", include("api.urls")),
    path("admin/", admin.site.urls),
]
