"""Thin tasks over sales.automation and sales.forecasting; safe to run twice."""

from celery import shared_task
from django.db import OperationalError

from sales import automation


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
    automation.stale_reminders_create()
