from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from customers.models import Customer


class Grade(models.TextChoices):
    HOT = "hot", "Hot"
    WARM = "warm", "Warm"
    COLD = "cold", "Cold"


HOT_FROM = 80
WARM_FROM = 50


def grade_for(total: int) -> str:
    if total >= HOT_FROM:
        return Grade.HOT
    if total >= WARM_FROM:
        return Grade.WARM
    return Grade.COLD


class Factor(models.TextChoices):
    COMPANY_SIZE = "company_size", "Company size"
    BUDGET = "budget", "Budget"
    TIMELINE = "timeline", "Purchase timeline"
    AUTHORITY = "authority", "Decision authority"
    ENGAGEMENT = "engagement", "Engagement"
    SOURCE_QUALITY = "source_quality", "Source quality"


# Each factor's cap: together they keep the total within 0-100.
FACTOR_MAX = {
    Factor.COMPANY_SIZE: 20,
    Factor.BUDGET: 20,
    Factor.TIMELINE: 15,
    Factor.AUTHORITY: 15,
    Factor.ENGAGEMENT: 20,
    Factor.SOURCE_QUALITY: 10,
}


class ActivityType(models.TextChoices):
    EMAIL_OPEN = "email_open", "Email opened"
    EMAIL_CLICK = "email_click", "Email link clicked"
    WEBSITE_VISIT = "website_visit", "Website visit"
    DOWNLOAD = "download", "Download"
    FORM_SUBMIT = "form_submit", "Form submitted"
    MEETING_SCHEDULED = "meeting_scheduled", "Meeting scheduled"
    CALL_ANSWERED = "call_answered", "Call answered"


class ScoringRule(models.Model):
    """Points a factor value is worth. Company size uses bands (min/max employees); the other
    factors use a key: the customer's field value, or the activity type for engagement."""

    factor = models.CharField(max_length=20, choices=Factor.choices)
    key = models.CharField(max_length=40, blank=True)
    min_value = models.PositiveIntegerField(null=True, blank=True)
    max_value = models.PositiveIntegerField(null=True, blank=True)
    points = models.PositiveSmallIntegerField()
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["factor", "min_value", "key"]
        constraints = [
            models.UniqueConstraint(
                fields=["factor", "key"],
                condition=~Q(factor="company_size"),
                name="scoringrule_one_rule_per_key",
            ),
            models.CheckConstraint(
                condition=Q(min_value__isnull=True)
                | Q(max_value__isnull=True)
                | Q(min_value__lte=models.F("max_value")),
                name="scoringrule_band_ordered",
            ),
        ]

    def __str__(self) -> str:
        if self.factor == Factor.COMPANY_SIZE:
            return f"{self.factor} {self.min_value}-{self.max_value or '∞'}: {self.points}"
        return f"{self.factor} {self.key or '(unknown)'}: {self.points}"


class LeadScore(models.Model):
    customer = models.OneToOneField(Customer, on_delete=models.CASCADE, related_name="lead_score")
    company_size_score = models.PositiveSmallIntegerField(default=0)
    budget_score = models.PositiveSmallIntegerField(default=0)
    timeline_score = models.PositiveSmallIntegerField(default=0)
    authority_score = models.PositiveSmallIntegerField(default=0)
    engagement_score = models.PositiveSmallIntegerField(default=0)
    source_quality_score = models.PositiveSmallIntegerField(default=0)
    total_score = models.PositiveSmallIntegerField(default=0, db_index=True)
    ai_score = models.PositiveSmallIntegerField(null=True, blank=True)
    # From ai/ through crm.reactions (LEAD_AI_SCORES): which model, the base value and the
    # factors pushing the probability up and down, in words and percentage points.
    ai_explanation = models.JSONField(default=dict, blank=True)
    grade = models.CharField(max_length=4, choices=Grade.choices, default=Grade.COLD)
    last_calculated = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["grade", "-total_score"], name="leadscore_grade_total_idx")]
        constraints = [
            models.CheckConstraint(
                condition=Q(total_score__lte=100), name="leadscore_total_at_most_100"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id}: {self.total_score} ({self.grade})"


class LeadActivity(models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="lead_activities")
    activity_type = models.CharField(max_length=20, choices=ActivityType.choices)
    details = models.JSONField(default=dict, blank=True)
    score_impact = models.PositiveSmallIntegerField(default=0)
    timestamp = models.DateTimeField(default=timezone.now)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-timestamp", "-id"]
        verbose_name_plural = "lead activities"
        indexes = [
            models.Index(fields=["customer", "-timestamp"], name="leadactivity_customer_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.activity_type} by {self.customer_id}"


class ScoreChange(models.Model):
    """A lead's score over time (one row each time the total or grade changes)."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="score_changes")
    total_score = models.PositiveSmallIntegerField()
    grade = models.CharField(max_length=4, choices=Grade.choices)
    previous_total = models.PositiveSmallIntegerField(null=True, blank=True)
    previous_grade = models.CharField(max_length=4, choices=Grade.choices, blank=True)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["customer", "at"], name="scorechange_customer_idx")]

    def __str__(self) -> str:
        return f"{self.customer_id}: {self.previous_total} -> {self.total_score}"


class WorkflowRun(models.Model):
    """One grade transition's workflow: claimed once in the rescoring transaction, carried out
    by a task that records what it did."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="workflow_runs")
    previous_grade = models.CharField(max_length=4, blank=True)
    grade = models.CharField(max_length=4, choices=Grade.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    actions = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["customer", "-created_at"], name="workflowrun_customer_idx"),
            models.Index(fields=["assigned_to", "-created_at"], name="workflowrun_assignee_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id}: {self.previous_grade or '—'} -> {self.grade} ({self.status})"


class RescoreRun(models.Model):
    """A background rescoring of every lead (after the rules change), with its progress."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Rescore {self.pk}: {self.done}/{self.total} ({self.status})"
