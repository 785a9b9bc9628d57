from django import forms
from django.contrib.auth import get_user_model
from django.core.exceptions import NON_FIELD_ERRORS

from crm.forms import label_users_by_name, person_name
from crm.permissions import assignable_user_list, assignable_users
from crm.reactions import Question, ask
from customers.csv_import import IMPORTABLE_FIELDS, JOINED_FIELDS
from customers.csv_import.headers import mapping_columns
from customers.models import Customer, CustomerImport, EmailConsent, Industry, Region, Tag
from customers.selectors import CUSTOMER_SORTS

DUPLICATE_EMAIL = "A customer with this email already exists."
SORT_CHOICES = [(key, key) for key in CUSTOMER_SORTS] + [(f"-{key}", key) for key in CUSTOMER_SORTS]


class CustomerFilterForm(forms.Form):
    """The list's query string; invalid values are dropped, never a 500."""

    q = forms.CharField(required=False, max_length=100, label="Search")
    owner = forms.TypedChoiceField(coerce=int, required=False, empty_value=None)
    lifecycle_stage = forms.ChoiceField(
        choices=[("", "Any stage"), *Customer.LifecycleStage.choices], required=False
    )
    engagement_level = forms.ChoiceField(
        choices=[("", "Any engagement"), *Customer.EngagementLevel.choices], required=False
    )
    region = forms.ChoiceField(choices=[("", "Any region"), *Region.choices], required=False)
    industry = forms.ChoiceField(choices=[("", "Any industry"), *Industry.choices], required=False)
    tag = forms.TypedChoiceField(coerce=int, required=False, empty_value=None)
    email_consent = forms.ChoiceField(
        choices=[("", "Any consent"), *EmailConsent.choices], required=False, label="Consent"
    )
    sort = forms.ChoiceField(choices=SORT_CHOICES, required=False)

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        # Read once: the owner filter and the bulk-assign menu both offer these users.
        self.owners = assignable_user_list(user)
        self.fields["owner"].choices = [("", "Any owner")] + [
            (owner.pk, person_name(owner)) for owner in self.owners
        ]
        # Choices instead of a ModelChoiceField: validating a tag then costs no query.
        self.fields["tag"].choices = [("", "Any tag")] + list(
            Tag.objects.order_by("name").values_list("pk", "name")
        )

    def filters(self) -> dict:
        """Cleaned values of the fields that validated."""
        self.is_valid()
        return {key: value for key, value in self.cleaned_data.items() if value not in ("", None)}


class CustomerForm(forms.ModelForm):
    class Meta:
        model = Customer
        fields = [
            "name",
            "email",
            "phone",
            "company",
            "website",
            "industry",
            "company_size",
            "annual_revenue",
            "region",
            "address",
            "source",
            "lifecycle_stage",
            "engagement_level",
            "job_title",
            "decision_authority",
            "budget_range",
            "purchase_timeline",
            "owner",
            "tags",
            "shared_with",
            "last_contact_date",
            "email_consent",
            "notes",
        ]
        widgets = {
            "address": forms.Textarea(attrs={"rows": 2}),
            "notes": forms.Textarea(attrs={"rows": 3}),
            "last_contact_date": forms.DateInput(attrs={"type": "date"}),
            "tags": forms.CheckboxSelectMultiple,
        }

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        owners = assignable_users(user)
        if self.instance.pk and self.instance.owner_id:
            # The current owner stays selectable; the service checks any change.
            owners = owners | get_user_model().objects.filter(pk=self.instance.owner_id)
        self.fields["owner"].queryset = owners
        self.fields["owner"].required = True
        if not self.instance.pk:
            self.initial.setdefault("owner", user.pk)
        self.fields["shared_with"].queryset = (
            get_user_model()
            .objects.filter(is_active=True)
            .order_by("first_name", "last_name", "username")
        )
        self.fields["shared_with"].help_text = "These users can see this customer."
        self.fields["owner"].empty_label = None
        label_users_by_name(self, "owner", "shared_with")
        # Not sent (an older form, a script): the consent stays as it is.
        self.fields["email_consent"].required = False

    def clean_email_consent(self):
        return self.cleaned_data["email_consent"] or self.instance.email_consent

    def clean_email(self):
        return self.cleaned_data["email"].strip().lower()

    def _post_clean(self):
        super()._post_clean()
        # The case-insensitive email constraint is an expression, so Django files its error
        # under the whole form; show it next to the email field where the user looks.
        non_field = self._errors.get(NON_FIELD_ERRORS) if self._errors else None
        if non_field and DUPLICATE_EMAIL in non_field:
            others = [e for e in non_field.as_data() if DUPLICATE_EMAIL not in e.messages]
            if others:
                self._errors[NON_FIELD_ERRORS] = self.error_class(others, error_class="nonfield")
            else:
                del self._errors[NON_FIELD_ERRORS]
            if "email" not in self._errors:
                self.add_error("email", DUPLICATE_EMAIL)

    def service_kwargs(self) -> dict:
        data = {
            key: value
            for key, value in self.cleaned_data.items()
            if key not in ("tags", "shared_with")
        }
        return {
            "data": data,
            "tags": list(self.cleaned_data["tags"]),
            "shared_with": list(self.cleaned_data["shared_with"]),
        }


