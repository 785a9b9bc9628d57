from django import forms
from django.conf import settings

from campaigns.models import (
    CustomerSegment,
    EmailCampaign,
    EmailTemplate,
    LeadEmailSettings,
    Sequence,
)
from campaigns.segments import CHOICE_KEYS
from campaigns.sending.provider import LABELS, configured_providers, provider_name
from campaigns.templating import VARIABLES
from crm.permissions import assignable_users
from crm.permissions.campaigns import visible_segments, visible_sequences, visible_templates
from customers.models import Customer, EmailConsent, Industry, Region, Tag
from leads.models import Grade


class TemplateForm(forms.ModelForm):
    class Meta:
        model = EmailTemplate
        fields = ["name", "category", "subject", "html_body", "text_body", "is_active"]
        widgets = {
            "html_body": forms.Textarea(attrs={"rows": 12, "class": "code"}),
            "text_body": forms.Textarea(attrs={"rows": 8, "class": "code"}),
        }
        help_texts = {
            "html_body": "Variables: "
            + ", ".join(f"{{{{ {name} }}}}" for name in VARIABLES)
            + '. A fallback: {{ first_name|default:"there" }}.',
        }


class PreviewForm(forms.Form):
    customer = forms.ModelChoiceField(queryset=Customer.objects.none(), required=True)

    def __init__(self, *args, customers, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["customer"].queryset = customers
        self.fields["customer"].empty_label = None  # the first one is what the preview shows
        self.fields["customer"].label_from_instance = lambda c: f"{c.name} <{c.email}>"


class SegmentForm(forms.Form):
    """The segment builder: every criterion a field; empty fields mean “any”."""

    name = forms.CharField(max_length=120)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    engagement_level = forms.MultipleChoiceField(
        choices=Customer.EngagementLevel.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    lifecycle_stage = forms.MultipleChoiceField(
        choices=Customer.LifecycleStage.choices, required=False, widget=forms.CheckboxSelectMultiple
    )
    region = forms.MultipleChoiceField(choices=Region.choices, required=False)
    industry = forms.MultipleChoiceField(choices=Industry.choices, required=False)
    grade = forms.MultipleChoiceField(
        label="Lead grade",
        choices=Grade.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    email_consent = forms.MultipleChoiceField(
        label="Email consent",
        choices=EmailConsent.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    score_min = forms.IntegerField(
        label="Lead score from", required=False, min_value=0, max_value=100
    )
    score_max = forms.IntegerField(
        label="Lead score to", required=False, min_value=0, max_value=100
    )
    last_contact_within_days = forms.IntegerField(
        label="Contacted within (days)", required=False, min_value=0
    )
    last_contact_not_within_days = forms.IntegerField(
        label="Not contacted within (days)", required=False, min_value=0
    )
    company_size_min = forms.IntegerField(label="Company size from", required=False, min_value=0)
    company_size_max = forms.IntegerField(label="Company size to", required=False, min_value=0)
    tags = forms.ModelMultipleChoiceField(queryset=Tag.objects.order_by("name"), required=False)
    owner = forms.ModelMultipleChoiceField(queryset=None, required=False)

    CRITERIA_FIELDS = [
        *CHOICE_KEYS,
        "score_min",
        "score_max",
        "last_contact_within_days",
        "last_contact_not_within_days",
        "company_size_min",
        "company_size_max",
        "tags",
        "owner",
    ]

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["owner"].queryset = assignable_users(user)
        self.fields["owner"].label_from_instance = lambda u: u.get_full_name() or u.username

    @classmethod
    def initial_from(cls, segment: CustomerSegment) -> dict:
        return {"name": segment.name, "description": segment.description, **segment.criteria}

    def criteria(self) -> dict:
        data = self.cleaned_data
        criteria = {}
        for key in self.CRITERIA_FIELDS:
            value = data.get(key)
            if key in ("tags", "owner"):
                value = [item.pk for item in value or []]
            if value not in (None, "", []):
                criteria[key] = value
        return criteria


class ProviderChoice:
    """The `provider` field of a campaign or sequence: offered only when more than one
    provider is configured (SendGrid and Mailgun); otherwise the default sends it all."""

    def provider_field_setup(self) -> None:
        configured = configured_providers()
        if len(configured) < 2:
            del self.fields["provider"]
            return
        field = self.fields["provider"]
        field.choices = [("", f"Default ({LABELS[provider_name()]})")] + [
            (name, LABELS[name]) for name in configured
        ]
        field.required = False
        field.label = "Email provider"


class CampaignForm(ProviderChoice, forms.ModelForm):
    class Meta:
        model = EmailCampaign
        fields = ["name", "campaign_type", "template", "segment", "subject", "provider"]

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.provider_field_setup()
        self.fields["template"].queryset = visible_templates(user).filter(is_active=True)
        self.fields["segment"].queryset = visible_segments(user).order_by("name")


class ScheduleForm(forms.Form):
    WHEN = [("at", "Once, at a date and time"), ("cron", "Repeatedly, on a cron schedule")]

    when = forms.ChoiceField(choices=WHEN, widget=forms.RadioSelect, initial="at")
    send_at = forms.DateTimeField(
        label="Send at",
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        help_text=f"In the server's time zone ({settings.TIME_ZONE}).",
    )
    cron = forms.CharField(
        label="Cron expression",
        required=False,
        max_length=100,
        help_text="minute hour day month weekday, e.g. “0 9 * * 1” = Mondays 09:00.",
    )

    def clean(self):
        data = super().clean()
        if data.get("when") == "at" and not data.get("send_at"):
            self.add_error("send_at", "Give the date and time to send.")
        if data.get("when") == "cron" and not data.get("cron"):
            self.add_error("cron", "Give a cron expression.")
        return data


# Sequences --------------------------------------------------------------------------------


class SequenceForm(ProviderChoice, forms.ModelForm):
    class Meta:
        model = Sequence
        fields = ["name", "description", "is_active", "window_start", "window_end",
                  "stop_at_grade", "provider"]  # fmt: skip
        widgets = {
            "description": forms.Textarea(attrs={"rows": 2}),
            "window_start": forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
            "window_end": forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
        }
        labels = {"stop_at_grade": "Stop when the lead turns"}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.provider_field_setup()

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("window_start"), cleaned.get("window_end")
        if start and end and start >= end:
            self.add_error("window_end", "The send window must end after it starts.")
        return cleaned


class StepForm(forms.Form):
    template = forms.ModelChoiceField(queryset=EmailTemplate.objects.none())
    delay_days = forms.IntegerField(
        min_value=0, max_value=365, initial=3, label="Days after the previous step"
    )

    def __init__(self, *args, templates=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["template"].queryset = (
            templates if templates is not None else (EmailTemplate.objects.none())
        )


StepFormSet = forms.formset_factory(
    StepForm, extra=1, can_delete=True, max_num=20, validate_max=True, min_num=1,
    validate_min=True,
)  # fmt: skip


class EnrolForm(forms.Form):
    sequence = forms.ModelChoiceField(queryset=Sequence.objects.none(), empty_label=None)

    def __init__(self, *args, sequences, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["sequence"].queryset = sequences


class SegmentEnrolForm(forms.Form):
    segment = forms.ModelChoiceField(
        queryset=CustomerSegment.objects.none(), empty_label="Choose a segment"
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["segment"].queryset = visible_segments(user).order_by("name")


class LeadEmailSettingsForm(forms.ModelForm):
    class Meta:
        model = LeadEmailSettings
        fields = ["cold_sequence", "warm_template", "hot_template", "send_automatically"]

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["cold_sequence"].queryset = visible_sequences(user).order_by("name")
        templates = visible_templates(user).filter(is_active=True).order_by("name")
        self.fields["warm_template"].queryset = templates
        self.fields["hot_template"].queryset = templates
