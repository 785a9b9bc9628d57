"""Forecasting (DESIGN.md "Pipeline"), one module per topic:

| module      | owns                                                                     |
|-------------|--------------------------------------------------------------------------|
| probability | a deal's win probability: the stage rates, the rule, the SQL expression   |
| selectors   | periods, the forecast of a scope, forecast vs actual, calibration        |
| statistics  | the nightly computations over all history (rates, calibration, actuals)  |
| page        | the forecast page's data                                                 |

Whose deals a user may forecast is crm.permissions.forecast's; the weekly snapshot and the
nightly statistics (writes) are sales.services.forecast's. Pages read the statistics'
stored rows, never sales.forecasting.statistics.
"""
