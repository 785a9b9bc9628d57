"""The AI app's data: trained lead-scoring models (the registry), training runs with their
progress, the managers' choice of the score that grades leads, the engagement statistics
the recommender reads and the documents it shared. A lead's model score and its top
factors live on leads.LeadScore (ai_score, ai_explanation), written by the rescoring."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from crm.models import Team
from customers.models import Customer


class ModelStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    CANDIDATE = "candidate", "Candidate (not activated)"
    RETIRED = "retired", "Retired"


class LeadScoringModelQuerySet(models.QuerySet):
    def active(self) -> "LeadScoringModelQuerySet":
        return self.filter(is_active=True)

    def global_models(self) -> "LeadScoringModelQuerySet":
        return self.filter(team__isnull=True)


class LeadScoringModel(models.Model):
    """One trained model: what it learnt from, how it did against the rule score on leads it
    never saw, and its file, whose sha256 is checked before it is ever unpickled."""

    version = models.PositiveIntegerField()
    team = models.ForeignKey(
        Team, on_delete=models.CASCADE, null=True, blank=True, related_name="scoring_models",
        help_text="Empty: the global model, used for teams without their own.",
    )  # fmt: skip
    trained_at = models.DateTimeField(default=timezone.now)
    label_definition = models.JSONField(default=dict)
    features = models.JSONField(default=list)
    sample_count = models.PositiveIntegerField(default=0)
    conversion_count = models.PositiveIntegerField(default=0)
    train_count = models.PositiveIntegerField(default=0)
    test_count = models.PositiveIntegerField(default=0)
    metrics = models.JSONField(default=dict, blank=True)
    file = models.FileField(upload_to="ai_models/", max_length=200)
    sha256 = models.CharField(max_length=64)
    is_active = models.BooleanField(default=False)
    status = models.CharField(max_length=10, choices=ModelStatus.choices)
    reason = models.TextField(blank=True, help_text="Why it was (not) activated.")
    activated_at = models.DateTimeField(null=True, blank=True)
    activated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+",
    )  # fmt: skip

    objects = LeadScoringModelQuerySet.as_manager()

    class Meta:
        ordering = ["-version"]
        constraints = [
            models.UniqueConstraint(fields=["version"], name="scoringmodel_version_unique"),
            # One active model per scope: the global one and one per team.
            models.UniqueConstraint(
                fields=["team"],
                condition=Q(is_active=True),
                name="scoringmodel_one_active_per_team",
            ),
            models.UniqueConstraint(
                fields=["is_active"],
                condition=Q(is_active=True, team__isnull=True),
                name="scoringmodel_one_active_global",
            ),
        ]

    def __str__(self) -> str:
        scope = self.team.name if self.team_id else "global"
        return f"v{self.version} ({scope}, {self.status})"

    @property
    def scope_name(self) -> str:
        return f"{self.team.name} team model" if self.team_id else "global model"


class TrainingRun(models.Model):
    """One training (nightly or "train now"): its progress and what came out of it."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0)
    step = models.CharField(max_length=200, blank=True)
    outcome = models.TextField(blank=True)
    data_summary = models.JSONField(default=dict, blank=True)
    models_trained = models.ManyToManyField(LeadScoringModel, blank=True, related_name="runs")
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Training {self.pk} ({self.status}, {self.progress}%)"

    @property
    def is_finished(self) -> bool:
        return self.status in (self.Status.DONE, self.Status.FAILED)


class ScoringPreference(models.Model):
    """The managers' choice of the score that grades leads and drives the workflows once a
    model is active. One row (pk=1)."""

    class Source(models.TextChoices):
        RULES = "rules", "Rule score"
        MODEL = "model", "Model score (when a model is active)"

    grading_source = models.CharField(max_length=5, choices=Source.choices, default=Source.RULES)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    def __str__(self) -> str:
        return f"Grade by {self.grading_source}"


class RecommendationShare(models.Model):
    """A recommended document shared to a customer (the tracked share link was made): the
    recommender leaves it out for that customer for a while."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")
    document = models.ForeignKey("documents.Document", on_delete=models.CASCADE, related_name="+")
    sale = models.ForeignKey(
        "sales.Sale", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    shared_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-at"]
        indexes = [models.Index(fields=["customer", "-at"], name="recshare_customer_idx")]

    def __str__(self) -> str:
        return f"{self.document_id} -> {self.customer_id}"


class SizeBand(models.TextChoices):
    UNKNOWN = "", "Size unknown"
    SMALL = "1-49", "1–49 employees"
    MEDIUM = "50-249", "50–249 employees"
    LARGE = "250-999", "250–999 employees"
    ENTERPRISE = "1000+", "1,000+ employees"


def size_band(company_size: int | None) -> str:
    if company_size is None:
        return SizeBand.UNKNOWN
    if company_size < 50:
        return SizeBand.SMALL
    if company_size < 250:
        return SizeBand.MEDIUM
    if company_size < 1000:
        return SizeBand.LARGE
    return SizeBand.ENTERPRISE


class EngagementStat(models.Model):
    """How many customers of a segment (industry, size band and lifecycle stage; stage ""
    for all stages) engaged with a document chain (opened a share link, downloaded, clicked
    it in an email). `document` empty: the segment's size. Refreshed nightly in SQL
    (ai.services.recommend.engagement_stats_refresh), so a recommendation reads a few rows."""

    industry = models.CharField(max_length=30, blank=True)
    size_band = models.CharField(max_length=10, choices=SizeBand.choices, blank=True)
    stage = models.CharField(max_length=20, blank=True)
    document = models.ForeignKey(
        "documents.Document", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    customers = models.PositiveIntegerField()
    refreshed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(
                fields=["industry", "size_band", "stage"], name="engagementstat_segment_idx"
            )
        ]

    def __str__(self) -> str:
        segment = f"{self.industry}/{self.size_band}/{self.stage or '*'}"
        return f"{segment} {self.document_id}: {self.customers}"
