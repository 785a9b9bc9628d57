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
from ai.features import current_features, describe
from ai.models import LeadScoringModel, ScoringPreference
from ai.services.registry import ModelFileRefused, model_load

logger = logging.getLogger(__name__)
TOP_FACTORS = 3


def grading_source() -> str:
    preference = ScoringPreference.objects.filter(pk=1).first()
    return preference.grading_source if preference else ScoringPreference.Source.RULES


def _explanation(record, columns, values, contributions, base, probability) -> dict:
    order = np.argsort(-np.abs(contributions))
    up, down = [], []
    for i in order:
        points = float(contributions[i]) * 100
        if abs(points) < 0.05:
            break
        target = up if points > 0 else down
        if len(target) < TOP_FACTORS:
            target.append([describe(columns[i], float(values[i])), round(points, 1)])
        if len(up) >= TOP_FACTORS and len(down) >= TOP_FACTORS:
            break
    return {
        "model": f"{record.scope_name} v{record.version}",
        "model_id": record.pk,
        "probability": round(float(probability), 4),
        "base": round(base * 100, 1),
        "up": up,
        "down": down,
    }


def lead_ai_scores(*, customer_ids: list[int], now: datetime) -> dict[int, dict]:
    """{customer id: {"score": percent, "explanation": {...}, "grades": bool}} for the leads
    an active model covers (leads.services.rescore writes them on LeadScore)."""
    models = list(LeadScoringModel.objects.active().select_related("team"))
    if not models or not customer_ids:
        return {}
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
        for row, customer_id in enumerate(group.index):
            answers[int(customer_id)] = {
                "score": int(round(probabilities[row] * 100)),
                "explanation": _explanation(
                    record, model.features, X[row], contributions[row], base, probabilities[row]
                ),
                "grades": grades,
            }
    return answers
