"""Writes for leads, one module per responsibility:

| module     | owns                                                                        |
|------------|-----------------------------------------------------------------------------|
| rescore    | `leads_rescore` (scores in SQL, grade changes claimed once), `lead_rescore_later`, |
|            | `rescore_run_execute` (the tracked rescoring after the rules change)          |
| activities | `lead_activity_record`, `lead_activities_record_bulk`                         |
| rules      | the managers' scoring rules: `scoring_rules_update`, `scoring_rules_reset_defaults` |
| workflows  | what a grade change does: `workflows_start`, `workflow_run_execute` (hot, warm); |
|            | the emails (cold leads' sequence, hot/warm drafts) are campaigns' reactions     |

The names other apps call are importable from `leads.services` itself.
"""

from leads.services.activities import lead_activities_record_bulk, lead_activity_record
from leads.services.rescore import lead_rescore_later, leads_rescore
from leads.services.rules import scoring_rules_reset_defaults

__all__ = [
    "lead_activities_record_bulk",
    "lead_activity_record",
    "lead_rescore_later",
    "leads_rescore",
    "scoring_rules_reset_defaults",
]
