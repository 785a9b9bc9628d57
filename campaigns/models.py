"""Email marketing: templates, segments, campaigns, one message per recipient, provider
events, and the local outbox used when no SendGrid key is configured. Suppressions live in
customers, beside the email gate."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.urls import reverse
from django.utils import timezone

from campaigns.managers import CampaignRunQuerySet
from customers.models import Customer


class EmailTemplate(models.Model):
    class Category(models.TextChoices):
        NEWSLETTER = "newsletter", "Newsletter"
        PROMOTION = "promotion", "Promotion"
        ONBOARDING = "onboarding", "Onboarding"
        NURTURE = "nurture", "Nurture"
        EVENT = "event", "Event invitation"
        FOLLOW_UP = "follow_up", "Follow-up"
        OTHER = "other", "Other"

    name = models.CharField(max_length=120)
    category = models.CharField(max_length=20, choices=Category.choices, default=Category.OTHER)
    subject = models.CharField(max_length=200)
    html_body = models.TextField()
    text_body = models.TextField()
    # The variables the bodies and subject use, found when the template is saved.
    variables = models.JSONField(default=list, blank=True)
    is_active = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(Lower("name"), name="emailtemplate_name_unique"),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("campaigns:template_edit", args=[self.pk])


class CustomerSegment(models.Model):
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    criteria = models.JSONField(default=dict, blank=True)
    customer_count = models.PositiveIntegerField(null=True, blank=True)
    last_updated = models.DateTimeField(null=True, blank=True)  # when customer_count was counted
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(Lower("name"), name="customersegment_name_unique"),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("campaigns:segment_edit", args=[self.pk])


class EmailCampaign(models.Model):
    class Type(models.TextChoices):
        NEWSLETTER = "newsletter", "Newsletter"
        PROMOTIONAL = "promotional", "Promotional"
        ANNOUNCEMENT = "announcement", "Announcement"
        NURTURE = "nurture", "Nurture"
        EVENT = "event", "Event"
        FOLLOW_UP = "follow_up", "Follow-up"

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        SCHEDULED = "scheduled", "Scheduled"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        PAUSED = "paused", "Paused"
        CANCELLED = "cancelled", "Cancelled"

    name = models.CharField(max_length=150)
    campaign_type = models.CharField(max_length=20, choices=Type.choices, default=Type.NEWSLETTER)
    template = models.ForeignKey(EmailTemplate, on_delete=models.PROTECT, related_name="campaigns")
    subject = models.CharField(max_length=200, blank=True, help_text="Blank: the template's.")
    segment = models.ForeignKey(CustomerSegment, on_delete=models.PROTECT, related_name="campaigns")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.DRAFT)
    scheduled_send_time = models.DateTimeField(null=True, blank=True)
    cron_expression = models.CharField(max_length=100, blank=True)
    periodic_task = models.OneToOneField(
        "django_celery_beat.PeriodicTask",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="email_campaigns"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    # Counters over every run, recomputed from EmailMessage with one aggregate.
    total_recipients = models.PositiveIntegerField(default=0)
    sent_count = models.PositiveIntegerField(default=0)
    delivered_count = models.PositiveIntegerField(default=0)
    opened_count = models.PositiveIntegerField(default=0)
    clicked_count = models.PositiveIntegerField(default=0)
    bounced_count = models.PositiveIntegerField(default=0)
    unsubscribed_count = models.PositiveIntegerField(default=0)
    failed_count = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "-created_at"], name="campaign_status_idx")]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("campaigns:campaign_detail", args=[self.pk])

    @property
    def effective_subject(self) -> str:
        return self.subject or self.template.subject

    @property
    def is_recurring(self) -> bool:
        return bool(self.cron_expression)

    def rate(self, count: int) -> float:
        """A share of the emails sent, in percent."""
        return round(100 * count / self.sent_count, 1) if self.sent_count else 0.0

    @property
    def open_rate(self) -> float:
        return self.rate(self.opened_count)

    @property
    def click_rate(self) -> float:
        return self.rate(self.clicked_count)


class CampaignRun(models.Model):
    """One send of a campaign: the single send of a one-off campaign, or one firing of a
    recurring one. Its recipients are resolved when it starts."""

    class Status(models.TextChoices):
        RESOLVING = "resolving", "Resolving recipients"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        PAUSED = "paused", "Paused"
        CANCELLED = "cancelled", "Cancelled"

    campaign = models.ForeignKey(EmailCampaign, on_delete=models.CASCADE, related_name="runs")
    run_key = models.CharField(max_length=40)  # "once", or the minute a cron run fired
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.RESOLVING)
    total = models.PositiveIntegerField(default=0)
    # Who the email gate refused, per customers.email_gate.Refusal: when the run started
    # (not in `total`) and later, before their batch (their messages are cancelled).
    skipped = models.JSONField(default=dict, blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Which sender holds the run and until when: a new sender takes over only after the
    # lease has lapsed (its worker died), so two workers never send the same run at once.
    lease_owner = models.CharField(max_length=64, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    objects = CampaignRunQuerySet.as_manager()

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "run_key"], name="campaignrun_once"),
        ]

    def __str__(self) -> str:
        return f"{self.campaign} ({self.run_key})"


class SendBatch(models.Model):
    """Up to 1,000 recipients handed to the provider in one request."""

    class Status(models.TextChoices):
        SENDING = "sending", "Sending"  # request in flight (or its worker died: reconciled)
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"  # refused by the provider (4xx); the reason is kept
        REQUEUED = "requeued", "Re-queued"  # not accepted (429/5xx, or worker died first)

    run = models.ForeignKey(CampaignRun, on_delete=models.CASCADE, related_name="batches")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.SENDING)
    size = models.PositiveIntegerField(default=0)
    # The batch is the run's queued messages with ids in this range (claims go in id order,
    # one sender at a time), so claiming writes one row here instead of 1,000 messages.
    first_message_id = models.BigIntegerField(default=0)
    last_message_id = models.BigIntegerField(default=0)
    provider_message_id = models.CharField(max_length=100, blank=True)
    error = models.TextField(blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["run", "status"], name="sendbatch_run_status_idx")]

    def __str__(self) -> str:
        return f"Batch {self.pk} of {self.run}"

    @property
    def key(self) -> str:
        """Sent as a custom arg, so a resumed sender can ask the provider whether a batch
        whose worker died mid-request was accepted."""
        return f"batch-{self.pk}"


class EmailMessage(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        DELIVERED = "delivered", "Delivered"
        OPENED = "opened", "Opened"
        CLICKED = "clicked", "Clicked"
        BOUNCED = "bounced", "Bounced"
        DROPPED = "dropped", "Dropped"
        FAILED = "failed", "Failed"
        UNSUBSCRIBED = "unsubscribed", "Unsubscribed"
        CANCELLED = "cancelled", "Cancelled"

    # No single-column indexes on these keys: the composite indexes below start with each,
    # and every index costs time on each of the 100,000 updates of a large send.
    campaign = models.ForeignKey(
        EmailCampaign, on_delete=models.CASCADE, related_name="messages", db_index=False
    )
    run = models.ForeignKey(
        CampaignRun, on_delete=models.CASCADE, related_name="messages", db_index=False
    )
    customer = models.ForeignKey(
        Customer,
        on_delete=models.SET_NULL,
        null=True,
        related_name="email_messages",
        db_index=False,
    )
    email = models.EmailField()  # the address it went to, kept if the customer changes
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED)
    provider_message_id = models.CharField(max_length=100, blank=True)
    error = models.TextField(blank=True)
    queued_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    opened_at = models.DateTimeField(null=True, blank=True)
    clicked_at = models.DateTimeField(null=True, blank=True)
    bounced_at = models.DateTimeField(null=True, blank=True)
    dropped_at = models.DateTimeField(null=True, blank=True)
    unsubscribed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            # One email per recipient per run: a one-off campaign has one run, so this is
            # "one per campaign and recipient"; a recurring one gets one per firing.
            models.UniqueConstraint(fields=["run", "customer"], name="emailmessage_once_per_run"),
        ]
        indexes = [
            models.Index(fields=["run", "status", "id"], name="emailmessage_run_status_idx"),
            models.Index(fields=["campaign", "status"], name="emailmsg_campaign_status_idx"),
            models.Index(fields=["customer", "-queued_at"], name="emailmessage_customer_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.campaign_id} → {self.email}"


class EmailEvent(models.Model):
    """A provider event exactly as received; stored once per provider event id."""

    sg_event_id = models.CharField(max_length=100, unique=True)
    event = models.CharField(max_length=30)
    email = models.CharField(max_length=254, blank=True)
    message = models.ForeignKey(
        EmailMessage, on_delete=models.SET_NULL, null=True, blank=True, related_name="events"
    )
    occurred_at = models.DateTimeField()
    payload = models.JSONField()
    received_at = models.DateTimeField(default=timezone.now)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        indexes = [
            models.Index(
                fields=["id"], name="emailevent_unprocessed_idx", condition=Q(processed_at=None)
            ),
            models.Index(fields=["message", "event"], name="emailevent_message_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.event} {self.email}"


class OutboxMessage(models.Model):
    """An email handed to the local outbox instead of SendGrid (no SENDGRID_API_KEY)."""

    to_email = models.CharField(max_length=254)
    from_email = models.CharField(max_length=254)
    subject = models.CharField(max_length=300)
    text_body = models.TextField(blank=True)
    html_body = models.TextField(blank=True)
    headers = models.JSONField(default=dict, blank=True)
    custom_args = models.JSONField(default=dict, blank=True)
    message_id = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.subject} → {self.to_email}"
