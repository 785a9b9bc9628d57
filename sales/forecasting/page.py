"""The forecast page: everything it shows for one scope, in a fixed number of queries.
Its work is bounded by the open deals of the scope and period: the figures over all history
(stage-to-win rates, calibration, what past forecasts' periods won) are read as the rows
the nightly statistics stored."""

from datetime import date
from typing import Any

from crm.permissions.forecast import ForecastScope, access_forecast_scope, forecast_scopes
from sales.forecasting.probability import HISTORY_MIN_CLOSED, probability_model
from sales.forecasting.selectors import (
    BEST_CASE_MIN,
    COMMIT_MIN,
    calibration,
    forecast,
    forecast_vs_actual,
)


def _chart(currencies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Weighted vs pipeline per month, one series pair per currency (for Chart.js)."""
    return [
        {
            "currency": row["currency"],
            "labels": [f"{month['month']:%b %Y}" for month in row["months"]],
            "pipeline": [float(month["pipeline_value"]) for month in row["months"]],
            "weighted": [float(month["weighted_value"]) for month in row["months"]],
        }
        for row in currencies
    ]


def forecast_page(
    *, user, scope, period, scopes: list[ForecastScope] | None = None, today: date | None = None
) -> dict[str, Any]:
    """Everything the forecast page shows, in a fixed number of queries: the forecast, its
    chart, forecast vs actual of past snapshots and the calibration, for one scope."""
    scopes = scopes if scopes is not None else forecast_scopes(user)
    scope = access_forecast_scope(user, scope, scopes=scopes)
    model = probability_model()
    result = forecast(
        user=user, scope=scope, period=period, model=model, scopes=scopes, today=today
    )
    return {
        **result,
        "chart": _chart(result["currencies"]),
        "history": forecast_vs_actual(user=user, scope=scope, scopes=scopes, today=today),
        "calibration": calibration(user=user, scope=scope, scopes=scopes),
        # When the nightly statistics (rates, calibration) were computed; None: not yet.
        "statistics_computed_at": model.computed_at,
        "history_min_closed": HISTORY_MIN_CLOSED,
        "commit_min": COMMIT_MIN,
        "best_case_min": BEST_CASE_MIN,
    }
