import json

from django import forms

from integrations.models import Connection

SECRET_LABELS = {
    "access_token": "Private app access token",
    "consumer_key": "Consumer key (client id)",
    "consumer_secret": "Consumer secret",
    "username": "Username",
    "password": "Password",
    "security_token": "Security token",
}


class ConnectionForm(forms.ModelForm):
    """The connection's settings; its secrets are write-only fields (never rendered back:
    left blank on an edit, the stored ones stay)."""

    class Meta:
        model = Connection
        fields = [
            "name", "provider", "auth_flow", "domain", "conflict_policy", "is_enabled",
            "push_existing",
        ]  # fmt: skip
        help_texts = {
            "domain": "Salesforce only: login, test, or your My Domain (acme.my) for client "
            "credentials."
        }

    def __init__(self, *args, editing: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        for name, label in SECRET_LABELS.items():
            self.fields[name] = forms.CharField(
                label=label,
                required=False,
                strip=True,
                max_length=2000,
                widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
                help_text="Stored encrypted; leave blank to keep the current one."
                if editing
                else "",
            )
        if editing:
            self.fields["provider"].disabled = True

    def secrets(self) -> dict[str, str]:
        return {name: self.cleaned_data.get(name) or "" for name in SECRET_LABELS}

    def settings_data(self) -> dict:
        return {name: self.cleaned_data[name] for name in self.Meta.fields}


class JsonField(forms.CharField):
    widget = forms.Textarea(attrs={"rows": 12, "spellcheck": "false"})

    def prepare_value(self, value):
        return value if isinstance(value, str) else json.dumps(value, indent=2, sort_keys=True)

    def to_python(self, value):
        value = super().to_python(value)
        try:
            return json.loads(value or "{}")
        except ValueError as exc:
            raise forms.ValidationError(f"This is not valid JSON: {exc}") from exc


class MappingsForm(forms.Form):
    field_map = JsonField(
        label="Field mappings",
        max_length=20000,
        help_text="Per remote object, {remote property: CRM field}.",
    )
    stage_map = JsonField(
        label="Stage mappings",
        max_length=20000,
        help_text="{remote stage: CRM stage}; pushing uses the first remote stage of a CRM stage.",
    )


class ResolveForm(forms.Form):
    keep = forms.ChoiceField(
        choices=[("crm", "Keep the CRM's value"), ("remote", "Take the remote value")]
    )
