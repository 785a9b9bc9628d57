"""A 100,000-recipient campaign sent by one worker through a local fake Mailgun (the
official `mailgun` SDK over real HTTP), batch sending with recipient-variables."""

import uuid
from unittest import mock

from django.db import connection
from django.test.utils import override_settings

from bench import database
from bench.measure import QueryCounter, stopwatch
from bench.registry import scenario
from bench.scenarios.campaign_send_100k import (
    RECIPIENTS,
    bench_admin,
    bench_campaign,
    bench_template_and_segment,
    delete_bench_campaigns,
    opt_everyone_in,
)
from campaigns import sending
from campaigns.models import EmailCampaign, EmailMessage
from tests.fakes.mailgun_server import FakeMailgun

API_KEY = "key-bench"
DOMAIN = "mg.bench.example"


@scenario("campaign_send_100k_mailgun", targets={"seconds_max": 30}, order=41)
def campaign_send_100k_mailgun() -> dict:
    """run_start + run_send of a 100k-recipient campaign, one worker, fake Mailgun."""
    database.ensure_seeded_100k()
    delete_bench_campaigns()
    opt_everyone_in()
    admin = bench_admin()
    template, segment = bench_template_and_segment(admin)
    campaign = bench_campaign(
        "campaign_send_100k_mailgun", admin=admin, template=template, segment=segment
    )
    EmailCampaign.objects.filter(pk=campaign.pk).update(provider="mailgun")
    expected = set(sending.recipients_for(campaign).values_list("email", flat=True))
    if len(expected) != RECIPIENTS:
        raise RuntimeError(
            f"The segment reaches {len(expected)} customers, not {RECIPIENTS}: unsubscribed or "
            "suppressed bench customers left behind? Re-seed with seed_100k."
        )
    run_key = f"bench-{uuid.uuid4().hex[:12]}"
    counter = QueryCounter()

    with (
        FakeMailgun(api_key=API_KEY, domain=DOMAIN) as fake,
        override_settings(
            SENDGRID_API_KEY="",
            MAILGUN_API_KEY=API_KEY,
            MAILGUN_DOMAIN=DOMAIN,
            MAILGUN_API_URL=fake.url,
            MAILGUN_TIMEOUT_SECONDS=30,
        ),
        # One worker's work, measured in-process: run_start's on_commit would queue
        # send_run on the broker; the mock takes the call and run_send is called here.
        mock.patch("campaigns.tasks.send_run.delay") as send_run_delay,
    ):
        with stopwatch() as ours, connection.execute_wrapper(counter):
            run = sending.run_start(campaign_id=campaign.pk, run_key=run_key)
            outcome = sending.run_send(run_id=run.pk)
        requests = fake.requests_seen

        # Untimed checks: everyone once, alone in their To:, nobody twice, all sent.
        send_run_delay.assert_called_once_with(run.pk)
        if outcome != "sent":
            raise AssertionError(f"run_send returned {outcome!r}, not 'sent'.")
        if run.__class__.objects.get(pk=run.pk).provider != "mailgun":
            raise AssertionError("The run did not go through Mailgun.")
        deliveries = fake.deliveries()
        recipients = [address for delivery in deliveries for address in delivery.to]
        if any(len(delivery.to) != 1 for delivery in deliveries):
            raise AssertionError("A delivery names more than one recipient in its To:.")
        if len(recipients) != RECIPIENTS or set(recipients) != expected:
            raise AssertionError(
                f"The fake delivered to {len(recipients)} ({len(set(recipients))} unique); "
                f"the segment's {RECIPIENTS} expected once each."
            )
        unsubscribe_ok = all(
            delivery.headers["List-Unsubscribe"][1:-1] in delivery.html for delivery in deliveries
        )
        if not unsubscribe_ok:
            raise AssertionError("A delivery's List-Unsubscribe link is not its body's.")
        messages = EmailMessage.objects.filter(run=run)
        not_sent = messages.exclude(status=EmailMessage.Status.SENT).count()
        if messages.count() != RECIPIENTS or not_sent:
            raise AssertionError(
                f"{messages.count()} messages in the run, {not_sent} of them not 'sent'."
            )
        campaign.refresh_from_db()
        if campaign.status != EmailCampaign.Status.SENT or campaign.sent_count != RECIPIENTS:
            raise AssertionError(
                f"Campaign is {campaign.status} with sent_count {campaign.sent_count}."
            )
        del deliveries, recipients
        fake.reset()

    return {
        "n": RECIPIENTS,
        "seconds": round(ours["seconds"], 3),
        "requests": requests,
        "queries_total": counter.count,
    }