class NoteForm(forms.Form):
    text = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=5000)


class IdListField(forms.Field):
    """A list of record ids from repeated form values (checkboxes)."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value):
        try:
            return [int(item) for item in value or []]
        except (TypeError, ValueError) as exc:
            raise forms.ValidationError("The selection is not valid.") from exc

    def validate(self, value):
        if not value:
            raise forms.ValidationError("Select at least one customer.")


class BulkAssignForm(forms.Form):
    customer_ids = IdListField()
    owner = forms.ModelChoiceField(queryset=get_user_model().objects.none())

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["owner"].queryset = assignable_users(user)
        label_users_by_name(self, "owner")


class ImportUploadForm(forms.Form):
    file = forms.FileField(
        label="CSV file",
        help_text="Comma-, semicolon- or tab-separated, with a header row.",
    )
    duplicate_mode = forms.ChoiceField(
        choices=CustomerImport.DuplicateMode.choices,
        initial=CustomerImport.DuplicateMode.SKIP,
        widget=forms.RadioSelect,
        label="When a customer with the same email exists",
    )


class ImportMappingForm(forms.Form):
    """Which column goes to which field. Name and Address can join several columns, in the
    order chosen (first name, then last name): map_name, map_name_2, map_name_3."""

    duplicate_mode = forms.ChoiceField(
        choices=CustomerImport.DuplicateMode.choices,
        widget=forms.RadioSelect,
        label="When a customer with the same email exists",
    )

    def __init__(self, *args, customer_import: CustomerImport, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.customer_import = customer_import
        sequences = ask(Question.IMPORT_SEQUENCES, {}, user=user) if user else {}
        if sequences:
            # Off by default: an import never starts an email unless asked to here.
            self.fields["enrol_sequence"] = forms.ChoiceField(
                choices=[("", "Do not enrol anyone")] + list(sequences.items()),
                required=False,
                label="Enrol the new leads in an email sequence",
                help_text="Only new leads who may get marketing email (consent, not "
                "suppressed) are enrolled.",
            )
        column_choices = [("", "— do not import —")] + [
            (str(i), header or f"Column {i + 1}")
            for i, header in enumerate(customer_import.headers)
        ]
        for field, label in IMPORTABLE_FIELDS.items():
            current = customer_import.column_mapping.get(field)
            columns = [] if current is None else mapping_columns(current)
            for part, name in enumerate(self._part_names(field)):
                self.fields[name] = forms.ChoiceField(
                    choices=column_choices,
                    required=False,
                    label=label if part == 0 else f"{label.split(' (')[0]}, then",
                    initial=str(columns[part]) if part < len(columns) else "",
                )
        self.initial.setdefault("duplicate_mode", customer_import.duplicate_mode)

    @staticmethod
    def _part_names(field: str) -> list[str]:
        parts = JOINED_FIELDS[field][1] if field in JOINED_FIELDS else 1
        return [f"map_{field}"] + [f"map_{field}_{part}" for part in range(2, parts + 1)]

    def mapping_fields(self):
        return [self[f"map_{field}"] for field in IMPORTABLE_FIELDS]

    def mapping_groups(self):
        """[(bound field, [bound fields of its further columns])] for the page."""
        return [
            (self[names[0]], [self[name] for name in names[1:]])
            for field in IMPORTABLE_FIELDS
            for names in [self._part_names(field)]
        ]

    def mapping(self) -> dict[str, int | list[int]]:
        mapping: dict[str, int | list[int]] = {}
        for field in IMPORTABLE_FIELDS:
            columns = [
                int(self.cleaned_data[name])
                for name in self._part_names(field)
                if self.cleaned_data.get(name) not in ("", None)
            ]
            if len(columns) == 1:
                mapping[field] = columns[0]
            elif columns:
                mapping[field] = columns
        return mapping
