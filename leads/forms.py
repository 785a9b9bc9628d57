from django import forms

from crm.errors import ValidationFailed
from crm.forms import person_name
from crm.permissions import assignable_user_list
from crm.roles import is_manager_or_admin
from customers.models import Customer
from leads.models import FACTOR_MAX, ActivityType, Factor, Grade
from leads.services.rules import Band, validate_bands


class LeadFilterForm(forms.Form):
    q = forms.CharField(required=False, max_length=100, label="Search")
    grade = forms.ChoiceField(choices=[("", "Any grade"), *Grade.choices], required=False)
    owner = forms.TypedChoiceField(coerce=int, required=False, empty_value=None)
    source = forms.ChoiceField(
        choices=[("", "Any source"), *Customer.Source.choices], required=False
    )
    score_min = forms.IntegerField(required=False, min_value=0, max_value=100, label="Score from")
    score_max = forms.IntegerField(required=False, min_value=0, max_value=100, label="Score to")

    def __init__(self, data=None, *args, user, hot_only: bool = False, **kwargs):
        if hot_only:
            # Hot leads: a rep's own; a manager's or admin's whole reach (their teams', or
            # everyone's). Presets only: the visitor may change them like any filter.
            data = data.copy()
            data.setdefault("grade", Grade.HOT)
            if not is_manager_or_admin(user):
                data.setdefault("owner", str(user.pk))
        super().__init__(data, *args, **kwargs)
        self.fields["owner"].choices = [("", "Any owner")] + [
            (owner.pk, person_name(owner)) for owner in assignable_user_list(user)
        ]

    def filters(self) -> dict:
        self.is_valid()
        return {k: v for k, v in self.cleaned_data.items() if v not in ("", None)}


class LeadActivityForm(forms.Form):
    activity_type = forms.ChoiceField(choices=ActivityType.choices, label="What happened")
    note = forms.CharField(required=False, max_length=500, label="Details")


BAND_ROWS = 6


def _keyed_choices() -> dict[str, list[tuple[str, str]]]:
    from customers.models import BudgetRange, DecisionAuthority, PurchaseTimeline

    def known(choices):
        return [(value, label) for value, label in choices if value]

    return {
        Factor.BUDGET: known(BudgetRange.choices),
        Factor.TIMELINE: known(PurchaseTimeline.choices),
        Factor.AUTHORITY: known(DecisionAuthority.choices),
        Factor.SOURCE_QUALITY: known(Customer.Source.choices),
        Factor.ENGAGEMENT: list(ActivityType.choices),
    }


class ScoringRulesForm(forms.Form):
    """The whole points table: one field per factor value, and rows of company size bands."""

    def __init__(self, *args, rules, **kwargs):
        super().__init__(*args, **kwargs)
        current = {(rule.factor, rule.key): rule.points for rule in rules}
        self.keyed_groups = []
        for factor, choices in _keyed_choices().items():
            names = []
            for key, label in choices:
                name = f"{factor}__{key}"
                self.fields[name] = forms.IntegerField(
                    label=label,
                    min_value=0,
                    max_value=FACTOR_MAX[factor],
                    initial=current.get((factor, key), 0),
                )
                names.append(name)
            self.keyed_groups.append((Factor(factor).label, FACTOR_MAX[factor], names))
        bands = [rule for rule in rules if rule.factor == Factor.COMPANY_SIZE]
        self.band_rows = []
        for index in range(BAND_ROWS):
            band = bands[index] if index < len(bands) else None
            row = []
            for part, label in (("min", "From"), ("max", "To"), ("points", "Points")):
                name = f"band_{index}_{part}"
                initial = None
                if band is not None:
                    initial = {"min": band.min_value, "max": band.max_value, "points": band.points}[
                        part
                    ]
                self.fields[name] = forms.IntegerField(
                    label=label, required=False, min_value=0, initial=initial
                )
                row.append(name)
            self.band_rows.append(row)

    def clean(self):
        cleaned = super().clean()
        bands = []
        for index, (low, high, points) in enumerate(self.band_rows, start=1):
            values = [cleaned.get(low), cleaned.get(high), cleaned.get(points)]
            if all(value is None for value in values):
                continue
            if values[0] is None or values[2] is None:
                raise forms.ValidationError(f"Band {index}: give at least “From” and “Points”.")
            bands.append(Band(min_value=values[0], max_value=values[1], points=values[2]))
        try:
            self.bands = validate_bands(bands)
        except ValidationFailed as error:
            raise forms.ValidationError(error.message) from error
        return cleaned

    def keyed_points(self) -> dict[tuple[str, str], int]:
        points = {}
        for _, _, names in self.keyed_groups:
            for name in names:
                factor, key = name.split("__", 1)
                points[(factor, key)] = self.cleaned_data[name]
        return points
