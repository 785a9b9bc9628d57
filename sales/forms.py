from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone

from crm.forms import label_users_by_name, person_name
from crm.permissions import (
    assignable_user_list,
    assignable_users,
    visible_customers,
    visible_teams,
)
from crm.permissions.scopes import OTHER_TEAMS
from crm.roles import Role, role_of
from customers.models import Customer
from customers.widgets import CustomerSearchSelect
from sales.currencies import CURRENCY_CHOICES
from sales.models import AutomationRule, Sale, SaleActivity, StageSetting, Task
from sales.selectors import SALE_SORTS

SORT_CHOICES = [(k, k) for k in SALE_SORTS] + [(f"-{k}", k) for k in SALE_SORTS]


class CloseAndAmountFilterFields(forms.Form):
    """The expected-close and amount ranges of the deal list and the board (read by
    sales.selectors.with_close_and_amount_filters)."""

    close_from = forms.DateField(
        required=False, label="Closing from", widget=forms.DateInput(attrs={"type": "date"})
    )
    close_to = forms.DateField(
        required=False, label="Closing to", widget=forms.DateInput(attrs={"type": "date"})
    )
    amount_min = forms.DecimalField(required=False, min_value=0, label="Min amount")
    amount_max = forms.DecimalField(required=False, min_value=0, label="Max amount")

    RANGE_FIELDS = ["close_from", "close_to", "amount_min", "amount_max"]


class SaleFilterForm(CloseAndAmountFilterFields):
    q = forms.CharField(required=False, max_length=100, label="Search")
    status = forms.ChoiceField(
        choices=[("", "Any stage"), ("open", "Open deals"), *Sale.Status.choices], required=False
    )
    owner = forms.ModelChoiceField(queryset=get_user_model().objects.none(), required=False)
    sort = forms.ChoiceField(choices=SORT_CHOICES, required=False)
    field_order = ["q", "status", "owner", *CloseAndAmountFilterFields.RANGE_FIELDS, "sort"]

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["owner"].queryset = assignable_users(user)
        self.fields["owner"].empty_label = "Any owner"
        label_users_by_name(self, "owner")

    def clean(self):
        cleaned = super().clean()
        low, high = cleaned.get("amount_min"), cleaned.get("amount_max")
        if low is not None and high is not None and low > high:
            self.add_error("amount_max", "The maximum is below the minimum; it was ignored.")
        start, end = cleaned.get("close_from"), cleaned.get("close_to")
        if start and end and start > end:
            self.add_error("close_to", "This date is before “Closing from”; it was ignored.")
        return cleaned

    def filters(self) -> dict:
        """Cleaned values of the fields that validated; the others are shown as errors."""
        self.is_valid()
        return {k: v for k, v in self.cleaned_data.items() if v not in ("", None)}


class CurrencyField(forms.ChoiceField):
    """An ISO 4217 code, in any case ("eur" is EUR); anything else ("dollars") an error."""

    def __init__(self, **kwargs):
        super().__init__(choices=CURRENCY_CHOICES, **kwargs)

    def to_python(self, value):
        return super().to_python(value).strip().upper()


class SaleForm(forms.ModelForm):
    currency = CurrencyField(help_text="ISO 4217 code of the deal's currency.")

    class Meta:
        model = Sale
        fields = [
            "title",
            "customer",
            "assigned_to",
            "amount",
            "currency",
            "status",
            "expected_close_date",
            "probability",
        ]
        widgets = {
            "expected_close_date": forms.DateInput(attrs={"type": "date"}),
            "customer": CustomerSearchSelect,
        }

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        customers = visible_customers(user)
        assignees = assignable_users(user)
        if self.instance.pk:
            # Keep the deal's current customer and assignee selectable even when they are
            # outside the editor's own choices; the service checks any change.
            customers = customers | Customer.objects.filter(pk=self.instance.customer_id)
            if self.instance.assigned_to_id:
                assignees = assignees | get_user_model().objects.filter(
                    pk=self.instance.assigned_to_id
                )
        self.fields["customer"].queryset = customers.order_by("name")
        self.fields["assigned_to"].queryset = assignees
        self.fields["assigned_to"].required = True
        self.fields["assigned_to"].empty_label = None
        label_users_by_name(self, "assigned_to")
        self.fields["amount"].required = True
        self.fields["currency"].initial = settings.DEFAULT_CURRENCY
        if self.instance.pk:
            # The stage changes only through "Change stage", which records the history.
            del self.fields["status"]
        else:
            self.fields["status"].choices = [
                (value, label)
                for value, label in Sale.Status.choices
                if value in Sale.OPEN_STATUSES
            ]
            self.initial.setdefault("assigned_to", user.pk)


class CustomerChoiceForm(forms.Form):
    """Pre-selects the customer when a deal is created from a customer page."""

    customer = forms.ModelChoiceField(queryset=Customer.objects.none(), required=False)

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["customer"].queryset = visible_customers(user)


