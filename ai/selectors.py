"""Reads for the AI pages: the model registry with its evaluations, training runs, the data
thresholds, and recommendations (filtered by document visibility)."""

from django.conf import settings
from django.db.models import QuerySet

from ai.models import LeadScoringModel, ScoringPreference, TrainingRun
from ai.services.recommend import Recommendation, document_recommendations
from crm.permissions import require_manager
from customers.models import Customer
from sales.models import Sale

MODEL_PAGE_REFUSED = "Only managers and admins can see the scoring models."


def scoring_models(*, user) -> QuerySet[LeadScoringModel]:
    require_manager(user, MODEL_PAGE_REFUSED)
    return LeadScoringModel.objects.select_related("team", "activated_by").order_by("-version")


def training_runs(*, user, limit: int = 20) -> QuerySet[TrainingRun]:
    require_manager(user, MODEL_PAGE_REFUSED)
    return TrainingRun.objects.select_related("started_by").prefetch_related("models_trained")[
        :limit
    ]


def training_run(*, user, run_id: int) -> TrainingRun | None:
    require_manager(user, MODEL_PAGE_REFUSED)
    return TrainingRun.objects.filter(pk=run_id).first()


def scoring_preference() -> ScoringPreference:
    return ScoringPreference.objects.filter(pk=1).first() or ScoringPreference(pk=1)


def thresholds() -> dict:
    return {
        "min_labelled": settings.AI_MIN_LABELLED,
        "min_conversions": settings.AI_MIN_CONVERSIONS,
        "margin": settings.AI_ACTIVATION_MARGIN,
        "window_days": settings.AI_LABEL_WINDOW_DAYS,
        "feature_days": settings.AI_FEATURE_DAYS,
    }


def model_charts(record: LeadScoringModel) -> dict:
    """What the charts of one model's evaluation draw (JSON for Chart.js)."""
    metrics = record.metrics or {}
    return {
        "version": record.version,
        "roc_model": metrics.get("roc_model", []),
        "roc_rules": metrics.get("roc_rules", []),
        "calibration": metrics.get("calibration", []),
        "importance": metrics.get("importance", []),
    }


def customer_recommendations(*, user, customer: Customer) -> list[Recommendation]:
    return document_recommendations(user=user, customer=customer)


def sale_recommendations(*, user, sale: Sale) -> list[Recommendation]:
    return document_recommendations(user=user, customer=sale.customer, sale=sale)
