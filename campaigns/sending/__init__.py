"""The sending pipeline: resolve a run's recipients, then send them in batches, exactly once
per recipient even when a worker is killed mid-send.

Provider-neutral machinery, one responsibility a module:

| module       | owns                                                                       |
|--------------|----------------------------------------------------------------------------|
| runs         | starting a run (recipients resolved once), pausing, cancelling, finishing, |
|              | giving up after retries, stalled runs, the key of a cron firing            |
| sender       | `run_send`: one worker's loop over a run's batches                         |
| leases       | one sender per run at a time                                               |
| batches      | claiming, sending, marking sent / re-queued / failed, judging in-flight    |
|              | batches after a crash                                                      |
| recipients   | the audience (INSERT ... SELECT) and each recipient's template variables   |
| counters     | the campaign counters, recounted from the messages                         |
| provider     | what a provider must do (`Provider`), its errors, the neutral batch        |

Providers: `sendgrid` (v3 mail/send and its activity feed), `mailgun` (batch sending with
recipient-variables through the official SDK, and its Events API) and `outbox` (the local
outbox, used when no provider key is configured). A run keeps the provider it started with
(`provider.provider_for_new_run`). Celery tasks live in campaigns.tasks.
"""

from campaigns.sending.counters import COUNTER_FIELDS, campaign_counters_refresh
from campaigns.sending.leases import lease_seconds
from campaigns.sending.recipients import recipient_values, recipients_for
from campaigns.sending.runs import (
    cron_run_key,
    run_give_up,
    run_start,
    runs_cancel,
    send_run_later,
    stalled_runs,
)
from campaigns.sending.sender import run_send

__all__ = [
    "COUNTER_FIELDS",
    "campaign_counters_refresh",
    "cron_run_key",
    "lease_seconds",
    "recipient_values",
    "recipients_for",
    "run_give_up",
    "run_send",
    "run_start",
    "runs_cancel",
    "send_run_later",
    "stalled_runs",
]
