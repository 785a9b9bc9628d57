from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.core.cache import cache
from django.http import JsonResponse
from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from crm.selectors import health_check


@login_not_required
@require_GET
@never_cache
def healthz(request):
    report = health_check()
    return JsonResponse(report, status=503 if report["status"] == "down" else 200)


def _client_ip(request) -> str:
    return request.META.get("REMOTE_ADDR", "")


@method_decorator(login_not_required, name="dispatch")
class RateLimitedLoginView(auth_views.LoginView):
    """Django's login, refusing further attempts after repeated failures for a username+IP."""

    def _failure_key(self) -> str:
        username = (self.request.POST.get("username") or "").strip().lower()
        return f"login-failures:{_client_ip(self.request)}:{username}"

    def post(self, request, *args, **kwargs):
        if cache.get(self._failure_key(), 0) >= settings.LOGIN_FAILURE_LIMIT:
            form = self.get_form()
            form.errors.clear()
            form.add_error(
                None,
                "Too many failed sign-in attempts. Wait 15 minutes and try again.",
            )
            return self.render_to_response(self.get_context_data(form=form), status=429)
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form):
        key = self._failure_key()
        cache.add(key, 0, timeout=settings.LOGIN_FAILURE_WINDOW_SECONDS)
        cache.incr(key)
        return super().form_invalid(form)

    def form_valid(self, form):
        cache.delete(self._failure_key())
        return super().form_valid(form)
