"""A real Celery worker process (Redis, the test database, not eager mode) trains the
model, stores its file where the web process can check and load it, and scores the leads."""

import time

import pytest

from ai.models import LeadScoringModel, TrainingRun
from ai.services.registry import model_load
from ai.tasks import train_models

pytestmark = pytest.mark.worker


@pytest.fixture
def real_worker_env(settings, tmp_path):
    root = tmp_path / "shared-media"
    root.mkdir()
    settings.MEDIA_ROOT = str(root)
    return {"MEDIA_ROOT": str(root), "AI_TREES": "30", "AI_N_JOBS": "1"}


def test_a_real_worker_trains_activates_and_scores(real_worker, lead_history):
    history = lead_history(1500)
    real_worker.worker(pool="solo")
    run = TrainingRun.objects.create()
    with real_worker.routed():
        train_models.apply_async(args=[run.pk])
    deadline = time.monotonic() + 240
    while not TrainingRun.objects.get(pk=run.pk).is_finished:
        assert time.monotonic() < deadline, "the worker never finished the training"
        time.sleep(0.5)
    run.refresh_from_db()
    assert run.status == "done", run.error
    model = LeadScoringModel.objects.get()
    assert list(run.models_trained.all()) == [model]
    assert model.sample_count > 0 and model.metrics["auc_model"] > 0.5
    loaded = model_load(model)  # the worker's file, checked against its sha256 here
    assert loaded.features == model.features
    assert run.outcome.startswith(f"v{model.version} (global model)")
    assert history.customer_ids
