"""Queueing a training, apart from ai.services.training, which trains: the pages and beat
import this without pandas and scikit-learn (see ai.services.recommend's _HEAVY)."""

from django.db import transaction

from ai.models import TrainingRun
from crm.permissions import require_manager


def training_run_start(*, actor) -> TrainingRun:
    """Queue a training ("train now"); the page follows its progress."""
    from ai.tasks import train_models

    if actor is not None:
        require_manager(actor, "Only managers and admins can train the scoring model.")
    with transaction.atomic():
        run = TrainingRun.objects.create(started_by=actor if getattr(actor, "pk", None) else None)
        run_id = run.pk
        transaction.on_commit(lambda: train_models.delay(run_id))
    return run


def nightly_training_start() -> TrainingRun:
    return training_run_start(actor=None)
