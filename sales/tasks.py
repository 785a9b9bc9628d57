"""Thin tasks over sales.automation and sales.services; safe to run twice."""

from celery import shared_task
from django.db import OperationalError

from sales import automation, services


@shared_task(
    name="sales.advance_deals",
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=5,
    ignore_result=True,
)
def advance_deals(sale_ids: list[int]) -> None:
    """After an event on these deals (activity, stage change, proposal attached)."""
    automation.deals_advance(sale_ids=sale_ids)


@shared_task(name="sales.pipeline_nightly", ignore_result=True, time_limit=60 * 60)
def pipeline_nightly() -> None:
    """Time-based rules (no activity for N days) and stale reminders, for every deal."""
    automation.deals_advance()
    services.stale_reminders_create()


@shared_task(name="sales.forecast_snapshots", ignore_result=True, time_limit=30 * 60)
def forecast_snapshots() -> None:
    """Weekly: the next 90 days' forecast per rep, per team and for everyone, saved for
    forecast vs actual; a second run the same day updates that day's snapshots."""
    services.forecast_snapshots_take()


@shared_task(
    name="sales.forecast_statistics",
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=3,
    ignore_result=True,
    time_limit=30 * 60,
)
def forecast_statistics() -> None:
    """Nightly: the stage-to-win rates and the calibration over all history, stored for the
    forecast page, the deal page and the snapshots to read; a second run replaces the rows."""
    services.forecast_statistics_compute()
