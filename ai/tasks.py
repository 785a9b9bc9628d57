from celery import shared_task
from django.db import OperationalError

from ai.services.training_runs import nightly_training_start


@shared_task(name="ai.train_models", ignore_result=True, time_limit=2 * 60 * 60)
def train_models(run_id: int) -> None:
    """One queued training run ("train now" or nightly); a repeated delivery does nothing."""
    # Imported here: a worker loads pandas and scikit-learn when it first trains, not when
    # it starts (see ai.services.recommend's _HEAVY).
    from ai.services.training import training_run_execute

    training_run_execute(run_id=run_id)


@shared_task(name="ai.train_nightly", ignore_result=True)
def train_nightly() -> None:
    nightly_training_start()


@shared_task(
    name="ai.rescore_all_leads",
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=3,
    ignore_result=True,
    time_limit=60 * 60,
)
def rescore_all_leads() -> None:
    """After a model is activated or deactivated: every lead's model score, graded without
    the grade workflows (a new model must not reassign and email every lead at once)."""
    from leads.services.rescore import leads_rescore

    leads_rescore(start_workflows=False)


@shared_task(
    name="ai.refresh_recommendation_stats",
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=3,
    ignore_result=True,
)
def refresh_recommendation_stats() -> None:
    from ai.services.recommend import engagement_stats_refresh

    engagement_stats_refresh()
