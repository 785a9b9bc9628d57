from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from customers.managers import CustomerQuerySet


class Industry(models.TextChoices):
    SOFTWARE = "software", "Software"
    FINANCE = "finance", "Financial services"
    HEALTHCARE = "healthcare", "Healthcare"
    MANUFACTURING = "manufacturing", "Manufacturing"
    RETAIL = "retail", "Retail"
    EDUCATION = "education", "Education"
    GOVERNMENT = "government", "Government"
    MEDIA = "media", "Media"
    LOGISTICS = "logistics", "Logistics"
    ENERGY = "energy", "Energy"
    REAL_ESTATE = "real_estate", "Real estate"
    OTHER = "other", "Other"


class Region(models.TextChoices):
    NORTH_AMERICA = "north_america", "North America"
    LATAM = "latam", "Latin America"
    EMEA = "emea", "Europe, Middle East & Africa"
    APAC = "apac", "Asia-Pacific"


class BudgetRange(models.TextChoices):
    UNKNOWN = "", "Unknown"
    UNDER_10K = "under_10k", "Under 10k"
    FROM_10K = "10k_50k", "10k–50k"
    FROM_50K = "50k_250k", "50k–250k"
    OVER_250K = "over_250k", "Over 250k"


class PurchaseTimeline(models.TextChoices):
    UNKNOWN = "", "Unknown"
    IMMEDIATE = "immediate", "Within a month"
    QUARTER = "quarter", "This quarter"
    HALF_YEAR = "half_year", "Within 6 months"
    LATER = "later", "Later than 6 months"


class DecisionAuthority(models.TextChoices):
    UNKNOWN = "", "Unknown"
    DECISION_MAKER = "decision_maker", "Decision maker"
    INFLUENCER = "influencer", "Influencer"
    USER = "user", "End user"


class EmailConsent(models.TextChoices):
    """Whether a customer agreed to marketing email (customers.email_gate asks)."""

    GRANTED = "granted", "Granted"
    UNKNOWN = "unknown", "Unknown"
    WITHDRAWN = "withdrawn", "Withdrawn"


class ConsentSource(models.TextChoices):
    """Where the customer's consent state came from."""

    FORM = "form", "Customer form"
    IMPORT = "import", "CSV import"
    API = "api", "API"
    UNSUBSCRIBE = "unsubscribe", "Unsubscribe link"
    ADMIN = "admin", "Django admin"
    WEBHOOK = "webhook", "Provider event"


class Tag(models.Model):
    name = models.CharField(max_length=50)
    color = models.CharField(max_length=7, default="#64748b", help_text="Hex colour, e.g. #2563eb")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                Lower("name"),
                name="tag_name_ci_unique",
                violation_error_message="A tag with this name already exists.",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Customer(models.Model):
    class Source(models.TextChoices):
        WEB = "web", "Website"
        REFERRAL = "referral", "Referral"
        EVENT = "event", "Event"
        ADS = "ads", "Advertising"
        OUTBOUND = "outbound", "Outbound"
        PARTNER = "partner", "Partner"
        OTHER = "other", "Other"

    class LifecycleStage(models.TextChoices):
        LEAD = "lead", "Lead"
        PROSPECT = "prospect", "Prospect"
        CUSTOMER = "customer", "Customer"
        CHURNED = "churned", "Churned"

    class EngagementLevel(models.TextChoices):
        LOW = "LOW", "Low"
        MEDIUM = "MEDIUM", "Medium"
        HIGH = "HIGH", "High"
        VIP = "VIP", "VIP"

    name = models.CharField(max_length=200)
    email = models.EmailField(max_length=254)
    phone = models.CharField(max_length=40, blank=True)
    company = models.CharField(max_length=200, blank=True)
    industry = models.CharField(max_length=30, choices=Industry.choices, blank=True)
    company_size = models.PositiveIntegerField(
        null=True, blank=True, help_text="Number of employees"
    )
    annual_revenue = models.DecimalField(
        max_digits=16,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(0)],
    )
    region = models.CharField(max_length=30, choices=Region.choices, blank=True)
    address = models.TextField(blank=True)
    website = models.URLField(blank=True)
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.OTHER)
    lifecycle_stage = models.CharField(
        max_length=20, choices=LifecycleStage.choices, default=LifecycleStage.LEAD
    )
    engagement_level = models.CharField(
        max_length=10, choices=EngagementLevel.choices, default=EngagementLevel.MEDIUM
    )
    job_title = models.CharField(max_length=120, blank=True)
    decision_authority = models.CharField(
        max_length=20, choices=DecisionAuthority.choices, blank=True
    )
    budget_range = models.CharField(max_length=20, choices=BudgetRange.choices, blank=True)
    purchase_timeline = models.CharField(
        max_length=20, choices=PurchaseTimeline.choices, blank=True
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="owned_customers",
    )
    shared_with = models.ManyToManyField(
        settings.AUTH_USER_MODEL, related_name="shared_customers", blank=True
    )
    tags = models.ManyToManyField(Tag, related_name="customers", blank=True)
    notes = models.TextField(blank=True, help_text="Background that does not fit a field")
    last_contact_date = models.DateField(null=True, blank=True)
    unsubscribed_at = models.DateTimeField(null=True, blank=True)
    email_consent = models.CharField(
        "Email consent",
        max_length=10,
        choices=EmailConsent.choices,
        default=EmailConsent.UNKNOWN,
        # Also in the database: rows written by code that predates the column are unknown.
        db_default=EmailConsent.UNKNOWN,
        help_text="Marketing email needs granted consent (MARKETING_REQUIRES_CONSENT).",
    )
    email_consent_source = models.CharField(
        max_length=12, choices=ConsentSource.choices, blank=True, default="", db_default=""
    )
    email_consent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    objects = CustomerQuerySet.as_manager()

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(
                Lower("email"),
                name="customer_email_ci_unique",
                violation_error_message="A customer with this email already exists.",
            ),
            models.CheckConstraint(
                condition=models.Q(annual_revenue__isnull=True) | models.Q(annual_revenue__gte=0),
                name="customer_annual_revenue_not_negative",
            ),
        ]
        indexes = [
            # One index per list filter, each ending in the default sort for index-only paging.
            models.Index(fields=["owner", "name"], name="customer_owner_name_idx"),
            models.Index(fields=["lifecycle_stage", "name"], name="customer_stage_name_idx"),
            models.Index(fields=["engagement_level", "name"], name="customer_engage_name_idx"),
            models.Index(fields=["region", "name"], name="customer_region_name_idx"),
            models.Index(fields=["industry", "name"], name="customer_industry_name_idx"),
            models.Index(fields=["email_consent", "name"], name="customer_consent_name_idx"),
            models.Index(fields=["name", "id"], name="customer_name_id_idx"),
            models.Index(fields=["company"], name="customer_company_idx"),
            models.Index(fields=["-created_at"], name="customer_created_idx"),
            models.Index(fields=["updated_at", "id"], name="customer_updated_idx"),
            models.Index(fields=["last_contact_date"], name="customer_last_contact_idx"),
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs):
        # Emails compare case-insensitively; store them lower-case so lookups can use "=".
        self.email = (self.email or "").strip().lower()
        super().save(*args, **kwargs)


