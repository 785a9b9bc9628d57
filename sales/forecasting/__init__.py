"""Forecasting (DESIGN.md "Pipeline"), one module per topic:

| module      | owns                                                                     |
|-------------|--------------------------------------------------------------------------|
| probability | a deal's win probability: the stage rates, the SQL expression, reasons   |
| selectors   | periods, the forecast of a scope, forecast vs actual, calibration        |
| page        | the forecast page's data                                                 |

Whose deals a user may forecast is crm.permissions.forecast's; the weekly snapshot (a
write) is sales.services.forecast's.
"""