class StageChangeForm(forms.Form):
    to_status = forms.ChoiceField(choices=Sale.Status.choices, label="New stage")
    closed_on = forms.DateField(
        required=False,
        label="Close date",
        help_text="Required for won and lost deals.",
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    lost_reason = forms.CharField(required=False, max_length=255, label="Why was it lost?")
    reason = forms.CharField(required=False, max_length=255, label="Note")

    def __init__(self, *args, sale: Sale, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["to_status"].choices = [
            (value, label) for value, label in Sale.Status.choices if value != sale.status
        ]
        self.initial.setdefault("closed_on", timezone.localdate())

    def clean(self):
        cleaned = super().clean()
        status = cleaned.get("to_status")
        if status in Sale.CLOSED_STATUSES and not cleaned.get("closed_on"):
            self.add_error("closed_on", "Give the date the deal closed.")
        if status == Sale.Status.LOST and not (cleaned.get("lost_reason") or "").strip():
            self.add_error("lost_reason", "Say why the deal was lost.")
        return cleaned


class ActivityForm(forms.ModelForm):
    class Meta:
        model = SaleActivity
        fields = ["kind", "text", "occurred_at"]
        widgets = {
            "text": forms.Textarea(attrs={"rows": 2}),
            "occurred_at": forms.DateTimeInput(attrs={"type": "datetime-local"}),
        }
        labels = {"kind": "Type", "occurred_at": "When"}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["occurred_at"].required = False


class TaskForm(forms.ModelForm):
    class Meta:
        model = Task
        fields = ["title", "description", "assigned_to", "priority", "due_at"]
        widgets = {
            "description": forms.Textarea(attrs={"rows": 2}),
            "due_at": forms.DateTimeInput(attrs={"type": "datetime-local"}),
        }
        labels = {"due_at": "Due"}

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["assigned_to"].queryset = assignable_users(user)
        self.fields["assigned_to"].empty_label = None
        label_users_by_name(self, "assigned_to")
        self.initial.setdefault("assigned_to", user.pk)


def _owner_choice(value: str) -> int | str:
    return value if value == OTHER_TEAMS else int(value)


class BoardFilterForm(CloseAndAmountFilterFields):
    owner = forms.TypedChoiceField(coerce=_owner_choice, required=False, empty_value=None)
    team = forms.TypedChoiceField(coerce=int, required=False, empty_value=None)
    field_order = ["owner", "team", *CloseAndAmountFilterFields.RANGE_FIELDS]

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        # Choices from lists read once (the owners without a query for managers and reps).
        # The board shows every visible deal, some assigned to other teams' reps (on this
        # team's customers): they are one choice, not a list of people outside the reach.
        self.fields["owner"].choices = [
            ("", "Any owner"),
            *((owner.pk, person_name(owner)) for owner in assignable_user_list(user)),
            *([(OTHER_TEAMS, "Reps of other teams")] if role_of(user) != Role.ADMIN else []),
        ]
        self.fields["team"].choices = [("", "Any team")] + [
            (team.pk, team.name) for team in visible_teams(user)
        ]

    def filters(self) -> dict:
        self.is_valid()
        return {k: v for k, v in self.cleaned_data.items() if v not in ("", None)}


class BoardMoveForm(forms.Form):
    sale = forms.IntegerField(min_value=1)
    from_status = forms.ChoiceField(choices=Sale.Status.choices)
    to_status = forms.ChoiceField(choices=Sale.Status.choices)
    closed_on = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    lost_reason = forms.CharField(required=False, max_length=255)


class StageSettingForm(forms.ModelForm):
    task_titles_text = forms.CharField(
        label="Tasks on entering",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="One task title per line; each is created once per deal, due in 2 days.",
    )

    class Meta:
        model = StageSetting
        fields = ["base_probability", "max_days_in_stage"]
        labels = {
            "base_probability": "Base win probability (%)",
            "max_days_in_stage": "Stale after (days in stage)",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["task_titles_text"].initial = "\n".join(self.instance.task_titles or [])

    def clean_task_titles_text(self) -> list[str]:
        titles = [line.strip() for line in self.cleaned_data["task_titles_text"].splitlines()]
        titles = [title for title in titles if title]
        if len(set(titles)) != len(titles):
            raise forms.ValidationError("Each task title may appear once.")
        if any(len(title) > 200 for title in titles):
            raise forms.ValidationError("Keep each task title under 200 characters.")
        return titles


class AutomationRuleForm(forms.ModelForm):
    class Meta:
        model = AutomationRule
        fields = ["from_status", "condition", "days", "to_status", "is_active"]

    def clean(self):
        cleaned = super().clean()
        from_status, to_status = cleaned.get("from_status"), cleaned.get("to_status")
        if to_status and to_status == from_status:
            self.add_error("to_status", "A rule must move the deal to another stage.")
        if cleaned.get("condition") == AutomationRule.Condition.NO_ACTIVITY and not cleaned.get(
            "days"
        ):
            self.add_error("days", "Give the number of quiet days (at least 1).")
        if cleaned.get("condition") == AutomationRule.Condition.CUSTOMER_REPLIED and not to_status:
            self.add_error("to_status", "Say where a deal goes when the customer replies.")
        return cleaned
