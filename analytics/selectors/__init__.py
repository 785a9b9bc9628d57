"""The spec's metrics, each one or a few SQL queries over the other apps' data (no copies of
it, no Python loops over querysets), one module per topic:

| module    | reads                                                                       |
|-----------|-----------------------------------------------------------------------------|
| periods   | calendar months, won deals in a window, deals closing soon                  |
| clv       | customer lifetime value: lifespan, per customer and currency, top, segment  |
| churn     | churn probability and reasons, the customers most at risk                   |
| deal_flow | sales velocity (period and per month), the win/loss funnel, days in stage   |
| revenue   | won revenue over 30/90/365 days and per month                               |
| pipeline  | the open pipeline per stage and the deals closing soon                      |
| reps      | the top reps, a user's own numbers this month                               |
| drilldown | the deals behind a dashboard number                                         |

Every function takes the asking user and counts only what crm.permissions lets them see,
narrowed to an AnalyticsScope (crm.permissions.analytics). Money is per currency: totals
group by currency and are never added across currencies.
"""
