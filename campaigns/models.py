"""Email marketing: templates, segments, campaigns, one message per recipient, provider
events, and the local outbox used when no SendGrid key is configured. Suppressions live in
customers, beside the email gate."""

from datetime import time

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Lower
from django.urls import reverse
from django.utils import timezone

from campaigns.managers import CampaignRunQuerySet
from customers.models import Customer


class EmailProvider(models.TextChoices):
    """The providers of campaigns.sending.provider.PROVIDERS (blank on a campaign or
    sequence: the default one)."""

    SENDGRID = "sendgrid", "SendGrid"
    MAILGUN = "mailgun", "Mailgun"
    OUTBOX = "outbox", "Local outbox"


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
    # None only for a sequence step's campaign, whose recipients are its due enrolments.
    segment = models.ForeignKey(
        CustomerSegment, on_delete=models.PROTECT, null=True, related_name="campaigns"
    )
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.DRAFT)
    # Which configured provider sends it; blank: the default (EMAIL_DEFAULT_PROVIDER). A
    # sequence step's campaign carries its sequence's choice.
    provider = models.CharField(
        max_length=10, choices=EmailProvider.choices, blank=True, default=""
    )
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
    # The provider the run sends through, fixed by its first sender (the campaign's choice,
    # else the default): a resumed sender judges the batches its dead predecessor had in
    # flight with the provider that got them. A sequence step's campaign carries the
    # sequence's choice.
    provider = models.CharField(max_length=10, choices=EmailProvider.choices, blank=True)

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
        verbose_name_plural = "send batches"
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
    """A provider event exactly as received (`payload`); stored once per provider event id.
    `event` is the provider-neutral type the processing reads (SendGrid's names: processed,
    delivered, open, click, bounce, dropped, deferred, spamreport, unsubscribe); a Mailgun
    event's id is kept as "mailgun:<id>" so that the two providers' ids never meet."""

    sg_event_id = models.CharField(max_length=100, unique=True)  # the provider's event id
    provider = models.CharField(
        max_length=10, choices=EmailProvider.choices, default=EmailProvider.SENDGRID
    )
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


