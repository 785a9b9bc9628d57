"""Filters of the dashboards. The team and rep choices are what crm.permissions lets the
user see, so another team's id is refused as an invalid choice."""

from datetime import date

from django import forms

from analytics.dashboard import DEFAULT_PERIOD, PERIODS, DashboardFilters
from analytics.selectors.drilldown import DRILLDOWN_METRICS
from crm.forms import person_name
from crm.permissions import visible_teams
from crm.permissions.analytics import dashboard_reps
from crm.roles import Role, role_of
from sales.models import Sale

PERIOD_LABELS = {30: "Last 30 days", 90: "Last 90 days", 365: "Last 365 days"}


class DashboardFilterForm(forms.Form):
    period = forms.TypedChoiceField(
        choices=[(days, PERIOD_LABELS[days]) for days in PERIODS],
        coerce=int,
        required=False,
        empty_value=DEFAULT_PERIOD,
    )
    team = forms.TypedChoiceField(coerce=int, required=False, empty_value=None)
    rep = forms.TypedChoiceField(coerce=int, required=False, empty_value=None)

    def __init__(self, data, *, user):
        data = data.copy()  # the default period, so that the select shows what the page shows
        if not data.get("period"):
            data["period"] = str(DEFAULT_PERIOD)
        super().__init__(data)
        everyone = "Everyone" if role_of(user) == Role.ADMIN else "All my teams"
        self.fields["team"].choices = [("", everyone)] + [
            (team.pk, team.name) for team in visible_teams(user).only("pk", "name")
        ]
        self.fields["rep"].choices = [("", "All reps")] + [
            (person.pk, person_name(person)) for person in dashboard_reps(user)
        ]

    def filters(self) -> DashboardFilters:
        """The valid filters; an invalid one is left out (and its error shown)."""
        self.is_valid()
        cleaned = self.cleaned_data
        if self.errors:  # the selects show what the page shows instead of the refused value
            self.data = self.data.copy()
            for name in self.errors:
                self.data[name] = str(DEFAULT_PERIOD) if name == "period" else ""
        return DashboardFilters(
            period=cleaned.get("period") or DEFAULT_PERIOD,
            team_id=cleaned.get("team"),
            rep_id=cleaned.get("rep"),
        )

    def describe(self, filters: DashboardFilters) -> str:
        """The filters in words ("Last 90 days · Team North · All reps"), for print."""
        teams, reps = dict(self.fields["team"].choices), dict(self.fields["rep"].choices)
        return " · ".join([PERIOD_LABELS[filters.period],
                           str(teams.get(filters.team_id or "", "")),
                           str(reps.get(filters.rep_id or "", ""))])  # fmt: skip

    def ignored(self) -> list[str]:
        """What was asked for and left out, in words."""
        return [
            f"{self.fields[name].label or name.title()}: {' '.join(errors)}"
            for name, errors in self.errors.items()
        ]


class DrilldownForm(DashboardFilterForm):
    """Which deals a dashboard number counts (analytics.selectors.drilldown.metric_deals)."""

    metric = forms.ChoiceField(choices=list(DRILLDOWN_METRICS.items()))
    days = forms.TypedChoiceField(
        choices=[(days, days) for days in PERIODS], coerce=int, required=False, empty_value=None
    )
    # Years 1900-2999: a month near year 1 or 9999 has no start or end a datetime can hold.
    month = forms.RegexField(regex=r"^(19|2\d)\d{2}-(0[1-9]|1[0-2])$", required=False)
    currency = forms.RegexField(regex=r"^[A-Z]{3}$", required=False)
    status = forms.ChoiceField(choices=[("", "Any"), *Sale.Status.choices], required=False)
    owner = forms.IntegerField(required=False, min_value=1)

    def month_date(self) -> date | None:
        value = self.cleaned_data.get("month")
        if not value:
            return None
        year, month = (int(part) for part in value.split("-"))
        return date(year, month, 1)
