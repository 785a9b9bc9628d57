from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.core.cache import cache
from django.http import JsonResponse
from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from crm.http import client_ip
from crm.selectors import health_check


@login_not_required
@require_GET
@never_cache
def healthz(request):
    report = health_check()
    return JsonResponse(report, status=503 if report["status"] == "down" else 200)


@method_decorator(login_not_required, name="dispatch")
class RateLimitedLoginView(auth_views.LoginView):
    """Django's login, refusing further attempts after repeated failures for a username and
    client address (the proxy's X-Forwarded-For when BEHIND_TLS_PROXY, so one user's bad
    guesses behind the proxy do not lock that username for everyone)."""

    def _failure_key(self) -> str:
        username = (self.request.POST.get("username") or "").strip().lower()
        return f"login-failures:{client_ip(self.request) or '-'}:{username}"

    def post(self, request, *args, **kwargs):
        # Count the attempt before checking the password, atomically (add, then incr): a
        # read-then-write let parallel guesses all see the count below the limit.
        key = self._failure_key()
        cache.add(key, 0, timeout=settings.LOGIN_FAILURE_WINDOW_SECONDS)
        if cache.incr(key) > settings.LOGIN_FAILURE_LIMIT:
            form = self.get_form()
            form.errors.clear()
            form.add_error(
                None,
                "Too many failed sign-in attempts. Wait 15 minutes and try again.",
            )
            return self.render_to_response(self.get_context_data(form=form), status=429)
        return super().post(request, *args, **kwargs)

    def form_valid(self, form):
        cache.delete(self._failure_key())
        return super().form_valid(form)
