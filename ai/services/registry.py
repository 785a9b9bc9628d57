"""The model registry: storing a trained model with its sha256, loading it only when the
file still has that hash (unpickling is running code: only what this app wrote is loaded),
activating, deactivating and rolling back."""

import hashlib
import logging
import pickle
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.contrib.auth.models import AbstractBaseUser
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from ai.models import LeadScoringModel, ModelStatus
from crm.errors import CrmError, ValidationFailed
from crm.permissions import require_manager
from crm.services import audit_record

logger = logging.getLogger(__name__)
FORMAT = 1


class ModelFileRefused(CrmError):
    """The stored file is missing or does not match the sha256 the database recorded."""


@dataclass
class LoadedModel:
    """A model ready to score: the calibrated classifier, its forest (for explanations) and
    the calibration as a function of the forest's probability."""

    record_id: int
    calibrated: Any
    features: list[str]

    @property
    def forest(self):
        from sklearn.frozen import FrozenEstimator

        estimator = self.calibrated.calibrated_classifiers_[0].estimator
        if isinstance(estimator, FrozenEstimator):  # models since the one-fit calibration
            return estimator.estimator
        return estimator

    def calibrate(self, raw: np.ndarray) -> np.ndarray:
        calibrator = self.calibrated.calibrated_classifiers_[0].calibrators[0]
        return np.clip(calibrator.predict(np.asarray(raw, dtype=float)), 0.0, 1.0)

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.calibrate(self.forest.predict_proba(X)[:, 1])


def model_store(*, calibrated, features: list[str], team=None, **fields) -> LeadScoringModel:
    """Write the model's file and its registry row (as a candidate; activation is separate)."""
    data = pickle.dumps({"format": FORMAT, "calibrated": calibrated, "features": features})
    digest = hashlib.sha256(data).hexdigest()
    with transaction.atomic():
        # One sequence of versions; two trainings at once would collide on the unique
        # version and the second fail (a training run is claimed once, so they do not).
        version = (LeadScoringModel.objects.aggregate(top=Max("version"))["top"] or 0) + 1
        record = LeadScoringModel(
            version=version,
            team=team,
            features=features,
            sha256=digest,
            status=ModelStatus.CANDIDATE,
            **fields,
        )
        record.file.save(f"model-v{version}-{digest[:12]}.pkl", ContentFile(data), save=False)
        record.save()
    return record


_cache: dict[tuple[int, str], LoadedModel] = {}


def model_load(record: LeadScoringModel) -> LoadedModel:
    """The model of `record`, after checking its file against the stored sha256; loaded
    once per process (unpickling a forest is the expensive part of scoring a few leads)."""
    key = (record.pk, record.sha256)
    if key in _cache:
        return _cache[key]
    try:
        with record.file.open("rb") as handle:
            data = handle.read()
    except (OSError, ValueError) as error:
        raise ModelFileRefused(f"Model v{record.version}: its file cannot be read.") from error
    if hashlib.sha256(data).hexdigest() != record.sha256:
        logger.error("ai model v%s: file hash mismatch, refusing to load", record.version)
        raise ModelFileRefused(f"Model v{record.version}: the file does not match its sha256.")
    payload = pickle.loads(data)  # noqa: S301 - the hash above proves this app wrote it
    loaded = LoadedModel(record.pk, payload["calibrated"], payload["features"])
    _cache[key] = loaded
    return loaded


def loaded_models_keep(record_ids: set[int]) -> None:
    """Forget the loaded models other than these (the active ones): the global model and
    every team's stay loaded together, a retired one does not linger in memory."""
    for key in [key for key in _cache if key[0] not in record_ids]:
        del _cache[key]


def model_activate(*, actor: AbstractBaseUser | None, model_id: int) -> LeadScoringModel:
    """Make this version the one in use for its scope (global or its team); the previous
    one is retired. Only a version that beat the rule score may be used (a rollback picks
    an earlier one that did)."""
    if actor is not None:
        require_manager(actor, "Only managers and admins can activate a scoring model.")
    with transaction.atomic():
        record = LeadScoringModel.objects.select_for_update().filter(pk=model_id).first()
        if record is None:
            raise ValidationFailed("This model does not exist.")
        if not record.metrics.get("passed"):
            raise ValidationFailed(
                f"v{record.version} did not beat the rule score on held-out leads, so it "
                "cannot be used: " + (record.reason or "no evaluation")
            )
        if record.is_active:
            return record
        LeadScoringModel.objects.select_for_update().filter(
            team=record.team, is_active=True
        ).update(is_active=False, status=ModelStatus.RETIRED)
        record.is_active = True
        record.status = ModelStatus.ACTIVE
        record.activated_at = timezone.now()
        record.activated_by = actor if getattr(actor, "pk", None) else None
        record.save(update_fields=["is_active", "status", "activated_at", "activated_by"])
        audit_record(actor=actor, verb="update", instance=record, changes={"is_active": True})
        _rescore_all_later()
    return record


def model_deactivate(*, actor: AbstractBaseUser | None, model_id: int) -> LeadScoringModel:
    """Stop using this version; its scope falls back (a team to the global model, the global
    model to the rule score)."""
    if actor is not None:
        require_manager(actor, "Only managers and admins can deactivate a scoring model.")
    with transaction.atomic():
        record = LeadScoringModel.objects.select_for_update().filter(pk=model_id).first()
        if record is None:
            raise ValidationFailed("This model does not exist.")
        if not record.is_active:
            return record
        record.is_active = False
        record.status = ModelStatus.RETIRED
        record.save(update_fields=["is_active", "status"])
        audit_record(actor=actor, verb="update", instance=record, changes={"is_active": False})
        _rescore_all_later()
    return record


def _rescore_all_later() -> None:
    """Every lead gets the new model's score (or loses the old one) after commit; grades
    move without the grade workflows, as at go-live (a new model must not email everyone)."""
    from ai.tasks import rescore_all_leads

    transaction.on_commit(lambda: rescore_all_leads.delay())
