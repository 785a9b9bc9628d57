"""10,000 SendGrid events posted to the signed webhook and applied, then all replayed."""

import base64
import json
import random
import time
import uuid
from collections import Counter, defaultdict
from unittest import mock

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.conf import settings
from django.test import Client
from django.test.utils import override_settings
from django.urls import reverse
from django.utils import timezone

from bench import database
from bench.measure import stopwatch
from bench.registry import scenario
from bench.scenarios.campaign_send_100k import (
    PREFIX,
    bench_admin,
    bench_campaign,
    bench_template_and_segment,
)
from campaigns import sending, webhooks
from campaigns.models import EmailCampaign, EmailEvent, EmailMessage
from campaigns.sending.counters import COUNTER_FIELDS, campaign_counters_refresh
from customers.models import Customer, Suppression
from leads.models import LeadActivity

EVENTS = 10_000
REQUESTS = 10
MIN_MESSAGES = 2_000
COUNTERS = COUNTER_FIELDS
# The counter each event type feeds, as webhooks.TIMESTAMP_FIELDS maps them.
COUNTED_BY = {
    "delivered": "delivered_count",
    "open": "opened_count",
    "click": "clicked_count",
    "bounce": "bounced_count",
    "unsubscribe": "unsubscribed_count",
    "spamreport": "unsubscribed_count",
}
EVENT_TIMESTAMPS = [
    "delivered_at",
    "opened_at",
    "clicked_at",
    "bounced_at",
    "dropped_at",
    "unsubscribed_at",
]


def _sent_campaign() -> EmailCampaign:
    """The latest sent bench campaign (campaign_send_100k's), or a new one whose 100k
    messages are inserted by run_start and marked sent without sending (untimed)."""
    campaign = (
        EmailCampaign.objects.filter(name__startswith=PREFIX, status=EmailCampaign.Status.SENT)
        .order_by("-pk")
        .first()
    )
    if campaign and campaign.messages.filter(sent_at__isnull=False).count() >= MIN_MESSAGES:
        return campaign
    admin = bench_admin()
    template, segment = bench_template_and_segment(admin)
    campaign = bench_campaign("webhook_ingest_10k", admin=admin, template=template, segment=segment)
    with mock.patch("campaigns.tasks.send_run.delay"):
        run = sending.run_start(campaign_id=campaign.pk, run_key=f"bench-{uuid.uuid4().hex[:12]}")
    now = timezone.now()
    EmailMessage.objects.filter(run=run).update(
        status=EmailMessage.Status.SENT, sent_at=now, provider_message_id=uuid.uuid4().hex[:22]
    )
    EmailCampaign.objects.filter(pk=campaign.pk).update(status=EmailCampaign.Status.SENT)
    campaign_counters_refresh(campaign_ids=[campaign.pk])
    campaign.refresh_from_db()
    return campaign


def _reset(campaign: EmailCampaign) -> None:
    """Forget the events of an earlier run of this scenario: the messages back to 'sent'."""
    EmailEvent.objects.filter(message__campaign=campaign).delete()
    EmailEvent.objects.filter(sg_event_id__startswith="bench-").delete()
    touched = EmailMessage.objects.filter(campaign=campaign).exclude(
        status=EmailMessage.Status.SENT
    )
    touched.update(status=EmailMessage.Status.SENT, **dict.fromkeys(EVENT_TIMESTAMPS))
    campaign_counters_refresh(campaign_ids=[campaign.pk])


def _message_events(rng: random.Random) -> list[tuple[str, dict]]:
    """One message's events in order, with the fields SendGrid sends for each type."""
    events = [("processed", {})]
    outcome = rng.random()
    if outcome < 0.03:
        events.append(("dropped", {"reason": "Bounced Address", "status": "5.0.0"}))
        return events
    if rng.random() < 0.08:
        events.append(("deferred", {"response": "421 try again later", "attempt": "1"}))
    if outcome < 0.08:
        events.append(
            (
                "bounce",
                {"reason": "550 5.1.1 mailbox unavailable", "status": "5.1.1", "type": "bounce"},
            )
        )
        return events
    events.append(("delivered", {"response": "250 OK", "ip": "168.1.1.1"}))
    if rng.random() < 0.45:
        for _ in range(rng.choice([1, 1, 2, 3])):
            events.append(("open", {"useragent": "Mozilla/5.0", "ip": "10.0.0.1"}))
        if rng.random() < 0.35:
            for _ in range(rng.choice([1, 1, 2])):
                events.append(
                    (
                        "click",
                        {
                            "url": "https://example.com/spring?utm=crm",
                            "useragent": "Mozilla/5.0",
                            "ip": "10.0.0.1",
                        },
                    )
                )
    if rng.random() < 0.02:
        events.append(("unsubscribe", {}))
    elif rng.random() < 0.006:
        events.append(("spamreport", {}))
    return events


