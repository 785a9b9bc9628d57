from collections.abc import Iterable

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from customers.models import Customer
from sales.managers import SaleQuerySet, TaskQuerySet


class Sale(models.Model):
    """A deal with a customer, moving through the pipeline stages."""

    class Status(models.TextChoices):
        NEW = "NEW", "New"
        CONTACTED = "CONTACTED", "Contacted"
        PROPOSAL = "PROPOSAL", "Proposal"
        NEGOTIATION = "NEGOTIATION", "Negotiation"
        WON = "WON", "Won"
        LOST = "LOST", "Lost"

    OPEN_STATUSES = (Status.NEW, Status.CONTACTED, Status.PROPOSAL, Status.NEGOTIATION)
    CLOSED_STATUSES = (Status.WON, Status.LOST)
    # The funnel's stages in order: a won deal has passed them all; losing advances nothing.
    FUNNEL_STATUSES = (*OPEN_STATUSES, Status.WON)

    title = models.CharField(max_length=200)
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="sales")
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="assigned_sales",
    )
    # The customer's owner, kept by database triggers (migration 0012) whoever writes: a
    # deal saved, its customer changed, or its customer given another owner (services,
    # bulk updates, imports, admin). "Deals on customers I own" is then a condition on this
    # table instead of a join of every deal with its customer (crm.permissions.sales).
    customer_owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
        db_index=False,
    )
    amount = models.DecimalField(
        max_digits=14,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(0)],
    )
    currency = models.CharField(max_length=3, default="USD")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.NEW)
    expected_close_date = models.DateField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    lost_reason = models.CharField(max_length=255, blank=True)
    probability = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MaxValueValidator(100)],
        help_text="Win probability in percent; leave empty to use the stage's rate.",
    )
    stage_entered_at = models.DateTimeField(default=timezone.now, editable=False)
    # The latest logged activity, kept here so the board and the automation rules read one
    # column instead of aggregating the activities of 100,000 deals.
    last_activity_at = models.DateTimeField(null=True, blank=True, editable=False)
    # The furthest FUNNEL_STATUSES index the deal ever reached, kept by the stage services so
    # the win/loss funnel reads one column instead of every deal's stage changes.
    furthest_stage_rank = models.PositiveSmallIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    objects = SaleQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(amount__isnull=True) | Q(amount__gte=0),
                name="sale_amount_not_negative",
            ),
            models.CheckConstraint(
                condition=Q(probability__isnull=True) | Q(probability__lte=100),
                name="sale_probability_percent",
            ),
            models.CheckConstraint(
                condition=~Q(status__in=["WON", "LOST"]) | Q(closed_at__isnull=False),
                name="sale_closed_has_closed_at",
                violation_error_message="A won or lost deal needs a close date.",
            ),
            models.CheckConstraint(
                condition=Q(status__in=["WON", "LOST"]) | Q(closed_at__isnull=True),
                name="sale_open_has_no_closed_at",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "-created_at"], name="sale_status_created_idx"),
            models.Index(fields=["assigned_to", "status"], name="sale_assignee_status_idx"),
            # Covering: a customer's deal dates without the table (analytics' lifespan).
            models.Index(
                fields=["customer", "status"],
                include=["created_at", "closed_at"],
                name="sale_customer_dates_idx",
            ),
            models.Index(fields=["expected_close_date"], name="sale_expected_close_idx"),
            models.Index(fields=["-created_at", "-id"], name="sale_created_idx"),
            models.Index(fields=["updated_at", "id"], name="sale_updated_idx"),
            models.Index(
                fields=["status", "-stage_entered_at", "-id"], name="sale_board_column_idx"
            ),
            # Covering indexes for analytics over closed and over recently created deals,
            # read without the (wide) table: revenue, velocity, top reps, the funnel.
            models.Index(
                fields=["closed_at"],
                include=["status", "currency", "amount", "created_at", "assigned_to"],
                condition=Q(closed_at__isnull=False),
                name="sale_closed_cover_idx",
            ),
            models.Index(
                fields=["created_at"],
                include=["status", "currency", "furthest_stage_rank"],
                name="sale_created_cover_idx",
            ),
            # The open pipeline's value per stage and currency, from the index alone.
            models.Index(
                fields=["status", "currency"],
                include=["amount", "expected_close_date"],
                condition=~Q(status__in=["WON", "LOST"]),
                name="sale_open_value_idx",
            ),
            models.Index(fields=["customer_owner", "status"], name="sale_customer_owner_idx"),
            # The open deals of a rep or a team per currency and stage (the home page).
            models.Index(
                fields=["assigned_to", "currency", "status"],
                include=["amount"],
                condition=~Q(status__in=["WON", "LOST"]),
                name="sale_open_owner_idx",
            ),
            # Won deals per customer and currency, for lifetime value (analytics).
            models.Index(
                fields=["customer", "currency", "closed_at"],
                include=["amount"],
                condition=Q(status="WON", amount__isnull=False),
                name="sale_won_currency_idx",
            ),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def is_closed(self) -> bool:
        return self.status in self.CLOSED_STATUSES

    @classmethod
    def funnel_rank(cls, statuses: Iterable[str]) -> int:
        """The furthest of `statuses` along FUNNEL_STATUSES (0, New, when none is on it)."""
        ranks = [cls.FUNNEL_STATUSES.index(s) for s in statuses if s in cls.FUNNEL_STATUSES]
        return max(ranks, default=0)


