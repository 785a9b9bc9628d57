"""Duplicate customers: the pairs a scan found, the background jobs (scan, bulk merge) and
the merges, each kept so it can be undone. Imported by customers.models (Django finds an
app's models there)."""

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone


class DuplicateJob(models.Model):
    """A scan of every customer, or a bulk merge: background work with progress."""

    class Kind(models.TextChoices):
        SCAN = "scan", "Scan for duplicates"
        BULK_MERGE = "bulk_merge", "Bulk merge"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    kind = models.CharField(max_length=12, choices=Kind.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="Empty for the nightly scan",
    )
    min_confidence = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Bulk merge: the pairs at or above it"
    )
    steps_done = models.PositiveIntegerField(default=0)
    steps_total = models.PositiveIntegerField(default=0)
    step_label = models.CharField(max_length=120, blank=True)
    pair_count = models.PositiveIntegerField(default=0, help_text="Scan: pairs found")
    merged_count = models.PositiveIntegerField(default=0, help_text="Bulk merge: merged")
    skipped_count = models.PositiveIntegerField(default=0, help_text="Bulk merge: skipped")
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # One job of a kind at a time: a second "scan now" joins the running one.
            models.UniqueConstraint(
                fields=["kind"],
                condition=Q(status__in=["queued", "running"]),
                name="duplicatejob_one_active_per_kind",
            ),
        ]
        indexes = [models.Index(fields=["kind", "-created_at"], name="duplicatejob_kind_idx")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.get_status_display()})"

    @property
    def is_active(self) -> bool:
        return self.status in (self.Status.QUEUED, self.Status.RUNNING)

    @property
    def percent(self) -> int:
        if self.status == self.Status.DONE:
            return 100
        return int(100 * self.steps_done / self.steps_total) if self.steps_total else 0


class DuplicatePair(models.Model):
    """Two customers that look like one: customer_a has the lower id. A dismissed pair stays
    (so a later scan does not bring it back); an open pair a scan no longer finds goes."""

    class Status(models.TextChoices):
        OPEN = "open", "To review"
        DISMISSED = "dismissed", "Not a duplicate"

    customer_a = models.ForeignKey(
        "customers.Customer", on_delete=models.CASCADE, related_name="duplicate_pairs_as_a"
    )
    customer_b = models.ForeignKey(
        "customers.Customer", on_delete=models.CASCADE, related_name="duplicate_pairs_as_b"
    )
    confidence = models.PositiveSmallIntegerField(help_text="0-100")
    reasons = models.JSONField(default=list, help_text='e.g. ["same phone", "names 92% alike"]')
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    found_by = models.ForeignKey(
        DuplicateJob, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    found_at = models.DateTimeField(default=timezone.now)
    dismissed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    dismissed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-confidence", "id"]
        constraints = [
            models.UniqueConstraint(fields=["customer_a", "customer_b"], name="duplicatepair_once"),
            models.CheckConstraint(
                condition=Q(customer_a__lt=F("customer_b")), name="duplicatepair_a_before_b"
            ),
            models.CheckConstraint(
                condition=Q(confidence__lte=100), name="duplicatepair_confidence_max_100"
            ),
        ]
        indexes = [
            models.Index(fields=["status", "-confidence", "id"], name="duplicatepair_queue_idx"),
            models.Index(fields=["customer_b"], name="duplicatepair_b_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.customer_a_id} ~ {self.customer_b_id} ({self.confidence}%)"


class CustomerMerge(models.Model):
    """One merge: the merged-away customer's snapshot and the ids of every row moved to the
    survivor, so an undo restores the customer and moves back exactly those rows."""

    survivor = models.ForeignKey(
        "customers.Customer", on_delete=models.SET_NULL, null=True, related_name="merges"
    )
    merged_customer_id = models.BigIntegerField(help_text="The id the merged-away customer had")
    merged_name = models.CharField(max_length=200)
    # The merged-away customer as django's JSON serializer writes it (with tags, sharing).
    merged_snapshot = models.JSONField()
    # The survivor's fields the merge changed: {field: [before, after]}.
    survivor_changes = models.JSONField(default=dict)
    # {"app.Model.field": [ids]} moved to the survivor; "detached": set to NULL instead.
    moved = models.JSONField(default=dict)
    detached = models.JSONField(default=dict)
    # Rows deleted with the merged-away customer (its lead score, pairs, rows that would
    # break a uniqueness on the survivor), serialized so an undo puts them back.
    removed_rows = models.JSONField(default=list)
    # {"tags": [ids], "shared_with": [ids]} the survivor gained.
    added_relations = models.JSONField(default=dict)
    confidence = models.PositiveSmallIntegerField(null=True, blank=True)
    reasons = models.JSONField(default=list, blank=True)
    merged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    merged_at = models.DateTimeField(default=timezone.now)
    undone_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    undone_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-merged_at", "-id"]
        indexes = [
            models.Index(fields=["-merged_at", "-id"], name="customermerge_recent_idx"),
            models.Index(fields=["survivor", "-merged_at"], name="customermerge_survivor_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.merged_name} into {self.survivor_id}"

    @property
    def moved_count(self) -> int:
        return sum(len(ids) for ids in self.moved.values())
