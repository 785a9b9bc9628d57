"""Training lead-scoring models and deciding, honestly, whether to use them.

1. The labelled leads (ai.features) are split by time: the oldest 80% train, the most
   recent 20% test; no test lead is ever seen in training.
2. A RandomForest (class_weight="balanced", bounded n_jobs) learns from the older 80% of
   the training leads and is calibrated with CalibratedClassifierCV (Platt scaling) on
   the newer 20% (a FrozenEstimator: one forest fit, and its explanations are exact).
3. Model and rule score are compared on the same held-out leads: ROC AUC, Brier score
   (the rule score is turned into a probability by an isotonic fit on the training leads,
   which keeps its ranking and so its AUC), precision and lift in the top decile.
4. The model becomes active only when its AUC beats the rules' by AI_ACTIVATION_MARGIN,
   its Brier score is no worse, and the AUC gain is no accident (the 5th percentile of a
   paired bootstrap of the gain is above zero); otherwise it stays a candidate with the
   reason. Below AI_MIN_LABELLED labelled leads or AI_MIN_CONVERSIONS conversions no
   model is trained.

A team with enough data of its own gets its own model (its leads use it once active);
the others use the global one.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import RandomForestClassifier
from sklearn.frozen import FrozenEstimator
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import brier_score_loss, roc_auc_score, roc_curve

from ai.features import Dataset, labelled_dataset
from ai.models import LeadScoringModel, TrainingRun
from ai.services.registry import model_activate, model_store
from crm.models import Notification, Team
from crm.notifications import Notice
from crm.reactions import Event, react
from crm.roles import MANAGER_GROUP

logger = logging.getLogger(__name__)
BOOTSTRAP_ROUNDS = 200
CALIBRATION_FRACTION = 0.2  # of the training leads, the newest: they fit the calibration
Progress = Callable[[int, str], None]


@dataclass
class Readiness:
    labelled: int
    conversions: int
    min_labelled: int
    min_conversions: int

    @property
    def enough(self) -> bool:
        return self.labelled >= self.min_labelled and self.conversions >= self.min_conversions

    @property
    def shortfall(self) -> str:
        missing = []
        if self.labelled < self.min_labelled:
            missing.append(f"{self.min_labelled - self.labelled} more labelled leads")
        if self.conversions < self.min_conversions:
            missing.append(f"{self.min_conversions - self.conversions} more conversions")
        return " and ".join(missing)

    def as_dict(self) -> dict:
        return {
            "labelled": self.labelled,
            "conversions": self.conversions,
            "min_labelled": self.min_labelled,
            "min_conversions": self.min_conversions,
        }


def readiness(labels: pd.Series) -> Readiness:
    return Readiness(
        labelled=int(len(labels)),
        conversions=int(labels.sum()),
        min_labelled=settings.AI_MIN_LABELLED,
        min_conversions=settings.AI_MIN_CONVERSIONS,
    )


@dataclass
class Split:
    train: np.ndarray  # positions into the dataset, oldest leads
    test: np.ndarray  # the most recent leads
    split_age: float  # days before now of the first test lead's creation


def time_split(created_age: pd.Series, fraction: float) -> Split:
    """Oldest (1 - fraction) of the leads train, the most recent `fraction` test. Leads
    created at the same moment stay on one side."""
    ages = created_age.to_numpy()
    order = np.argsort(-ages, kind="stable")  # oldest first
    n_test = max(1, int(round(len(ages) * fraction)))
    boundary = ages[order[len(ages) - n_test]]
    train = np.flatnonzero(ages > boundary)
    test = np.flatnonzero(ages <= boundary)
    return Split(train=train, test=test, split_age=float(boundary))


@dataclass
class Evaluation:
    metrics: dict = field(default_factory=dict)
    passed: bool = False
    reason: str = ""


def _top_decile(scores: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """(precision, lift) among the top 10% by score."""
    n = max(1, int(np.ceil(len(scores) * 0.1)))
    top = np.argsort(-scores, kind="stable")[:n]
    precision = float(labels[top].mean())
    base = float(labels.mean()) or 1.0
    return precision, precision / base


def _deciles(scores: np.ndarray, labels: np.ndarray, probabilities: np.ndarray | None) -> list:
    order = np.argsort(-scores, kind="stable")
    base = float(labels.mean()) or 1.0
    rows = []
    for number, part in enumerate(np.array_split(order, 10), start=1):
        if not len(part):
            continue
        rate = float(labels[part].mean())
        row = {"decile": number, "leads": int(len(part)), "conversions": int(labels[part].sum()),
               "rate": rate, "lift": rate / base}  # fmt: skip
        if probabilities is not None:
            row["predicted"] = float(probabilities[part].mean())
        rows.append(row)
    return rows


def _roc_points(labels: np.ndarray, scores: np.ndarray, points: int = 60) -> list:
    fpr, tpr, _ = roc_curve(labels, scores)
    keep = np.unique(np.linspace(0, len(fpr) - 1, min(points, len(fpr))).astype(int))
    return [[round(float(fpr[i]), 4), round(float(tpr[i]), 4)] for i in keep]


def _auc_gain_low(labels, model_scores, rule_scores, seed: int = 0) -> float:
    """5th percentile of the AUC gain over paired bootstrap resamples of the test leads."""
    rng = np.random.default_rng(seed)
    n = len(labels)
    gains = []
    for _ in range(BOOTSTRAP_ROUNDS):
        sample = rng.integers(0, n, n)
        if labels[sample].min() == labels[sample].max():
            continue
        gains.append(
            roc_auc_score(labels[sample], model_scores[sample])
            - roc_auc_score(labels[sample], rule_scores[sample])
        )
    return float(np.percentile(gains, 5)) if gains else float("-inf")


def evaluate(
    *, labels: np.ndarray, model_probabilities: np.ndarray, rule_scores: np.ndarray,
    rule_probabilities: np.ndarray, margin: float,
) -> Evaluation:  # fmt: skip
    """Model against rules on the same held-out leads, and the activation decision."""
    metrics: dict = {"test_leads": int(len(labels)), "test_conversions": int(labels.sum()),
                     "base_rate": float(labels.mean())}  # fmt: skip
    if labels.min() == labels.max():
        return Evaluation(metrics, False, "The held-out leads are all of one outcome.")
    auc_model = float(roc_auc_score(labels, model_probabilities))
    auc_rules = float(roc_auc_score(labels, rule_scores))
    brier_model = float(brier_score_loss(labels, model_probabilities))
    brier_rules = float(brier_score_loss(labels, rule_probabilities))
    precision_model, lift_model = _top_decile(model_probabilities, labels)
    precision_rules, lift_rules = _top_decile(rule_scores.astype(float), labels)
    gain_low = _auc_gain_low(labels, model_probabilities, rule_scores)
    metrics.update(
        auc_model=auc_model, auc_rules=auc_rules, brier_model=brier_model,
        brier_rules=brier_rules, precision_top_decile_model=precision_model,
        precision_top_decile_rules=precision_rules, lift_top_decile_model=lift_model,
        lift_top_decile_rules=lift_rules, auc_gain_p5=gain_low, margin=margin,
        roc_model=_roc_points(labels, model_probabilities),
        roc_rules=_roc_points(labels, rule_scores),
        calibration=_deciles(model_probabilities, labels, model_probabilities),
        lift_model=_deciles(model_probabilities, labels, None),
        lift_rules=_deciles(rule_scores.astype(float), labels, None),
    )  # fmt: skip
    reasons = []
    if auc_model < auc_rules + margin:
        reasons.append(
            f"AUC {auc_model:.3f} does not beat the rule score's {auc_rules:.3f} by {margin:.2f}"
        )
    if brier_model > brier_rules:
        reasons.append(f"Brier score {brier_model:.4f} is worse than the rules' {brier_rules:.4f}")
    if not reasons and gain_low <= 0:
        reasons.append(
            f"the AUC gain is not reliable (5th percentile of the bootstrap: {gain_low:+.3f})"
        )
    if reasons:
        return Evaluation(metrics, False, "Not activated: " + "; ".join(reasons) + ".")
    return Evaluation(
        metrics, True,
        f"Activated: AUC {auc_model:.3f} vs {auc_rules:.3f} for the rules, Brier "
        f"{brier_model:.4f} vs {brier_rules:.4f}.",
    )  # fmt: skip


def _forest(random_state: int) -> RandomForestClassifier:
    return RandomForestClassifier(
        n_estimators=settings.AI_TREES,
        max_depth=12,
        min_samples_leaf=10,
        max_features="sqrt",
        class_weight="balanced",
        n_jobs=max(1, min(settings.AI_N_JOBS, 2)),
        random_state=random_state,
    )


@dataclass
class Trained:
    calibrated: CalibratedClassifierCV
    split: Split
    evaluation: Evaluation
    train_count: int
    test_count: int


def fit_and_evaluate(dataset: Dataset, *, random_state: int = 0) -> Trained:
    """Time split, calibrated forest on the older leads, comparison on the newer ones."""
    X = dataset.features.to_numpy(dtype=np.float32)
    y = dataset.labels.to_numpy(dtype=int)
    rules = dataset.features["rule_score"].to_numpy(dtype=float)
    split = time_split(dataset.created_age, settings.AI_TEST_FRACTION)
    train, test = split.train, split.test
    if y[train].min() == y[train].max():
        raise _NotTrainable("The training leads are all of one outcome.")
    # The forest learns from the older training leads, the calibration from the newer
    # ones (time order again): one forest fit instead of one per cross-validation fold.
    by_age = train[np.argsort(-dataset.created_age.to_numpy()[train], kind="stable")]
    n_fit = int(len(by_age) * (1 - CALIBRATION_FRACTION))
    fit, calibration = by_age[:n_fit], by_age[n_fit:]
    if y[fit].min() == y[fit].max() or y[calibration].min() == y[calibration].max():
        raise _NotTrainable("Too few conversions to both train and calibrate.")
    forest = _forest(random_state).fit(X[fit], y[fit])
    # Platt scaling: strictly increasing, so every factor that moves the forest moves the
    # calibrated probability too (isotonic steps would flatten many leads' explanations).
    method = "sigmoid"
    calibrated = CalibratedClassifierCV(FrozenEstimator(forest), method=method)
    calibrated.fit(X[calibration], y[calibration])
    # Same calibration helper for both: probabilities of the forest through the calibrator.
    from ai.services.registry import LoadedModel

    model = LoadedModel(0, calibrated, list(dataset.features.columns))
    probabilities = model.predict(X[test])
    rule_calibration = IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1)
    rule_calibration.fit(rules[train], y[train])
    evaluation = evaluate(
        labels=y[test],
        model_probabilities=probabilities,
        rule_scores=rules[test],
        rule_probabilities=rule_calibration.predict(rules[test]),
        margin=settings.AI_ACTIVATION_MARGIN,
    )
    importance = model.forest.feature_importances_
    top = np.argsort(-importance)[:15]
    columns = list(dataset.features.columns)
    evaluation.metrics["importance"] = [[columns[i], float(importance[i])] for i in top]
    evaluation.metrics["passed"] = evaluation.passed
    evaluation.metrics["calibration_method"] = method
    return Trained(calibrated, split, evaluation, len(train), len(test))


class _NotTrainable(Exception):
    pass


def _train_scope(dataset: Dataset, *, team: Team | None, now: datetime) -> LeadScoringModel | None:
    try:
        trained = fit_and_evaluate(dataset)
    except _NotTrainable as error:
        logger.info("ai: %s not trained: %s", team or "global", error)
        return None
    record = model_store(
        calibrated=trained.calibrated,
        features=list(dataset.features.columns),
        team=team,
        trained_at=now,
        label_definition=dataset.definition.as_dict(),
        sample_count=len(dataset.labels),
        conversion_count=int(dataset.labels.sum()),
        train_count=trained.train_count,
        test_count=trained.test_count,
        metrics=trained.evaluation.metrics,
        reason=trained.evaluation.reason,
    )
    if trained.evaluation.passed:
        model_activate(actor=None, model_id=record.pk)
    return record


def _subset(dataset: Dataset, mask: pd.Series) -> Dataset:
    return Dataset(
        features=dataset.features[mask],
        labels=dataset.labels[mask],
        created_age=dataset.created_age[mask],
        team_id=dataset.team_id[mask],
        definition=dataset.definition,
    )


def models_train(*, now: datetime | None = None, progress: Progress | None = None) -> dict:
    """Train the global model and each team's that has enough data; returns a summary."""
    now = now or timezone.now()
    progress = progress or (lambda percent, step: None)
    progress(5, "Building point-in-time features")
    dataset = labelled_dataset(now=now)
    ready = readiness(dataset.labels)
    summary: dict = {"global": ready.as_dict(), "models": [], "teams": {}}
    if not ready.enough:
        summary["outcome"] = (
            f"No model: {ready.labelled} labelled leads with {ready.conversions} conversions; "
            f"training needs {ready.shortfall}. The rule score stands."
        )
        progress(100, "Not enough data")
        return summary
    progress(30, "Training the global model")
    trained = []
    record = _train_scope(dataset, team=None, now=now)
    if record:
        trained.append(record)
    teams = Team.objects.filter(pk__in=dataset.team_id.dropna().unique().tolist())
    for number, team in enumerate(teams.order_by("pk"), start=1):
        mask = dataset.team_id == team.pk
        team_ready = readiness(dataset.labels[mask])
        summary["teams"][team.name] = team_ready.as_dict()
        if not team_ready.enough:
            continue
        progress(min(90, 30 + 60 * number // (len(teams) + 1)), f"Training {team.name}'s model")
        record = _train_scope(_subset(dataset, mask), team=team, now=now)
        if record:
            trained.append(record)
    summary["models"] = [record.pk for record in trained]
    summary["outcome"] = " ".join(f"v{r.version} ({r.scope_name}): {r.reason}" for r in trained)
    progress(100, "Done")
    return summary


def training_run_execute(*, run_id: int) -> TrainingRun | None:
    """Carry out a queued training once (a repeated delivery finds it claimed)."""
    claimed = TrainingRun.objects.filter(pk=run_id, status=TrainingRun.Status.QUEUED).update(
        status=TrainingRun.Status.RUNNING, progress=1, step="Starting"
    )
    if not claimed:
        return None

    def progress(percent: int, step: str) -> None:
        TrainingRun.objects.filter(pk=run_id).update(progress=percent, step=step[:200])

    try:
        summary = models_train(progress=progress)
    except Exception as error:
        TrainingRun.objects.filter(pk=run_id).update(
            status=TrainingRun.Status.FAILED, error=str(error)[:2000], finished_at=timezone.now()
        )
        raise
    # One transaction: a page (or a test) that sees the run done sees its models with it.
    with transaction.atomic():
        run = TrainingRun.objects.get(pk=run_id)
        run.status = TrainingRun.Status.DONE
        run.progress = 100
        run.outcome = summary.get("outcome", "")
        run.data_summary = {k: v for k, v in summary.items() if k != "models"}
        run.finished_at = timezone.now()
        run.save(update_fields=["status", "progress", "outcome", "data_summary", "finished_at"])
        run.models_trained.set(summary.get("models", []))
        if summary.get("models"):
            _trained_notify(run)
    return run


def _trained_notify(run: TrainingRun) -> None:
    """The managers (and whoever asked for the training), crm.reactions MODEL_TRAINED."""
    managers = set(
        get_user_model()
        .objects.filter(groups__name=MANAGER_GROUP, is_active=True)
        .values_list("pk", flat=True)
    )
    notice = Notice(
        kind=Notification.Kind.MODEL_TRAINED,
        recipient_ids=sorted(managers | ({run.started_by_id} - {None})),
        text=f"Lead scoring training finished: {run.outcome}"[:300],
        link=reverse("ai:models"),
        obj=run,
    )
    react(Event.MODEL_TRAINED, notices=[notice])
