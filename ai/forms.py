from django import forms

from ai.models import ScoringPreference


class GradingSourceForm(forms.Form):
    grading_source = forms.ChoiceField(
        label="Score that grades leads and drives the workflows",
        choices=ScoringPreference.Source.choices,
    )


class ShareForm(forms.Form):
    document = forms.IntegerField(min_value=1, max_value=2**31 - 1)
