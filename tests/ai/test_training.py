"""Training: the time split, the thresholds, and activation only when the model measurably
beats the rule score on leads it never saw."""

import numpy as np
import pytest
from django.utils import timezone

from ai.explain import calibrated_contributions, forest_contributions
from ai.features import labelled_dataset
from ai.models import LeadScoringModel, ModelStatus
from ai.services.registry import model_load
from ai.services.scoring import lead_ai_scores
from ai.services.training import models_train, time_split
from customers.models import Customer
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def test_time_split_never_puts_a_test_lead_in_training(lead_history, settings):
    lead_history(600)
    dataset = labelled_dataset(now=timezone.now())
    split = time_split(dataset.created_age, settings.AI_TEST_FRACTION)
    train_ids = set(dataset.features.index[split.train])
    test_ids = set(dataset.features.index[split.test])
    assert not train_ids & test_ids
    assert len(train_ids) + len(test_ids) == len(dataset.labels)
    # Every training lead is older than every test lead.
    assert dataset.created_age.iloc[split.train].min() > dataset.created_age.iloc[split.test].max()
    assert abs(len(test_ids) / len(dataset.labels) - 0.2) < 0.01


def test_below_the_thresholds_there_is_no_model(lead_history, settings):
    lead_history(150)
    summary = models_train()
    assert not LeadScoringModel.objects.exists()
    ready = summary["global"]
    assert ready["labelled"] < settings.AI_MIN_LABELLED
    assert "No model" in summary["outcome"]
    assert (
        f"{settings.AI_MIN_LABELLED - ready['labelled']} more labelled leads" in summary["outcome"]
    )


def test_below_the_conversions_threshold_there_is_no_model(lead_history, settings):
    lead_history(600)
    labels = labelled_dataset(now=timezone.now()).labels
    assert len(labels) >= settings.AI_MIN_LABELLED  # enough leads: only conversions are short
    settings.AI_MIN_CONVERSIONS = int(labels.sum()) + 7
    summary = models_train()
    assert not LeadScoringModel.objects.exists()
    assert summary["global"]["conversions"] == settings.AI_MIN_CONVERSIONS - 7
    assert "No model" in summary["outcome"] and "The rule score stands" in summary["outcome"]
    assert "training needs 7 more conversions." in summary["outcome"]
    assert "labelled leads" not in summary["outcome"].split("needs")[1]


def test_on_random_labels_the_model_is_not_activated(lead_history):
    lead_history(2500, signal=False)
    models_train()
    model = LeadScoringModel.objects.get()
    assert not model.is_active
    assert model.status == ModelStatus.CANDIDATE
    assert model.reason.startswith("Not activated")
    assert model.metrics["passed"] is False
    assert abs(model.metrics["auc_model"] - 0.5) < 0.1


def test_a_model_that_beats_the_rules_is_activated_with_its_evaluation(lead_history, settings):
    lead_history(3000)
    summary = models_train()
    model = LeadScoringModel.objects.get()
    metrics = model.metrics
    assert model.is_active and model.status == ModelStatus.ACTIVE, model.reason
    assert metrics["auc_model"] >= metrics["auc_rules"] + settings.AI_ACTIVATION_MARGIN
    assert metrics["brier_model"] <= metrics["brier_rules"]
    assert model.test_count + model.train_count == model.sample_count
    assert len(metrics["calibration"]) == 10 and len(metrics["lift_model"]) == 10
    assert model.label_definition["window_days"] == settings.AI_LABEL_WINDOW_DAYS
    assert model.features == list(labelled_dataset(now=timezone.now()).features.columns)
    assert "Activated" in summary["outcome"]

    # Explanations add up: base + contributions = the forest's and the calibrated output.
    loaded = model_load(model)
    X = labelled_dataset(now=timezone.now()).features.to_numpy(dtype=np.float32)[:300]
    contributions, base = forest_contributions(loaded.forest, X)
    np.testing.assert_allclose(
        base + contributions.sum(axis=1), loaded.forest.predict_proba(X)[:, 1], atol=1e-9
    )
    probabilities, scaled, calibrated_base = calibrated_contributions(
        loaded.forest, loaded.calibrate, X
    )
    np.testing.assert_allclose(calibrated_base + scaled.sum(axis=1), probabilities, atol=1e-9)
    np.testing.assert_allclose(probabilities, loaded.calibrated.predict_proba(X)[:, 1], atol=1e-9)


