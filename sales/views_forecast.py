"""The forecast page: a thin view over sales.forecasting.page."""

from django import forms
from django.shortcuts import render

from crm.http import is_htmx
from crm.permissions.forecast import ForecastScope, forecast_scopes
from sales.forecasting.page import forecast_page
from sales.forecasting.selectors import DEFAULT_PERIOD, PERIOD_CHOICES


class ForecastFilterForm(forms.Form):
    period = forms.ChoiceField(choices=PERIOD_CHOICES, required=False)
    scope = forms.ChoiceField(choices=(), required=False, label="Whose deals")

    def __init__(self, data, *, scopes: list[ForecastScope]):
        data = data.copy()  # the defaults, so that the selects show what the page shows
        # A manager or admin starts from the widest view they have (their teams, everyone).
        for name, default in (("period", DEFAULT_PERIOD), ("scope", scopes[-1].key)):
            if not data.get(name):
                data[name] = default
        super().__init__(data)
        self.fields["scope"].choices = [(scope.key, scope.label) for scope in scopes]

    def values(self) -> tuple[str, str]:
        """Period and scope; an invalid period falls back to the default (and its error is
        shown), an invalid scope is left for the view to refuse."""
        self.is_valid()
        period = self.cleaned_data.get("period") or DEFAULT_PERIOD
        scope = self.cleaned_data.get("scope") or self.data["scope"]
        return period, scope


def forecast(request):
    scopes = forecast_scopes(request.user)
    form = ForecastFilterForm(request.GET, scopes=scopes)
    period, scope = form.values()
    # A team the user does not manage, or a rep asking for more than their own deals,
    # answers 404 (crm.permissions.forecast).
    page = forecast_page(user=request.user, scope=scope, period=period, scopes=scopes)
    context = {**page, "form": form}
    template = "sales/partials/_forecast_body.html" if is_htmx(request) else "sales/forecast.html"
    return render(request, template, context)
