"""Connections to HubSpot and Salesforce, the per-record sync ledger, runs and conflicts."""

import secrets

from django.conf import settings
from django.db import models
from django.db.models import Q


def _record_key() -> str:
    return secrets.token_hex(4)


class Connection(models.Model):
    class Provider(models.TextChoices):
        HUBSPOT = "hubspot", "HubSpot"
        SALESFORCE = "salesforce", "Salesforce"

    class ConflictPolicy(models.TextChoices):
        CRM_WINS = "crm_wins", "CRM wins"
        REMOTE_WINS = "remote_wins", "Remote wins"
        NEWEST_WINS = "newest_wins", "Newest change wins"
        MANUAL = "manual", "Ask a person (conflicts queue)"

    class AuthFlow(models.TextChoices):
        TOKEN = "token", "Private app access token (HubSpot)"
        CLIENT_CREDENTIALS = "client_credentials", "OAuth 2.0 client credentials (Salesforce)"
        PASSWORD = "password", "OAuth 2.0 username-password with security token (Salesforce)"

    name = models.CharField(max_length=100, unique=True)
    provider = models.CharField(max_length=12, choices=Provider.choices)
    auth_flow = models.CharField(max_length=20, choices=AuthFlow.choices)
    # Salesforce: "login", "test" or the My Domain ("acme.my"); unused for HubSpot.
    domain = models.CharField(max_length=100, blank=True)
    # Fernet token of the JSON secrets (integrations.secrets); never shown anywhere.
    secrets_encrypted = models.TextField(editable=False)
    conflict_policy = models.CharField(
        max_length=12, choices=ConflictPolicy.choices, default=ConflictPolicy.NEWEST_WINS
    )
    is_enabled = models.BooleanField(default=True, help_text="Sync every 5 minutes.")
    push_existing = models.BooleanField(
        default=False,
        help_text="On the first sync, also send the CRM's existing customers and deals.",
    )
    # Starts the key written on every record the sync creates remotely ("<this>-<pk>", in
    # a property or field with unique values): creates are upserts on it, and a CRM's
    # records are told apart from another's pushing to the same account (a staging copy).
    record_key = models.CharField(max_length=16, default=_record_key, editable=False)
    field_map = models.JSONField(default=dict, blank=True)
    stage_map = models.JSONField(default=dict, blank=True)
    # Where incremental sync resumes: per object, the end of the last pulled window (ms),
    # the last pushed local change and the last tombstone sent.
    cursors = models.JSONField(default=dict, blank=True)
    first_import_done_at = models.DateTimeField(null=True, blank=True)
    last_tested_at = models.DateTimeField(null=True, blank=True)
    last_test_ok = models.BooleanField(null=True)
    last_test_message = models.CharField(max_length=500, blank=True)
    unmatched_owners = models.JSONField(default=list, blank=True)
    run_as = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+",
        help_text="Owner of synced records whose remote owner matches no user; the audit actor.",
    )  # fmt: skip
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_provider_display()})"

    def remote_key(self, local_id: int) -> str:
        return f"{self.record_key}-{local_id}"

    def local_id_of(self, remote_key: str) -> int | None:
        """The local id in a key this connection wrote, or None (another CRM's, or none)."""
        prefix, _, local_id = remote_key.rpartition("-")
        return int(local_id) if prefix == self.record_key and local_id.isdigit() else None


class SyncRun(models.Model):
    class Kind(models.TextChoices):
        FIRST_IMPORT = "first_import", "First import"
        INCREMENTAL = "incremental", "Incremental"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    ACTIVE_STATUSES = (Status.QUEUED, Status.RUNNING)

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="runs")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    triggered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # The saved position (phase, page cursor or window): a run whose worker died resumes here.
    position = models.JSONField(default=dict, blank=True)
    # {object: {"created": n, "updated": n, "skipped": n, "failed": n, "deleted": n}}
    counts = models.JSONField(default=dict, blank=True)
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    api_calls = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    # Who holds the lease: a worker whose lease was taken over finds its writes refused.
    lease_token = models.CharField(max_length=32, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["connection"],
                condition=Q(status__in=["queued", "running"]),
                name="syncrun_one_active_per_connection",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} of {self.connection} ({self.status})"

    @property
    def percent(self) -> int:
        if not self.progress_total:
            return 100 if self.status == self.Status.SUCCEEDED else 0
        return min(100, self.progress_done * 100 // self.progress_total)


class SyncFailure(models.Model):
    run = models.ForeignKey(SyncRun, on_delete=models.CASCADE, related_name="failures")
    object_type = models.CharField(max_length=20)
    remote_id = models.CharField(max_length=40, blank=True)
    local_id = models.BigIntegerField(null=True, blank=True)
    direction = models.CharField(max_length=4, choices=[("pull", "Pull"), ("push", "Push")])
    message = models.TextField()
    retried_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.object_type} {self.remote_id or self.local_id}: {self.message[:60]}"


class SyncLink(models.Model):
    """The ledger: one remote record and the local one it is linked to, with what was last
    agreed between them, so a change is told apart from our own write coming back."""

    class Side(models.TextChoices):
        LOCAL = "local", "CRM"
        REMOTE = "remote", "Remote"

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="links")
    object_type = models.CharField(max_length=20)  # contacts, deals, Lead, Opportunity ...
    remote_id = models.CharField(max_length=40)
    local_model = models.CharField(max_length=12)  # customer, sale, user, company
    # Not a foreign key: the link outlives the local record, so its deletion reaches the remote.
    local_id = models.BigIntegerField(null=True, blank=True)
    remote_modified = models.DateTimeField(null=True, blank=True)
    synced_values = models.JSONField(default=dict, blank=True)
    synced_hash = models.CharField(max_length=40, blank=True)
    changed_by = models.CharField(max_length=6, choices=Side.choices, blank=True)
    held_fields = models.JSONField(default=list, blank=True)  # in the conflicts queue
    deleted_at = models.DateTimeField(null=True, blank=True)
    note = models.CharField(max_length=200, blank=True)
    synced_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["connection", "object_type", "remote_id"], name="synclink_remote_unique"
            ),
            models.UniqueConstraint(
                fields=["connection", "local_model", "local_id"],
                condition=Q(deleted_at__isnull=True, local_id__isnull=False),
                name="synclink_local_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.object_type} {self.remote_id} <-> {self.local_model} {self.local_id}"


class SyncConflict(models.Model):
    class Resolution(models.TextChoices):
        CRM = "crm", "Kept the CRM's value"
        REMOTE = "remote", "Took the remote value"

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="conflicts")
    link = models.ForeignKey(SyncLink, on_delete=models.CASCADE, related_name="conflicts")
    field = models.CharField(max_length=50)
    local_value = models.TextField(blank=True)
    remote_value = models.TextField(blank=True)
    detected_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    resolution = models.CharField(max_length=6, choices=Resolution.choices, blank=True)

    class Meta:
        ordering = ["-detected_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["link", "field"],
                condition=Q(resolved_at__isnull=True),
                name="syncconflict_one_open_per_field",
            )
        ]

    def __str__(self) -> str:
        return f"{self.link}: {self.field}"
