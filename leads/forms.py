from django import forms

from crm.forms import person_name
from crm.permissions import assignable_user_list
from customers.models import Customer
from leads.models import ActivityType, Grade


class LeadFilterForm(forms.Form):
    q = forms.CharField(required=False, max_length=100, label="Search")
    grade = forms.ChoiceField(choices=[("", "Any grade"), *Grade.choices], required=False)
    owner = forms.TypedChoiceField(coerce=int, required=False, empty_value=None)
    source = forms.ChoiceField(
        choices=[("", "Any source"), *Customer.Source.choices], required=False
    )
    score_min = forms.IntegerField(required=False, min_value=0, max_value=100, label="Score from")
    score_max = forms.IntegerField(required=False, min_value=0, max_value=100, label="Score to")

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["owner"].choices = [("", "Any owner")] + [
            (owner.pk, person_name(owner)) for owner in assignable_user_list(user)
        ]

    def filters(self) -> dict:
        self.is_valid()
        return {k: v for k, v in self.cleaned_data.items() if v not in ("", None)}


class LeadActivityForm(forms.Form):
    activity_type = forms.ChoiceField(choices=ActivityType.choices, label="What happened")
    note = forms.CharField(required=False, max_length=500, label="Details")
