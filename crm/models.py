from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import models


class Team(models.Model):
    name = models.CharField(max_length=100, unique=True)
    managers = models.ManyToManyField(
        settings.AUTH_USER_MODEL, related_name="managed_teams", blank=True
    )
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        through="TeamMembership",
        related_name="teams",
        blank=True,
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class TeamMembership(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="team_memberships"
    )
    is_senior = models.BooleanField(default=False, help_text="Senior reps receive hot leads first.")
    joined_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            # A user belongs to at most one team.
            models.UniqueConstraint(fields=["user"], name="teammembership_one_team_per_user"),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.team}"


class AuditEvent(models.Model):
    class Verb(models.TextChoices):
        CREATE = "create", "Created"
        UPDATE = "update", "Updated"
        DELETE = "delete", "Deleted"
        MERGE = "merge", "Merged"
        UNMERGE = "unmerge", "Merge undone"

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="audit_events",
    )
    verb = models.CharField(max_length=10, choices=Verb.choices)
    content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE)
    # A string so that a deleted object's history still names it.
    object_id = models.CharField(max_length=64)
    object = GenericForeignKey("content_type", "object_id")
    object_repr = models.CharField(max_length=200)
    changes = models.JSONField(default=dict, blank=True)
    at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["content_type", "object_id", "-at"])]

    def __str__(self) -> str:
        return f"{self.actor} {self.verb} {self.object_repr}"


class SchedulerHeartbeat(models.Model):
    """Written by a beat-scheduled task so /healthz can tell the scheduler and a worker run."""

    name = models.CharField(max_length=50, unique=True)
    last_seen_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} at {self.last_seen_at:%Y-%m-%d %H:%M:%S}"


class Tombstone(models.Model):
    """A record that left someone's sight: deleted (no user: everyone who synced it), or gone
    out of one user's reach (reassigned or unshared away from them). The JSON API's delta
    sync (`updated_since`) answers these as removed, so a phone drops what it may no longer
    hold. Written by the services that delete or reassign (crm.services.tombstones_*)."""

    class Resource(models.TextChoices):
        CUSTOMER = "customer", "Customer"
        DEAL = "deal", "Deal"
        TASK = "task", "Task"

    resource = models.CharField(max_length=20, choices=Resource.choices)
    object_id = models.BigIntegerField()
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    removed_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["removed_at", "id"]
        indexes = [
            models.Index(fields=["resource", "removed_at"], name="tombstone_resource_at_idx"),
        ]

    def __str__(self) -> str:
        whose = f" for user {self.user_id}" if self.user_id else ""
        return f"{self.resource} {self.object_id} removed{whose}"


class Notification(models.Model):
    """Something that happened that one user should know about; the bell lists the unread."""

    class Kind(models.TextChoices):
        TASK_ASSIGNED = "task_assigned", "A task assigned to me"
        LEAD_HOT = "lead_hot", "My lead turned hot"
        DEAL_CHANGED = "deal_changed", "My deal moved or edited by someone else"
        DEAL_CLOSED = "deal_closed", "A deal of my team won or lost"
        DOCUMENT_SHARED = "document_shared", "A document shared with me"
        CAMPAIGN_ENDED = "campaign_ended", "My campaign finished, paused or failed"
        IMPORT_FINISHED = "import_finished", "My customer import finished"
        MODEL_TRAINED = "model_trained", "A lead scoring model trained"

    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    kind = models.CharField(max_length=30, choices=Kind.choices)
    text = models.CharField(max_length=300)
    link = models.CharField(max_length=300, blank=True)
    content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE, null=True, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    object = GenericForeignKey("content_type", "object_id")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)
    # Set when the daily digest carried it, so no notification is emailed twice.
    emailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["recipient", "-id"], name="notification_recipient_idx"),
            models.Index(
                fields=["recipient"],
                condition=models.Q(read_at__isnull=True),
                name="notification_unread_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.recipient}: {self.text}"


class NotificationPreference(models.Model):
    """How a user wants one kind of notification; no row is "in the app"."""

    class Delivery(models.TextChoices):
        IN_APP = "in_app", "In the app"
        DIGEST = "digest", "In the app and a daily email digest"
        OFF = "off", "Off"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_preferences"
    )
    kind = models.CharField(max_length=30, choices=Notification.Kind.choices)
    delivery = models.CharField(max_length=10, choices=Delivery.choices, default=Delivery.IN_APP)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "kind"], name="notificationpreference_once"),
        ]

    def __str__(self) -> str:
        return f"{self.user} {self.kind}: {self.delivery}"


class RealtimeEvent(models.Model):
    """One thing pushed to the open pages (a deal moved, a notification, progress), written in
    the transaction that caused it and pushed after its commit; the increasing id lets a
    client that reconnects ask for what it missed (like Odoo's bus)."""

    class Topic(models.TextChoices):
        DEAL = "deal", "Deal"
        NOTIFICATION = "notification", "Notification"
        PROGRESS = "progress", "Progress"

    topic = models.CharField(max_length=20, choices=Topic.choices)
    payload = models.JSONField(default=dict)
    # Who may receive it, decided when it is written (crm.permissions.realtime): these users,
    # and every admin when `for_admins`.
    user_ids = models.JSONField(default=list)
    for_admins = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.topic} event {self.pk}"