def test_each_contribution_is_the_sum_of_its_features_moves_along_the_paths():
    """Per feature, not only in total: walk every tree's path by hand for a few samples."""
    from sklearn.ensemble import RandomForestClassifier

    rng = np.random.default_rng(3)
    X = rng.normal(size=(400, 5)).astype(np.float32)
    y = (X[:, 0] + 0.5 * X[:, 2] > 0).astype(int)
    forest = RandomForestClassifier(n_estimators=7, max_depth=5, random_state=1).fit(X, y)
    contributions, base = forest_contributions(forest, X[:20])
    expected = np.zeros_like(contributions)
    for estimator in forest.estimators_:
        tree = estimator.tree_
        rate = tree.value[:, 0, 1] / tree.value[:, 0, :].sum(axis=1)
        for row, path in enumerate(estimator.decision_path(X[:20])):
            nodes = path.indices  # root first: ids grow from parent to child
            for parent, child in zip(nodes[:-1], nodes[1:], strict=True):
                expected[row, tree.feature[parent]] += rate[child] - rate[parent]
    np.testing.assert_allclose(contributions, expected / len(forest.estimators_), atol=1e-12)
    assert abs(contributions[:, 1]).sum() < abs(contributions[:, 0]).sum()


def test_a_team_with_enough_history_gets_its_own_model_and_its_leads_use_it(
    lead_history, rep, other_rep, teams
):
    lead_history(3000, owner_ids=[rep.pk])  # North's past leads: enough for a model
    lead_history(100, owner_ids=[other_rep.pk], seed=18)  # South's: too few
    summary = models_train()

    north = LeadScoringModel.objects.get(team=teams["mine"])
    global_model = LeadScoringModel.objects.get(team=None)
    assert north.is_active and global_model.is_active, (north.reason, global_model.reason)
    assert north.sample_count < global_model.sample_count  # North's leads only
    assert not LeadScoringModel.objects.filter(team=teams["other"]).exists()
    assert summary["teams"]["South"]["labelled"] < summary["teams"]["North"]["labelled"]

    north_lead = CustomerFactory(owner=rep, lifecycle_stage=Customer.LifecycleStage.LEAD)
    south_lead = CustomerFactory(owner=other_rep, lifecycle_stage=Customer.LifecycleStage.LEAD)
    scores = lead_ai_scores(customer_ids=[north_lead.pk, south_lead.pk], now=timezone.now())
    assert scores[north_lead.pk]["explanation"]["model_id"] == north.pk
    assert scores[south_lead.pk]["explanation"]["model_id"] == global_model.pk


@pytest.mark.django_db(transaction=True)
def test_a_run_is_seen_done_only_with_its_models(lead_history, monkeypatch):
    """Another connection (the run's page polling) never sees a run done without the models
    it trained: the two are committed together."""
    from django.db import connections

    from ai.models import TrainingRun
    from ai.services import training

    lead_history(1500)
    run = TrainingRun.objects.create()
    seen: list[tuple[str, int]] = []
    original_set = type(run.models_trained).set

    def observed_set(manager, objs, **kwargs):
        other = connections.create_connection("default")
        try:
            with other.cursor() as cursor:
                cursor.execute(
                    "SELECT status, (SELECT count(*) FROM ai_trainingrun_models_trained m "
                    "WHERE m.trainingrun_id = r.id) FROM ai_trainingrun r WHERE r.id = %s",
                    [run.pk],
                )
                seen.append(cursor.fetchone())
        finally:
            other.close()
        return original_set(manager, objs, **kwargs)

    monkeypatch.setattr(type(run.models_trained), "set", observed_set)
    done = training.training_run_execute(run_id=run.pk)
    assert done.status == TrainingRun.Status.DONE and done.models_trained.exists()
    assert seen and seen[0][0] != TrainingRun.Status.DONE  # not yet, while its models are set