class CustomerNote(models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="note_entries")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    text = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["customer", "-created_at"])]

    def __str__(self) -> str:
        return f"Note on {self.customer_id} by {self.author_id}"


class CustomerImport(models.Model):
    """One CSV upload: kept so the column mapping step and the error report survive reloads."""

    class Status(models.TextChoices):
        MAPPING = "mapping", "Waiting for column mapping"
        QUEUED = "queued", "Importing"
        DONE = "done", "Imported"
        FAILED = "failed", "Failed"

    class DuplicateMode(models.TextChoices):
        UPDATE = "update", "Update the existing customer"
        SKIP = "skip", "Skip the row"

    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="customer_imports"
    )
    filename = models.CharField(max_length=255)
    # Imports uploaded before the file was kept in CustomerImportChunk pieces.
    content = models.TextField(blank=True, help_text="The decoded CSV text (older imports)")
    # db_default: code that predates the column (a rolling deploy) still creates imports.
    delimiter = models.CharField(
        max_length=1, blank=True, default="", db_default="", help_text="Found at upload"
    )
    headers = models.JSONField(default=list)
    row_count = models.PositiveIntegerField(default=0)
    column_mapping = models.JSONField(default=dict, blank=True)
    duplicate_mode = models.CharField(
        max_length=10, choices=DuplicateMode.choices, default=DuplicateMode.SKIP
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.MAPPING)
    created_count = models.PositiveIntegerField(default=0)
    updated_count = models.PositiveIntegerField(default=0)
    skipped_count = models.PositiveIntegerField(default=0)
    error_count = models.PositiveIntegerField(default=0)
    row_errors = models.JSONField(default=list, blank=True)
    processed_rows = models.PositiveIntegerField(default=0)
    failure_reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.filename} ({self.get_status_display()})"


class CustomerImportChunk(models.Model):
    """A piece of an import's file (about a million characters of the decoded text, cut
    anywhere): the file is stored and read back a piece at a time, so a 50 MB file never
    has to sit in a worker's or a web process's memory whole."""

    customer_import = models.ForeignKey(
        CustomerImport, on_delete=models.CASCADE, related_name="chunks"
    )
    position = models.PositiveIntegerField()
    text = models.TextField()

    class Meta:
        ordering = ["customer_import", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["customer_import", "position"], name="customer_import_chunk_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"Piece {self.position} of import {self.customer_import_id}"


class Suppression(models.Model):
    """An address no email may go to (customers.email_gate refuses it), whoever it belongs
    to: kept by address, so it outlives the customer and holds for a re-import."""

    class Reason(models.TextChoices):
        UNSUBSCRIBE = "unsubscribe", "Unsubscribed"
        BOUNCE = "bounce", "Bounced"
        SPAM = "spam", "Spam report"
        INVALID = "invalid", "Invalid address"
        DROPPED = "dropped", "Dropped by the provider"
        MANUAL = "manual", "Added by hand"

    class Source(models.TextChoices):
        """Where the suppression came from: one list, whichever provider reported it."""

        SENDGRID = "sendgrid", "SendGrid event"
        MAILGUN = "mailgun", "Mailgun event"
        MAILGUN_IMPORT = "mailgun_import", "Imported from Mailgun"
        UNSUBSCRIBE_LINK = "unsubscribe_link", "Unsubscribe link"
        ADMIN = "admin", "Added by hand"
        UNKNOWN = "", "Unknown (before sources were kept)"

    email = models.CharField(max_length=254)  # stored lower-cased
    reason = models.CharField(max_length=12, choices=Reason.choices)
    detail = models.CharField(max_length=500, blank=True)
    source = models.CharField(max_length=20, choices=Source.choices, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        # The table keeps the name it was created with in campaigns (moved by state only).
        db_table = "campaigns_suppression"
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["email"], name="suppression_email_unique")]
        indexes = [models.Index(fields=["source", "-created_at"], name="suppression_source_idx")]

    def __str__(self) -> str:
        return f"{self.email} ({self.reason})"


# The duplicates package keeps its models apart; Django finds them through this module.
from customers.duplicates.models import (  # noqa: E402, F401
    CustomerMerge,
    DuplicateJob,
    DuplicatePair,
)
