"""Documents: uploaded files with versions, categories, extracted text and an access log."""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from customers.models import Customer
from sales.models import Sale


def document_path(instance, filename: str) -> str:
    """A generated name: nothing of the uploader's file name reaches the file system."""
    today = timezone.now()
    extension = DocumentFile.EXTENSIONS.get(instance.mime_type, "bin")
    return f"documents/{today:%Y/%m}/{uuid.uuid4().hex}.{extension}"


class DocumentFile:
    """The file types we accept, decided from content (documents.filetypes)."""

    EXTENSIONS = {
        "application/pdf": "pdf",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation": "pptx",
        "image/png": "png",
        "image/jpeg": "jpg",
        "text/plain": "txt",
        "text/csv": "csv",
    }
    # Extensions a download may keep besides the one above: names for the same kind of file.
    # Anything else (evil.svg holding text, report.pdf.exe) is renamed to the one above.
    ALSO = {
        "image/jpeg": {"jpeg"},
        "text/plain": {"text", "csv", "tsv"},
        "text/csv": {"txt", "tsv"},
    }

    @classmethod
    def download_name(cls, original_name: str, mime_type: str) -> str:
        """The uploader's name with an extension that matches the detected type, so a file
        saved from a download opens as what it is."""
        extension = cls.EXTENSIONS.get(mime_type, "bin")
        stem, dot, current = original_name.rpartition(".")
        if dot and current.lower() in {extension} | cls.ALSO.get(mime_type, set()):
            return original_name
        return f"{stem if dot else original_name or 'document'}.{extension}"


class DocumentCategory(models.Model):
    name = models.CharField(max_length=100)
    parent = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="children"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "document categories"
        constraints = [
            models.UniqueConstraint(fields=["parent", "name"], name="category_name_per_parent"),
            models.CheckConstraint(
                condition=~Q(parent=models.F("id")), name="category_not_own_parent"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class DocumentQuerySet(models.QuerySet):
    def active(self) -> "DocumentQuerySet":
        """The newest version of each chain (what lists show)."""
        return self.filter(is_active=True)

    def with_related(self) -> "DocumentQuerySet":
        return self.select_related("uploaded_by", "customer", "sale", "category")

    def of_chain(self, chain_id: int) -> "DocumentQuerySet":
        """Every version of one document: the first (`chain_id`) and those made from it."""
        return self.filter(models.Q(pk=chain_id) | models.Q(parent_document_id=chain_id))


class Document(models.Model):
    class Type(models.TextChoices):
        CONTRACT = "contract", "Contract"
        PROPOSAL = "proposal", "Proposal"
        INVOICE = "invoice", "Invoice"
        PRESENTATION = "presentation", "Presentation"
        MARKETING = "marketing", "Marketing"
        LEGAL = "legal", "Legal"
        OTHER = "other", "Other"

    class Processing(models.TextChoices):
        PENDING = "pending", "Processing"
        DONE = "done", "Ready"
        FAILED = "failed", "Could not be processed"

    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    document_type = models.CharField(max_length=20, choices=Type.choices, default=Type.OTHER)
    category = models.ForeignKey(
        DocumentCategory, on_delete=models.SET_NULL, null=True, blank=True, related_name="documents"
    )
    file = models.FileField(upload_to=document_path, max_length=200)
    original_name = models.CharField(
        max_length=255
    )  # shown and offered on download, never used as a path
    file_size = models.PositiveBigIntegerField()
    mime_type = models.CharField(max_length=100)
    sha256 = models.CharField(max_length=64)
    customer = models.ForeignKey(
        Customer, on_delete=models.SET_NULL, null=True, blank=True, related_name="documents"
    )
    sale = models.ForeignKey(
        Sale, on_delete=models.SET_NULL, null=True, blank=True, related_name="documents"
    )
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="uploaded_documents"
    )
    uploaded_at = models.DateTimeField(default=timezone.now)
    # The newest version of a chain is the active one; the list shows only those.
    is_active = models.BooleanField(default=True)
    version = models.PositiveIntegerField(default=1)
    parent_document = models.ForeignKey(
        "self", on_delete=models.CASCADE, null=True, blank=True, related_name="versions"
    )
    is_public = models.BooleanField(default=False, help_text="Everyone in the company may see it.")
    allowed_users = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="shared_documents"
    )
    processing_status = models.CharField(
        max_length=10, choices=Processing.choices, default=Processing.PENDING
    )
    processing_error = models.TextField(blank=True)
    # What a reader should know about a processed file ("password-protected: no text
    # extracted"); blank when there is nothing to say.
    processing_note = models.CharField(max_length=200, blank=True)
    extracted_text = models.TextField(blank=True)
    preview_image = models.ImageField(upload_to="document_previews/%Y/%m/", blank=True)
    preview_text = models.TextField(blank=True)
    page_count = models.PositiveIntegerField(null=True, blank=True)

    objects = DocumentQuerySet.as_manager()

    class Meta:
        ordering = ["-uploaded_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["parent_document", "version"], name="document_version_once"
            ),
            models.UniqueConstraint(
                fields=["parent_document"],
                condition=Q(is_active=True),
                name="document_one_active_version",
            ),
        ]
        indexes = [
            models.Index(fields=["is_active", "-uploaded_at"], name="document_list_idx"),
            models.Index(fields=["sale", "document_type"], name="document_sale_type_idx"),
            models.Index(fields=["customer", "-uploaded_at"], name="document_customer_idx"),
            models.Index(fields=["uploaded_by", "-uploaded_at"], name="document_uploader_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.title} (v{self.version})"

    def get_absolute_url(self) -> str:
        return reverse("documents:detail", args=[self.pk])

    @property
    def chain_id(self) -> int:
        return self.parent_document_id or self.pk

    @property
    def download_name(self) -> str:
        return DocumentFile.download_name(self.original_name, self.mime_type)


class DocumentAccess(models.Model):
    class Action(models.TextChoices):
        VIEW = "view", "Viewed"
        DOWNLOAD = "download", "Downloaded"
        EDIT = "edit", "Edited"
        SHARE_OPEN = "share_open", "Opened a share link"

    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="accesses")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    action = models.CharField(max_length=12, choices=Action.choices)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    detail = models.CharField(max_length=255, blank=True)
    timestamp = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-timestamp", "-id"]
        verbose_name_plural = "document accesses"
        indexes = [
            models.Index(fields=["document", "-timestamp"], name="docaccess_document_idx"),
            models.Index(fields=["-timestamp"], name="docaccess_time_idx"),
            models.Index(fields=["user", "-timestamp"], name="docaccess_user_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.document_id}"