class SaleActivity(models.Model):
    class Kind(models.TextChoices):
        CALL = "call", "Call"
        EMAIL = "email", "Email"
        MEETING = "meeting", "Meeting"
        NOTE = "note", "Note"
        PROPOSAL_SENT = "proposal_sent", "Proposal sent"

    sale = models.ForeignKey(Sale, on_delete=models.CASCADE, related_name="activities")
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.NOTE)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    occurred_at = models.DateTimeField()
    text = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        verbose_name_plural = "sale activities"
        indexes = [models.Index(fields=["sale", "-occurred_at"], name="saleactivity_sale_idx")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} on {self.sale_id}"


class Task(models.Model):
    class Priority(models.TextChoices):
        LOW = "LOW", "Low"
        MEDIUM = "MEDIUM", "Medium"
        HIGH = "HIGH", "High"
        URGENT = "URGENT", "Urgent"

    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    sale = models.ForeignKey(
        Sale, on_delete=models.CASCADE, null=True, blank=True, related_name="tasks"
    )
    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, null=True, blank=True, related_name="tasks"
    )
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="tasks"
    )
    priority = models.CharField(max_length=10, choices=Priority.choices, default=Priority.MEDIUM)
    due_at = models.DateTimeField()
    completed_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="created_tasks",
    )
    is_auto_created = models.BooleanField(default=False)
    # Which automation made it ("stage:PROPOSAL", "stale:CONTACTED"): with the title, unique
    # per deal, so a stage's tasks are made once however often or concurrently it is entered.
    automation_key = models.CharField(max_length=40, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # The JSON API's delta sync (updated_since) reads it; services that change a task by
    # update() set it themselves.
    updated_at = models.DateTimeField(auto_now=True)

    objects = TaskQuerySet.as_manager()

    class Meta:
        ordering = ["due_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["sale", "automation_key", "title"],
                condition=~Q(automation_key=""),
                name="task_automation_once",
            ),
        ]
        indexes = [
            # A rep has thousands of open tasks: the lists read them in due order, LIMITed,
            # walking these instead of joining and sorting all of them.
            models.Index(
                fields=["assigned_to", "due_at", "id"],
                condition=Q(completed_at__isnull=True),
                name="task_open_due_idx",
            ),
            models.Index(
                fields=["assigned_to", "-completed_at"],
                condition=Q(completed_at__isnull=False),
                name="task_done_idx",
            ),
            models.Index(fields=["sale", "due_at"], name="task_sale_idx"),
            models.Index(fields=["customer", "due_at"], name="task_customer_idx"),
            models.Index(fields=["updated_at", "id"], name="task_updated_idx"),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def is_done(self) -> bool:
        return self.completed_at is not None


class StageChange(models.Model):
    """Every status change of a deal, manual or automatic, in order."""

    sale = models.ForeignKey(Sale, on_delete=models.CASCADE, related_name="stage_changes")
    from_status = models.CharField(max_length=12, choices=Sale.Status.choices, blank=True)
    to_status = models.CharField(max_length=12, choices=Sale.Status.choices)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    is_automatic = models.BooleanField(default=False)
    reason = models.CharField(max_length=255, blank=True)
    changed_at = models.DateTimeField()
    # When the deal moved on from `to_status` (the next change's changed_at); empty while it
    # is still there. Kept by sale_change_stage so time in stage needs no window function.
    left_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["changed_at", "id"]
        indexes = [
            models.Index(fields=["sale", "changed_at"], name="stagechange_sale_idx"),
            models.Index(fields=["to_status", "changed_at"], name="stagechange_to_idx"),
            # Days in stage over a period, read from the index alone (analytics).
            models.Index(
                fields=["changed_at"],
                include=["to_status", "left_at", "sale"],
                condition=Q(left_at__isnull=False),
                name="stagechange_left_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.sale_id}: {self.from_status or '—'} → {self.to_status}"


class StageSetting(models.Model):
    """What managers set per open stage: the base win probability, how long a deal may sit
    in it before it is stale, and the tasks entering it creates."""

    status = models.CharField(max_length=12, choices=Sale.Status.choices, unique=True)
    base_probability = models.PositiveSmallIntegerField(validators=[MaxValueValidator(100)])
    max_days_in_stage = models.PositiveSmallIntegerField(default=30)
    task_titles = models.JSONField(default=list, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(base_probability__lte=100), name="stagesetting_probability_percent"
            ),
        ]

    def __str__(self) -> str:
        return self.get_status_display()


class AutomationRule(models.Model):
    """A manager's rule for the later stages: when a deal in `from_status` meets the
    condition, it moves to `to_status` (or, with no target, is only flagged stale)."""

    class Condition(models.TextChoices):
        CUSTOMER_REPLIED = "customer_replied", "Customer replied (email or meeting logged)"
        NO_ACTIVITY = "no_activity", "No activity for N days"

    from_status = models.CharField(
        max_length=12,
        choices=[(s, s.label) for s in (Sale.Status.PROPOSAL, Sale.Status.NEGOTIATION)],
    )
    condition = models.CharField(max_length=20, choices=Condition.choices)
    days = models.PositiveSmallIntegerField(default=30, help_text="For “No activity for N days”.")
    to_status = models.CharField(
        max_length=12,
        choices=Sale.Status.choices,
        blank=True,
        help_text="Blank: flag the deal as stale, do not move it.",
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["from_status", "id"]

    def __str__(self) -> str:
        target = self.to_status or "stale"
        return f"{self.from_status} → {target} when {self.get_condition_display()}"


class ForecastSnapshot(models.Model):
    """The forecast as it stood on a day, for a rep, a team or everyone: what forecast vs
    actual compares against later."""

    class Scope(models.TextChoices):
        REP = "rep", "Rep"
        TEAM = "team", "Team"
        ALL = "all", "Everyone"

    scope = models.CharField(max_length=4, choices=Scope.choices)
    scope_key = models.CharField(max_length=30)  # "rep:12", "team:3", "all": one per scope
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    team = models.ForeignKey(
        "crm.Team", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    taken_on = models.DateField()
    period_start = models.DateField()
    period_end = models.DateField()
    currency = models.CharField(max_length=3, default="USD")
    deal_count = models.PositiveIntegerField(default=0)
    pipeline_value = models.DecimalField(max_digits=16, decimal_places=2, default=0)
    weighted_value = models.DecimalField(max_digits=16, decimal_places=2, default=0)
    commit_value = models.DecimalField(max_digits=16, decimal_places=2, default=0)
    best_case_value = models.DecimalField(max_digits=16, decimal_places=2, default=0)
    # What was actually won in the period (the scope's WON deals in this currency closed in
    # it), stored by the nightly forecast statistics once the period is over.
    won_count = models.PositiveIntegerField(default=0)
    actual_value = models.DecimalField(max_digits=16, decimal_places=2, default=0)
    actual_computed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-taken_on", "scope", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["scope_key", "taken_on", "period_start", "currency"],
                name="forecastsnapshot_once",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.scope} forecast {self.period_start}–{self.period_end} ({self.taken_on})"


class StageWinRate(models.Model):
    """Per open stage, the historical stage-to-win rate as the nightly forecast statistics
    last computed it (sales.services.forecast.forecast_statistics_compute): of the closed
    deals that ever entered the stage, the share won. Win probabilities read these rows
    instead of every closed deal's stage history."""

    status = models.CharField(max_length=12, choices=Sale.Status.choices, unique=True)
    entered = models.PositiveIntegerField()  # closed deals that ever entered the stage
    won = models.PositiveIntegerField()  # of those, the won ones
    # Percent, to 0.01; empty when no closed deal entered the stage (its base rate stays).
    rate = models.DecimalField(max_digits=5, decimal_places=2, null=True, blank=True)
    # Every closed deal at the computation: the rates are used from HISTORY_MIN_CLOSED on.
    closed_deals = models.PositiveIntegerField()
    computed_at = models.DateTimeField()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=Q(won__lte=F("entered")), name="stagewinrate_won"),
        ]

    def __str__(self) -> str:
        return f"{self.get_status_display()}: {self.rate}% of {self.entered}"


class ForecastCalibration(models.Model):
    """Calibration of the win probabilities, per forecast scope and 10-point band, as the
    nightly forecast statistics last computed it: every entry of a closed deal into an open
    stage is a prediction; how many fell in the band, how many of their deals were won and
    the sum of the predicted probabilities (a scope made of several keys, a manager's reps,
    adds its rows up)."""

    scope_key = models.CharField(max_length=30)  # ForecastSnapshot's: "rep:12", "team:3", "all"
    bucket = models.PositiveSmallIntegerField()  # 0, 10, ..., 90: the band's lower bound
    entry_count = models.PositiveIntegerField()
    won_count = models.PositiveIntegerField()
    predicted_sum = models.DecimalField(max_digits=20, decimal_places=4)  # percent points
    computed_at = models.DateTimeField()

    class Meta:
        ordering = ["scope_key", "bucket"]
        constraints = [
            models.UniqueConstraint(
                fields=["scope_key", "bucket"], name="forecastcalibration_once"
            ),
            models.CheckConstraint(
                condition=Q(won_count__lte=F("entry_count")), name="forecastcalibration_won"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.scope_key} {self.bucket}–{self.bucket + 9}%: {self.entry_count} entries"
