"""The sender: one worker sending a run's queued messages, batch after batch, until the run
is sent, paused or cancelled."""

import uuid

from campaigns.models import CampaignRun
from campaigns.sending import batches
from campaigns.sending.counters import CountersWhileSending
from campaigns.sending.leases import lease_hold, lease_release, lease_renew, lease_take
from campaigns.sending.notices import CampaignProgress, campaign_progress_push
from campaigns.sending.provider import (
    LABELS,
    TransientSendError,
    provider_can_send,
    provider_for_new_run,
    provider_named,
)
from campaigns.sending.runs import campaign_status, run_finish, run_give_up, run_stop_if_asked
from campaigns.templating import SubstitutionPlan, with_unsubscribe_link


def run_send(*, run_id: int, sender: str | None = None, hold_seconds: float = 0) -> str:
    """Send what is queued in the run, batch after batch, until done, paused or cancelled.

    On a 429/5xx it raises TransientSendError and keeps the run leased for `hold_seconds`
    (the task's backoff) more, so that no other sender starts during the wait: the retry
    comes back with the same `sender` (the task id) and carries on."""
    sender = sender or uuid.uuid4().hex
    if not lease_take(run_id, sender):
        return "busy or finished"
    release = True
    counters = None
    try:
        run = CampaignRun.objects.select_related("campaign__template").get(pk=run_id)
        counters = CountersWhileSending(run.campaign_id)
        if not run.provider:
            # Fixed by the first sender, in the worker that sends: every later sender (a
            # resume after a crash) judges in-flight batches with the provider that got them.
            run.provider = provider_for_new_run(run.campaign.provider)
            CampaignRun.objects.filter(pk=run.pk).update(provider=run.provider)
        if not provider_can_send(run.provider):
            lease_release(run_id, sender)
            release = False
            run_give_up(
                run_id=run_id,
                reason=f"{LABELS.get(run.provider, run.provider)} is no longer configured; "
                "configure it again and resume.",
            )
            return "provider not configured"
        provider = provider_named(run.provider)
        unresolved, _judged = batches.batches_reconcile(provider, run)
        # Recount when this sender stops, whatever it did: a sender killed before its last
        # refresh (out of memory, a deploy) left batches sent but not yet counted.
        counters.changed = True
        html, text = with_unsubscribe_link(
            html=run.campaign.template.html_body, text=run.campaign.template.text_body
        )
        plan = SubstitutionPlan(subject=run.campaign.effective_subject, html=html, text=text)
        progress = CampaignProgress(
            campaign_id=run.campaign_id, author_id=run.campaign.created_by_id
        )
        claimed_up_to = 0  # where this sender's last claim ended
        batch = None
        while True:
            status = campaign_status(run)
            stopped = run_stop_if_asked(run, status=status)
            if stopped or batch:
                progress.push(status=status)  # the batch just sent, or the stop
            if stopped:
                return stopped
            batch = batches.batch_claim(run, sender, skip=unresolved, after=claimed_up_to)
            if batch is None and claimed_up_to:
                # Nothing after the last batch: the run is done only if nothing is queued
                # before it either (one claim from the run's first message).
                claimed_up_to = 0
                batch = batches.batch_claim(run, sender, skip=unresolved)
            if batch is None:
                if not lease_renew(run_id, sender):
                    return "lease lost"
                if unresolved:
                    return "waiting for the provider"  # judged on a later resume
                run_finish(run)
                counters.refreshed()
                campaign_progress_push(campaign_id=run.campaign_id)
                return "sent"
            claimed_up_to = batch.last_message_id
            try:
                batches.batch_send(provider, run, batch, plan)
            except TransientSendError:
                lease_hold(run_id, sender, seconds=hold_seconds)
                release = False
                raise
            counters.changed_by_a_batch()
    finally:
        try:
            if counters:
                counters.flush()
        finally:
            if release:
                lease_release(run_id, sender)
