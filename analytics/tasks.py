"""Thin tasks over analytics.dashboard; safe to run twice."""

from celery import shared_task
from django.contrib.auth import get_user_model
from django.db import OperationalError

from analytics.dashboard import DashboardFilters, dashboard_refresh
from crm.errors import PermissionDenied


@shared_task(
    name="analytics.refresh_dashboard",
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=3,
    ignore_result=True,
)
def refresh_dashboard(
    user_id: int, period: int, team_id: int | None, rep_id: int | None, names: list[str]
) -> None:
    """Compute a stale dashboard's blocks again for the user who saw them stale. Nothing
    happens for a user gone or no longer allowed to see those figures."""
    user = get_user_model().objects.filter(pk=user_id, is_active=True).first()
    if user is None:
        return
    filters = DashboardFilters(period=period, team_id=team_id, rep_id=rep_id)
    try:
        dashboard_refresh(user=user, filters=filters, names=tuple(names))
    except PermissionDenied:
        return