def _generate(campaign: EmailCampaign, tag: str) -> list[dict]:
    """EVENTS events over randomly chosen messages of the campaign, each message's in order."""
    rng = random.Random(11)
    messages = list(
        EmailMessage.objects.filter(campaign=campaign, sent_at__isnull=False)
        .order_by("pk")
        .values_list("pk", "email", "provider_message_id")
    )
    rng.shuffle(messages)
    started = int(time.time()) - 3600
    events: list[dict] = []
    for pk, email, provider_id in messages:
        at = started + rng.randrange(600)
        for kind, extra in _message_events(rng):
            at += rng.randrange(1, 120)
            events.append(
                {
                    "email": email,
                    "timestamp": at,
                    "event": kind,
                    "sg_event_id": f"bench-{tag}-{len(events)}",
                    "sg_message_id": f"{provider_id}.filter0001.{pk}.0",
                    "smtp-id": f"<{provider_id}@ismtpd0001p1.sendgrid.net>",
                    "category": [f"campaign-{campaign.pk}"],
                    "campaign_id": str(campaign.pk),
                    "email_message_id": str(pk),
                    **extra,
                }
            )
            if len(events) == EVENTS:
                return events
    raise RuntimeError(f"{len(messages)} messages give fewer than {EVENTS} events.")


def _expected(events: list[dict], campaign: EmailCampaign) -> dict[str, int]:
    """The counters the events imply: per counter, how many distinct messages have one."""
    seen = defaultdict(set)
    for event in events:
        counter = COUNTED_BY.get(event["event"])
        if counter:
            seen[counter].add(event["email_message_id"])
    expected = {name: getattr(campaign, name) for name in COUNTERS}
    expected.update({name: len(ids) for name, ids in seen.items()})
    return expected


def _signer():
    """An ECDSA P-256 key pair: the public half as SendGrid shows it (base64 DER
    SubjectPublicKeyInfo), and a function signing timestamp + body as SendGrid does."""
    private_key = ec.generate_private_key(ec.SECP256R1())
    public_der = private_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )

    def sign(timestamp: str, body: bytes) -> str:
        signature = private_key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        return base64.b64encode(signature).decode()

    return base64.b64encode(public_der).decode(), sign


def _counters(campaign: EmailCampaign) -> dict[str, int]:
    campaign.refresh_from_db(fields=COUNTERS)
    return {name: getattr(campaign, name) for name in COUNTERS}


