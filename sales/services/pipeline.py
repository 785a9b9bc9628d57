"""Writes for the pipeline's settings: the stage settings and the automation rules."""

from typing import Any

from django.db import transaction

from crm.permissions.core import require_manager
from crm.services import audit_record, diff_snapshots, model_snapshot
from sales.defaults import RULE_DEFAULTS, STAGE_DEFAULTS
from sales.models import AutomationRule, StageSetting

SETTINGS_REFUSED = "Only managers and admins change the pipeline settings."


@transaction.atomic
def pipeline_settings_save(*, actor, stages: list[tuple[Any, dict]], rules) -> None:
    """Stage settings and automation rules, saved together with an audit row each."""
    require_manager(actor, SETTINGS_REFUSED)
    for stage, data in stages:
        # From the database: the form's validation has already put the new values on `stage`.
        saved = type(stage).objects.get(pk=stage.pk)
        before = model_snapshot(saved, ["base_probability", "max_days_in_stage", "task_titles"])
        stage.base_probability = data["base_probability"]
        stage.max_days_in_stage = data["max_days_in_stage"]
        stage.task_titles = data["task_titles_text"]
        stage.updated_by = actor
        changes = diff_snapshots(
            before, model_snapshot(stage, ["base_probability", "max_days_in_stage", "task_titles"])
        )
        if changes:
            stage.save()
            audit_record(actor=actor, verb="update", instance=stage, changes=changes)
    for rule in rules.save(commit=False):
        if rule.pk is None:
            rule.created_by = actor
        rule.save()
        audit_record(actor=actor, verb="update", instance=rule, changes={"rule": str(rule)})
    for rule in rules.deleted_objects:
        audit_record(actor=actor, verb="delete", instance=rule, changes={"rule": str(rule)})
        rule.delete()


def pipeline_settings_reset_defaults() -> None:
    """The stage settings and rules a new installation starts with (the data migration's)."""
    for status, (probability, max_days, titles) in STAGE_DEFAULTS.items():
        StageSetting.objects.update_or_create(
            status=status,
            defaults={
                "base_probability": probability,
                "max_days_in_stage": max_days,
                "task_titles": titles,
            },
        )
    AutomationRule.objects.all().delete()
    AutomationRule.objects.bulk_create(
        AutomationRule(from_status=f, condition=c, days=d, to_status=t)
        for f, c, d, t in RULE_DEFAULTS
    )