class Sequence(models.Model):
    """An email sequence: ordered steps, each a template sent some days after the previous
    one, inside a weekday send window, until a stop condition holds. Each step sends through
    the campaign pipeline as a hidden campaign of its own (SequenceStep.campaign)."""

    class StopGrade(models.TextChoices):
        WARM = "warm", "Warm or hot"
        HOT = "hot", "Hot"
        NEVER = "", "Never (grade does not stop it)"

    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    is_active = models.BooleanField(
        default=True, help_text="Paused sequences send nothing; enrolments wait."
    )
    window_start = models.TimeField(default=time(9), help_text="Weekdays, in the CRM's time zone.")
    window_end = models.TimeField(default=time(17))
    stop_at_grade = models.CharField(
        max_length=4, choices=StopGrade.choices, default=StopGrade.WARM, blank=True
    )
    provider = models.CharField(
        max_length=10, choices=EmailProvider.choices, blank=True, default="",
        help_text="Which provider sends its steps; blank: the default.",
    )  # fmt: skip
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(Lower("name"), name="sequence_name_unique"),
            models.CheckConstraint(
                condition=Q(window_start__lt=F("window_end")), name="sequence_window_order"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("campaigns:sequence_detail", args=[self.pk])


class SequenceStep(models.Model):
    sequence = models.ForeignKey(Sequence, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveSmallIntegerField()  # 0, 1, 2 ... in sending order
    template = models.ForeignKey(EmailTemplate, on_delete=models.PROTECT, related_name="+")
    delay_days = models.PositiveSmallIntegerField(
        default=3, help_text="Days after the previous step (the first: after enrolment)."
    )
    # The step's sends are runs of this campaign (one per scheduler tick), so they share the
    # campaigns' batches, tracking, unsubscribe link and counters (the step's funnel).
    campaign = models.OneToOneField(
        EmailCampaign, on_delete=models.PROTECT, related_name="sequence_step"
    )

    class Meta:
        ordering = ["sequence", "position"]
        constraints = [
            # Steps keep their positions when edited (only trailing ones go), so no
            # renumbering ever needs this deferred.
            models.UniqueConstraint(
                fields=["sequence", "position"], name="sequencestep_position_unique"
            ),
            models.CheckConstraint(condition=Q(delay_days__lte=365), name="sequencestep_delay"),
        ]

    def __str__(self) -> str:
        return f"{self.sequence} – step {self.position + 1}"


class SequenceEnrollment(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        COMPLETED = "completed", "Completed"
        STOPPED = "stopped", "Stopped"

    sequence = models.ForeignKey(Sequence, on_delete=models.CASCADE, related_name="enrollments")
    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="sequence_enrollments"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    next_position = models.PositiveSmallIntegerField(default=0)  # the step sent next
    next_send_at = models.DateTimeField(null=True, blank=True)
    stop_reason = models.CharField(max_length=120, blank=True)
    enrolled_at = models.DateTimeField(default=timezone.now)
    enrolled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+",
    )  # fmt: skip
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-enrolled_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["sequence", "customer"],
                condition=Q(status="active"),
                name="sequenceenrollment_one_active",
            ),
        ]
        indexes = [
            models.Index(
                fields=["sequence", "next_position", "next_send_at"],
                condition=Q(status="active"),
                name="sequenceenrollment_due_idx",
            ),
            models.Index(fields=["customer", "-enrolled_at"], name="sequenceenrollment_cust_idx"),
            models.Index(fields=["sequence", "status", "-enrolled_at"], name="seqenroll_list_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id} in {self.sequence_id} ({self.status})"


class ImportEnrolment(models.Model):
    """The choice made on a CSV import's confirmation step: enrol the leads it creates in
    this sequence (off unless chosen)."""

    customer_import = models.OneToOneField(
        "customers.CustomerImport", on_delete=models.CASCADE, related_name="enrolment"
    )
    sequence = models.ForeignKey(Sequence, on_delete=models.CASCADE, related_name="+")
    chosen_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    enrolled_count = models.PositiveIntegerField(null=True, blank=True)  # set once done

    def __str__(self) -> str:
        return f"Import {self.customer_import_id} → {self.sequence}"


class LeadEmailSettings(models.Model):
    """What the lead workflows email (one row, edited by managers): the sequence cold leads
    enter, the templates of the warm case-study and hot personal emails, and whether those
    one-to-one emails go by themselves or wait on the rep's task as a draft."""

    cold_sequence = models.ForeignKey(
        Sequence, on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
        help_text="Leads graded cold enter it. Empty: cold leads get no email.",
    )  # fmt: skip
    warm_template = models.ForeignKey(
        EmailTemplate, on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
        help_text="The case-study email a warm lead's rep sends. Empty: none.",
    )  # fmt: skip
    hot_template = models.ForeignKey(
        EmailTemplate, on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
        help_text="The personal email a hot lead's rep sends. Empty: none.",
    )  # fmt: skip
    send_automatically = models.BooleanField(
        default=False,
        help_text="Send the warm and hot emails at once instead of waiting for the rep.",
    )
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "lead email settings"
        constraints = [models.CheckConstraint(condition=Q(pk=1), name="leademailsettings_one")]

    def __str__(self) -> str:
        return "Lead email settings"

    @classmethod
    def current(cls) -> "LeadEmailSettings":
        return cls.objects.get_or_create(pk=1)[0]


class EmailDraft(models.Model):
    """A one-to-one email prepared for a rep (a hot or warm lead's first email), rendered
    from a template, sent from the rep with one click."""

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        SENT = "sent", "Sent"
        REFUSED = "refused", "Not sent"  # the email gate refused it; `error` says why
        DISCARDED = "discarded", "Discarded"

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="email_drafts")
    rep = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    task = models.ForeignKey(
        "sales.Task", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    template = models.ForeignKey(
        EmailTemplate, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    subject = models.CharField(max_length=300)
    text_body = models.TextField()
    html_body = models.TextField(blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    error = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    # The document the email offers (the recommender's top one, when the template names it);
    # once sent, the recommender leaves it out for this customer (crm.reactions). An id, not
    # a foreign key: documents is a sibling app campaigns does not build on.
    recommended_document_id = models.BigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["rep", "status", "-created_at"], name="emaildraft_rep_idx")]

    def __str__(self) -> str:
        return f"{self.subject} → {self.customer_id}"

    def get_absolute_url(self) -> str:
        return reverse("campaigns:draft_detail", args=[self.pk])


class ProviderConnection(models.Model):
    """An email provider account the CRM has connected to (Mailgun: one per sending domain):
    when its existing suppressions (bounces, complaints, unsubscribes) were imported into the
    one suppression list, and how many of each."""

    class Status(models.TextChoices):
        PENDING = "pending", "Not imported yet"
        IMPORTING = "importing", "Importing"
        IMPORTED = "imported", "Imported"
        FAILED = "failed", "Failed (retried)"

    provider = models.CharField(max_length=10, choices=EmailProvider.choices)
    account = models.CharField(max_length=253)  # Mailgun: the sending domain
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    imported = models.JSONField(default=dict, blank=True)  # {"bounces": 12, ...}: added
    seen = models.JSONField(default=dict, blank=True)  # {"bounces": 40, ...}: read
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    imported_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["provider", "account"]
        constraints = [
            models.UniqueConstraint(fields=["provider", "account"], name="providerconn_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.get_provider_display()} {self.account}"