@scenario("webhook_ingest_10k", targets={"seconds_max": 5}, order=41)
def webhook_ingest_10k() -> dict:
    """10 signed webhook POSTs of 1,000 events, events_process(); then the same replayed."""
    database.ensure_seeded_100k()
    campaign = _sent_campaign()
    _reset(campaign)
    tag = uuid.uuid4().hex[:8]
    events = _generate(campaign, tag)
    expected = _expected(events, campaign)

    # What the events change outside the campaign, put back afterwards so that the other
    # scenarios (a 100k send, lead rescoring) find the data as seeded.
    emails = {event["email"].lower() for event in events}
    suppressed_before = set(
        Suppression.objects.filter(email__in=emails).values_list("email", flat=True)
    )
    customers_before = list(
        Customer.objects.filter(email__in={e["email"] for e in events}).values(
            "pk", "unsubscribed_at", "updated_at"
        )
    )
    last_activity = LeadActivity.objects.order_by("-pk").values_list("pk", flat=True).first() or 0

    public_key, sign = _signer()
    timestamp = str(int(time.time()))
    posts = []
    for start in range(0, EVENTS, EVENTS // REQUESTS):
        body = json.dumps(events[start : start + EVENTS // REQUESTS]).encode()
        posts.append(
            (
                body,
                {
                    webhooks.SIGNATURE_HEADER: sign(timestamp, body),
                    webhooks.TIMESTAMP_HEADER: timestamp,
                },
            )
        )
    url = reverse("sendgrid_webhook")
    client = Client()
    hosts = list(settings.ALLOWED_HOSTS)
    if "testserver" not in hosts and "*" not in hosts:
        hosts.append("testserver")  # the test client's host

    def post_all() -> list[int]:
        stored = []
        for body, headers in posts:
            response = client.post(url, body, content_type="application/json", headers=headers)
            if response.status_code != 200:
                raise AssertionError(f"Webhook answered {response.status_code}: {response.content}")
            stored.append(response.json()["new"])
        return stored

    try:
        with (
            override_settings(SENDGRID_WEBHOOK_PUBLIC_KEY=public_key, ALLOWED_HOSTS=hosts),
            # The request's on_commit queues events_process on the broker, and the opens and
            # clicks queue a lead rescore: the mocks take those calls; events_process is
            # called here, inside the timed part, as the worker would.
            mock.patch("campaigns.tasks.process_events.delay") as process_delay,
            mock.patch("leads.tasks.rescore_leads.delay"),
        ):
            with stopwatch() as first_posts:
                stored = post_all()
            with stopwatch() as first_process:
                processed = webhooks.events_process()
            after_first = _counters(campaign)
            activities = LeadActivity.objects.filter(pk__gt=last_activity).count()
            with stopwatch() as replay_posts:
                stored_again = post_all()
            with stopwatch() as replay_process:
                processed_again = webhooks.events_process()
            queued = process_delay.call_count

        # Untimed checks.
        if stored != [EVENTS // REQUESTS] * REQUESTS or processed != EVENTS:
            raise AssertionError(f"First pass stored {stored}, processed {processed}.")
        # What the replay stored is read from the table (the count below), not from the
        # answers' "new", which counts every event offered when bulk_create ignores conflicts.
        if processed_again:
            raise AssertionError(f"The replay left {processed_again} events to process.")
        if queued != 2 * REQUESTS:
            raise AssertionError(f"{queued} processing tasks queued, not {2 * REQUESTS}.")
        ours = EmailEvent.objects.filter(sg_event_id__startswith=f"bench-{tag}-")
        if ours.count() != EVENTS or ours.filter(processed_at__isnull=True).exists():
            raise AssertionError(f"{ours.count()} events stored, some maybe unprocessed.")
        if after_first != expected:
            raise AssertionError(f"Counters {after_first}, expected {expected}.")
        if _counters(campaign) != after_first:
            raise AssertionError(f"The replay changed the counters: {_counters(campaign)}.")
        kinds = Counter(event["event"] for event in events)
        if activities != kinds["open"] + kinds["click"]:
            raise AssertionError(
                f"{activities} lead activities, {kinds['open'] + kinds['click']} expected."
            )
        if LeadActivity.objects.filter(pk__gt=last_activity).count() != activities:
            raise AssertionError("The replay recorded lead activities again.")
    finally:
        LeadActivity.objects.filter(pk__gt=last_activity).delete()
        Suppression.objects.filter(email__in=emails - suppressed_before).delete()
        before = {row["pk"]: row for row in customers_before}
        unsubscribed_now = Customer.objects.filter(
            pk__in=[pk for pk, row in before.items() if row["unsubscribed_at"] is None],
            unsubscribed_at__isnull=False,
        ).values_list("pk", flat=True)
        for pk in list(unsubscribed_now):
            Customer.objects.filter(pk=pk).update(
                unsubscribed_at=None, updated_at=before[pk]["updated_at"]
            )

    return {
        "n": EVENTS,
        "seconds": round(
            first_posts["seconds"]
            + first_process["seconds"]
            + replay_posts["seconds"]
            + replay_process["seconds"],
            3,
        ),
        "requests": 2 * REQUESTS,
        "messages": len({event["email_message_id"] for event in events}),
        "events_by_type": dict(sorted(kinds.items())),
        # The webhook's answers to the replay: "new" events it reported (0 when correct).
        "replay_reported_new": sum(stored_again),
        "post_seconds": round(first_posts["seconds"], 3),
        "process_seconds": round(first_process["seconds"], 3),
        "replay_post_seconds": round(replay_posts["seconds"], 3),
        "replay_process_seconds": round(replay_process["seconds"], 3),
    }
