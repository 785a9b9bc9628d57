from django import forms
from django.conf import settings

from customers.duplicates.models import DuplicatePair
from customers.duplicates.selectors import Comparison
from customers.duplicates.services import BOTH


class QueueFilterForm(forms.Form):
    """The queue's query string; invalid values fall back to the defaults, never a 500."""

    status = forms.ChoiceField(choices=DuplicatePair.Status.choices, required=False)
    min_confidence = forms.IntegerField(
        required=False, min_value=0, max_value=100, label="Confidence at least"
    )

    def filters(self) -> dict:
        data = self.cleaned_data if self.is_valid() else {}
        return {
            "status": data.get("status") or DuplicatePair.Status.OPEN,
            "min_confidence": data.get("min_confidence") or 0,
        }


class MergeForm(forms.Form):
    """Which record survives and, for every field whose values differ, whose value stays."""

    survivor = forms.TypedChoiceField(coerce=int, widget=forms.RadioSelect, label="Keep record")

    def __init__(self, *args, comparison: Comparison, **kwargs):
        super().__init__(*args, **kwargs)
        a, b = comparison.a, comparison.b
        self.comparison = comparison
        self.fields["survivor"].choices = [(a.pk, f"#{a.pk} {a}"), (b.pk, f"#{b.pk} {b}")]
        self.fields["survivor"].initial = a.pk
        self.choice_fields = []
        for row in comparison.rows:
            if not row.differs:
                continue
            choices = [(str(a.pk), row.value_a or "(empty)"), (str(b.pk), row.value_b or "(empty)")]
            if row.name == "notes":
                choices.append((BOTH, "Both"))
            name = f"keep_{row.name}"
            self.fields[name] = forms.ChoiceField(
                choices=choices, widget=forms.RadioSelect, label=row.label, initial=str(row.default)
            )
            self.choice_fields.append((row, self[name]))

    def merge_kwargs(self) -> dict:
        a, b = self.comparison.a, self.comparison.b
        survivor = self.cleaned_data["survivor"]
        choices = {}
        for row, _ in self.choice_fields:
            picked = self.cleaned_data[f"keep_{row.name}"]
            choices[row.name] = picked if picked == BOTH else int(picked)
        return {
            "survivor_id": survivor,
            "other_id": b.pk if survivor == a.pk else a.pk,
            "choices": choices,
        }


class BulkMergeForm(forms.Form):
    min_confidence = forms.IntegerField(
        min_value=1,
        max_value=100,
        label="Merge every open pair with a confidence of at least",
        initial=lambda: settings.DUPLICATE_BULK_MIN_CONFIDENCE,
    )
