"""Scoring leads with the active model, answering leads' rescoring (crm.reactions
LEAD_AI_SCORES): for each lead its calibrated conversion probability in percent, which
model gave it (its team's, or the global one) and the factors pushing it up and down.

No active model, or a model file that fails its sha256 check: no answer, and the rule
score alone grades the leads.
"""

import logging
from datetime import datetime

import numpy as np

from ai.explain import calibrated_contributions
from ai.features import current_features, describer
from ai.models import LeadScoringModel, ScoringPreference
from ai.services.registry import ModelFileRefused, loaded_models_keep, model_load

logger = logging.getLogger(__name__)
TOP_FACTORS = 3
MIN_POINTS = 0.05  # smaller moves are not shown


def grading_source() -> str:
    preference = ScoringPreference.objects.filter(pk=1).first()
    return preference.grading_source if preference else ScoringPreference.Source.RULES


def _explanations(record, columns, X, contributions, base, probabilities) -> list[dict]:
    """Each lead's top factors up and down, in words and percentage points (the arrays
    are sorted once for all leads; only the shown factors are put into words)."""
    points = contributions * 100
    ups = np.argsort(-points, axis=1)[:, :TOP_FACTORS]
    downs = np.argsort(points, axis=1)[:, :TOP_FACTORS]
    describers = [describer(column) for column in columns]
    model = f"{record.scope_name} v{record.version}"
    base_points = round(base * 100, 1)
    out = []
    for row in range(len(X)):
        values, row_points = X[row], points[row]
        out.append({
            "model": model,
            "model_id": record.pk,
            "probability": round(float(probabilities[row]), 4),
            "base": base_points,
            "up": [[describers[i](float(values[i])), round(float(row_points[i]), 1)]
                   for i in ups[row] if row_points[i] >= MIN_POINTS],
            "down": [[describers[i](float(values[i])), round(float(row_points[i]), 1)]
                     for i in downs[row] if row_points[i] <= -MIN_POINTS],
        })  # fmt: skip
    return out


def lead_ai_scores(*, customer_ids: list[int], now: datetime) -> dict[int, dict]:
    """{customer id: {"score": percent, "explanation": {...}, "grades": bool}} for the leads
    an active model covers (leads.services.rescore writes them on LeadScore)."""
    models = list(LeadScoringModel.objects.active().select_related("team"))
    if not models or not customer_ids:
        return {}
    loaded_models_keep({record.pk for record in models})
    loaded = {}
    for record in models:
        try:
            loaded[record.team_id] = (record, model_load(record))
        except ModelFileRefused as error:
            logger.error("ai: %s; the rule score stands", error)
    if not loaded:
        return {}
    features, teams = current_features(customer_ids, now=now)
    if features.empty:
        return {}
    grades = grading_source() == ScoringPreference.Source.MODEL
    answers: dict[int, dict] = {}
    # Each lead: its team's model when active, else the global one, else none.
    team_of = teams.reindex(features.index)
    chosen = team_of.map(lambda team: team if team in loaded else None)
    for team_id, group in features.groupby(chosen.fillna(-1).to_numpy()):
        key = None if team_id == -1 else int(team_id)
        if key not in loaded:
            continue
        record, model = loaded[key]
        X = group[model.features].to_numpy(dtype=np.float32)
        probabilities, contributions, base = calibrated_contributions(
            model.forest, model.calibrate, X
        )
        explanations = _explanations(record, model.features, X, contributions, base, probabilities)
        for row, customer_id in enumerate(group.index):
            answers[int(customer_id)] = {
                "score": int(round(probabilities[row] * 100)),
                "explanation": explanations[row],
                "grades": grades,
            }
    return answers
