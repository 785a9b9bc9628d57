"""A 100,000-recipient campaign sent by one worker through a local fake Mailgun (the
official `mailgun` SDK over real HTTP), batch sending with recipient-variables."""

from django.test.utils import override_settings

from bench.registry import scenario
from bench.scenarios.campaign_send_100k import (
    bench_campaign_ready,
    check_everyone_sent,
    timed_send,
)
from tests.fakes.mailgun_server import FakeMailgun

API_KEY = "key-bench"
DOMAIN = "mg.bench.example"


@scenario("campaign_send_100k_mailgun", targets={"seconds_max": 30}, order=41)
def campaign_send_100k_mailgun() -> dict:
    """run_start + run_send of a 100k-recipient campaign, one worker, fake Mailgun."""
    campaign, expected = bench_campaign_ready("campaign_send_100k_mailgun", provider="mailgun")
    with (
        FakeMailgun(api_key=API_KEY, domain=DOMAIN) as fake,
        override_settings(
            SENDGRID_API_KEY="",
            MAILGUN_API_KEY=API_KEY,
            MAILGUN_DOMAIN=DOMAIN,
            MAILGUN_API_URL=fake.url,
            MAILGUN_TIMEOUT_SECONDS=30,
        ),
    ):
        run, seconds, counter = timed_send(campaign)
        requests = fake.requests_seen

        # Untimed checks: everyone once, alone in their To:, nobody twice, all sent.
        run.refresh_from_db()
        if run.provider != "mailgun":
            raise AssertionError("The run did not go through Mailgun.")
        deliveries = fake.deliveries()
        recipients = [address for delivery in deliveries for address in delivery.to]
        if any(len(delivery.to) != 1 for delivery in deliveries):
            raise AssertionError("A delivery names more than one recipient in its To:.")
        if len(recipients) != len(expected) or set(recipients) != expected:
            raise AssertionError(
                f"The fake delivered to {len(recipients)} ({len(set(recipients))} unique); "
                f"the segment's {len(expected)} expected once each."
            )
        unsubscribe_ok = all(
            delivery.headers["List-Unsubscribe"][1:-1] in delivery.html for delivery in deliveries
        )
        if not unsubscribe_ok:
            raise AssertionError("A delivery's List-Unsubscribe link is not its body's.")
        check_everyone_sent(run, campaign, len(expected))
        del deliveries, recipients
        fake.reset()

    return {
        "n": len(expected),
        "seconds": round(seconds, 3),
        "requests": requests,
        "queries_total": counter.count,
    }
