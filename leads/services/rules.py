"""Managers' scoring rules: validated as a whole, saved at once, then every lead rescored
(a RescoreRun carried out by leads.services.rescore in a task)."""

from dataclasses import dataclass

from django.db import transaction

from crm.errors import ValidationFailed
from crm.services import audit_record
from leads.defaults import default_rules
from leads.models import FACTOR_MAX, Factor, RescoreRun, ScoringRule


@dataclass(frozen=True)
class Band:
    min_value: int
    max_value: int | None
    points: int


def validate_bands(bands: list[Band]) -> list[Band]:
    """Sorted bands; refuses negative, reversed or overlapping bands with a clear message."""
    cap = FACTOR_MAX[Factor.COMPANY_SIZE]
    for band in bands:
        if band.min_value < 0 or (band.max_value is not None and band.max_value < 0):
            raise ValidationFailed("Company size bands cannot be negative.")
        if band.max_value is not None and band.max_value < band.min_value:
            raise ValidationFailed(
                f"The band {band.min_value}–{band.max_value} ends before it starts."
            )
        if not 0 <= band.points <= cap:
            raise ValidationFailed(f"Company size points must be between 0 and {cap}.")
    ordered = sorted(bands, key=lambda band: band.min_value)
    for lower, upper in zip(ordered, ordered[1:], strict=False):
        if lower.max_value is None or lower.max_value >= upper.min_value:
            end = "∞" if lower.max_value is None else lower.max_value
            raise ValidationFailed(
                f"Company size bands overlap: {lower.min_value}–{end} and "
                f"{upper.min_value}–{upper.max_value if upper.max_value is not None else '∞'}."
            )
    return ordered


def scoring_rules_update(
    *, actor, keyed_points: dict[tuple[str, str], int], bands: list[Band]
) -> RescoreRun:
    """Replace the rules table and start rescoring every lead in the background."""
    bands = validate_bands(bands)
    for (factor, key), points in keyed_points.items():
        if factor not in Factor.values or factor == Factor.COMPANY_SIZE:
            raise ValidationFailed(f"Unknown factor “{factor}”.")
        if not 0 <= points <= FACTOR_MAX[factor]:
            label = Factor(factor).label
            raise ValidationFailed(
                f"{label} points must be between 0 and {FACTOR_MAX[factor]} (got {points} for "
                f"“{key or 'unknown'}”)."
            )
    from leads.tasks import rescore_all_tracked

    with transaction.atomic():
        before = {str(rule): rule.points for rule in ScoringRule.objects.all()}
        ScoringRule.objects.all().delete()
        rules = [
            ScoringRule(factor=Factor.COMPANY_SIZE, min_value=band.min_value,
                        max_value=band.max_value, points=band.points, updated_by=actor)
            for band in bands
        ] + [
            ScoringRule(factor=factor, key=key, points=points, updated_by=actor)
            for (factor, key), points in keyed_points.items()
            if points
        ]  # fmt: skip
        ScoringRule.objects.bulk_create(rules)
        run = RescoreRun.objects.create(started_by=actor)
        audit_record(
            actor=actor,
            verb="update",
            instance=run,
            changes={"rules_before": before, "rules_after": [str(rule) for rule in rules]},
        )
        transaction.on_commit(lambda: rescore_all_tracked.delay(run.pk))
    return run


@transaction.atomic
def scoring_rules_reset_defaults(*, actor=None) -> list[ScoringRule]:
    """Replace every scoring rule with the defaults a new installation starts with."""
    ScoringRule.objects.all().delete()
    rules = default_rules(ScoringRule)
    for rule in rules:
        rule.updated_by = actor
    return ScoringRule.objects.bulk_create(rules)
