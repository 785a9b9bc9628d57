"""Writes of the sales app, one module per topic; every function is importable from here.

| module   | writes                                                                  |
|----------|-------------------------------------------------------------------------|
| deals    | deals and their activities, stage changes, deals_advance_later           |
| tasks    | tasks: a person's, a workflow's, a stage's on entry, stale reminders     |
| pipeline | the stage settings and automation rules                                  |
| forecast | the weekly forecast snapshots, the nightly statistics (rates, calibration) |

sales.automation calls these; they never call it back (they enqueue its task instead).
"""

from sales.services.deals import (
    SALE_AUDITED_FIELDS,
    StageConflict,
    deals_advance_later,
    sale_activity_add,
    sale_change_stage,
    sale_create,
    sale_delete,
    sale_input_check,
    sale_update,
)
from sales.services.forecast import forecast_snapshots_take, forecast_statistics_compute
from sales.services.pipeline import pipeline_settings_reset_defaults, pipeline_settings_save
from sales.services.tasks import (
    stage_tasks_create,
    stale_reminders_create,
    task_complete,
    task_create,
    task_create_automatic,
    task_reopen,
)

__all__ = [
    "SALE_AUDITED_FIELDS",
    "StageConflict",
    "deals_advance_later",
    "forecast_snapshots_take",
    "forecast_statistics_compute",
    "pipeline_settings_reset_defaults",
    "pipeline_settings_save",
    "sale_activity_add",
    "sale_change_stage",
    "sale_create",
    "sale_delete",
    "sale_input_check",
    "sale_update",
    "stage_tasks_create",
    "stale_reminders_create",
    "task_complete",
    "task_create",
    "task_create_automatic",
    "task_reopen",
]
