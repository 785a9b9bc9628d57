from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model

from crm.forms import label_users_by_name
from documents.models import Document, DocumentAccess, DocumentCategory


class MultipleFileInput(forms.FileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Several files under one name. A plain FileField gets the widget's list and refuses it
    as "no file was submitted"; this cleans each file and returns the list."""

    widget = MultipleFileInput

    def clean(self, data, initial=None):
        uploads = data if isinstance(data, list | tuple) else [data] if data else []
        if not uploads:
            raise forms.ValidationError("Choose at least one file.", code="required")
        clean_one = super().clean
        return [clean_one(upload, initial) for upload in uploads]


class UploadForm(forms.Form):
    files = MultipleFileField(
        widget=MultipleFileInput(attrs={"multiple": True}),
        label="Files",
        help_text="PDF, Word, Excel, PowerPoint, PNG, JPEG, text or CSV.",
    )
    title = forms.CharField(required=False, max_length=200, help_text="Blank: the file name.")
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    document_type = forms.ChoiceField(choices=Document.Type.choices, initial=Document.Type.OTHER)
    category = forms.ModelChoiceField(queryset=DocumentCategory.objects.none(), required=False)
    customer = forms.IntegerField(required=False, widget=forms.HiddenInput)
    sale = forms.IntegerField(required=False, widget=forms.HiddenInput)
    is_public = forms.BooleanField(required=False, label="Visible to everyone in the company")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["category"].queryset = DocumentCategory.objects.order_by("name")
        # Read when the form is made, not at import: tests and deployments change the limit.
        self.max_megabytes = f"{settings.DOCUMENT_MAX_BYTES / 1_048_576:g}"
        self.fields["files"].help_text += f" Up to {self.max_megabytes} MB each."

    def clean(self):
        """`document_types`: one type per file, in the files' order. The page sends each file
        with its own type; a form may also send one type for all the files, or one for each."""
        cleaned = super().clean()
        files = cleaned.get("files") or []
        types = self.data.getlist("document_type") if hasattr(self.data, "getlist") else []
        if len(types) <= 1:
            cleaned["document_types"] = [cleaned.get("document_type")] * len(files)
            return cleaned
        unknown = [kind for kind in types if kind not in Document.Type.values]
        if unknown:
            self.add_error("document_type", f"Select a valid choice. {unknown[0][:50]} is not "
                           "one of the available choices.")  # fmt: skip
        elif len(types) != len(files):
            self.add_error("document_type", "Choose one type for all the files, or one for each.")
        else:
            cleaned["document_types"] = types
        return cleaned


class VersionForm(forms.Form):
    file = forms.FileField(label="New version")


class ShareForm(forms.Form):
    allowed_users = forms.ModelMultipleChoiceField(
        queryset=get_user_model().objects.none(), required=False, label="Also visible to"
    )
    is_public = forms.BooleanField(required=False, label="Visible to everyone in the company")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["allowed_users"].queryset = (
            get_user_model()
            .objects.filter(is_active=True)
            .order_by("first_name", "last_name", "username")
        )
        label_users_by_name(self, "allowed_users")


class DocumentFilterForm(forms.Form):
    q = forms.CharField(required=False, max_length=100, label="Search (title and text)")
    document_type = forms.ChoiceField(
        choices=[("", "Any type"), *Document.Type.choices], required=False, label="Type"
    )
    category = forms.ModelChoiceField(queryset=DocumentCategory.objects.none(), required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["category"].queryset = DocumentCategory.objects.order_by("name")
        self.fields["category"].empty_label = "Any category"

    def filters(self) -> dict:
        self.is_valid()
        return {k: v for k, v in self.cleaned_data.items() if v not in ("", None)}


class AccessLogFilterForm(forms.Form):
    action = forms.ChoiceField(
        choices=[("", "Any action"), *DocumentAccess.Action.choices], required=False
    )
    user = forms.ModelChoiceField(queryset=get_user_model().objects.none(), required=False)
    since = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    ip = forms.GenericIPAddressField(required=False, label="IP address")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["user"].queryset = get_user_model().objects.order_by("username")
        self.fields["user"].empty_label = "Anyone"

    def filters(self) -> dict:
        self.is_valid()
        return {k: v for k, v in self.cleaned_data.items() if v not in ("", None)}
