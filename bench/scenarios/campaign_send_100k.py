"""A 100,000-recipient campaign sent by one worker through a local fake SendGrid, against
one API call per recipient."""

import uuid
from email.utils import parseaddr
from unittest import mock

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import Q
from django.test.utils import override_settings
from django.utils import timezone
from sendgrid import SendGridAPIClient

from bench import database
from bench.measure import QueryCounter, stopwatch
from bench.registry import scenario
from campaigns import sending
from campaigns.models import (
    CampaignRun,
    CustomerSegment,
    EmailCampaign,
    EmailEvent,
    EmailMessage,
    EmailTemplate,
    SendBatch,
)
from campaigns.templating import render, variables_used
from customers.models import ConsentSource, Customer, EmailConsent
from tests.fakes.sendgrid_server import FakeSendGrid

RECIPIENTS = 100_000
BASELINE_SAMPLE = 2_000
API_KEY = "bench"
# Every campaign, template and segment the bench makes is named with this prefix.
PREFIX = "bench: "

SUBJECT = '{{ first_name|default:"Hello" }}, what\'s new at {{ company }}'
HTML_BODY = (
    '<p>Hi {{ first_name|default:"there" }},</p>'
    "<p>{{ owner_name }} here: our spring release is out, with a few things "
    "{{ company }} asked for.</p>"
    '<p>Questions? Write to <a href="mailto:{{ owner_email }}">{{ owner_email }}</a>.</p>'
    '<p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p>'
)
TEXT_BODY = (
    'Hi {{ first_name|default:"there" }},\n\n'
    "{{ owner_name }} here: our spring release is out, with a few things {{ company }} "
    "asked for.\n\nQuestions? Write to {{ owner_email }}.\n\n"
    "Unsubscribe: {{ unsubscribe_url }}\n"
)


def bench_admin():
    """The seed's admin: an admin sees every customer, so the segment {} is all 100k."""
    return get_user_model().objects.get(username="admin")


def bench_template_and_segment(admin) -> tuple[EmailTemplate, CustomerSegment]:
    template, _ = EmailTemplate.objects.update_or_create(
        name=f"{PREFIX}spring release",
        defaults={
            "category": EmailTemplate.Category.NEWSLETTER,
            "subject": SUBJECT,
            "html_body": HTML_BODY,
            "text_body": TEXT_BODY,
            "variables": variables_used(SUBJECT, HTML_BODY, TEXT_BODY),
            "created_by": admin,
        },
    )
    segment, _ = CustomerSegment.objects.update_or_create(
        name=f"{PREFIX}everyone", defaults={"criteria": {}, "created_by": admin}
    )
    return template, segment


def bench_campaign(name: str, *, admin, template, segment) -> EmailCampaign:
    return EmailCampaign.objects.create(
        name=f"{PREFIX}{name}",
        campaign_type=EmailCampaign.Type.NEWSLETTER,
        template=template,
        segment=segment,
        status=EmailCampaign.Status.SENDING,
        created_by=admin,
    )


def delete_bench_campaigns() -> None:
    """Earlier bench campaigns with their runs, batches, messages and events, in plain SQL:
    the ORM would load 100k messages to null their events' foreign keys first."""
    ids = list(EmailCampaign.objects.filter(name__startswith=PREFIX).values_list("pk", flat=True))
    if not ids:
        return
    event, message = EmailEvent._meta.db_table, EmailMessage._meta.db_table
    batch, run = SendBatch._meta.db_table, CampaignRun._meta.db_table
    campaign = EmailCampaign._meta.db_table
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {event} WHERE message_id IN "
            f"(SELECT id FROM {message} WHERE campaign_id = ANY(%s))",
            [ids],
        )
        cursor.execute(f"DELETE FROM {message} WHERE campaign_id = ANY(%s)", [ids])
        cursor.execute(
            f"DELETE FROM {batch} WHERE run_id IN "
            f"(SELECT id FROM {run} WHERE campaign_id = ANY(%s))",
            [ids],
        )
        cursor.execute(f"DELETE FROM {run} WHERE campaign_id = ANY(%s)", [ids])
        cursor.execute(f"DELETE FROM {campaign} WHERE id = ANY(%s)", [ids])


def _one_call_per_recipient(campaign: EmailCampaign, sample: int) -> int:
    """The obvious way: each recipient rendered alone, sent in its own API request, and its
    EmailMessage saved one by one. Rolled back afterwards; returns how many were sent."""
    client = SendGridAPIClient(settings.SENDGRID_API_KEY, host=settings.SENDGRID_API_HOST)
    template = campaign.template
    from_email = parseaddr(settings.DEFAULT_FROM_EMAIL)[1]
    sent = 0
    with transaction.atomic():
        run = CampaignRun.objects.create(
            campaign=campaign, run_key=f"baseline-{uuid.uuid4().hex[:12]}", total=sample
        )
        customers = sending.recipients_for(campaign).select_related("owner").order_by("pk")[:sample]
        for customer in customers:
            values = sending.recipient_values(customer)
            payload = {
                "personalizations": [{"to": [{"email": customer.email, "name": customer.name}]}],
                "from": {"email": from_email},
                "subject": render(template.subject, values, html=False),
                "content": [
                    {"type": "text/plain", "value": render(template.text_body, values, html=False)},
                    {"type": "text/html", "value": render(template.html_body, values, html=True)},
                ],
                "custom_args": {"campaign_id": str(campaign.pk)},
            }
            response = client.client.mail.send.post(request_body=payload)
            EmailMessage.objects.create(
                campaign=campaign,
                run=run,
                customer=customer,
                email=customer.email,
                status=EmailMessage.Status.SENT,
                provider_message_id=response.headers.get("X-Message-Id", ""),
                sent_at=timezone.now(),
            )
            sent += 1
        transaction.set_rollback(True)
    return sent


def opt_everyone_in() -> None:
    """Untimed: the seed leaves a fifth of its customers' consent unknown, which marketing
    skips (MARKETING_REQUIRES_CONSENT), and a few unsubscribed from its nurture sequence;
    the send is measured on a list of 100,000 who all opted in."""
    Customer.objects.filter(
        ~Q(email_consent=EmailConsent.GRANTED) | Q(unsubscribed_at__isnull=False)
    ).update(
        email_consent=EmailConsent.GRANTED,
        email_consent_source=ConsentSource.FORM,
        unsubscribed_at=None,
    )


def bench_campaign_ready(name: str, *, provider: str = "") -> tuple[EmailCampaign, set[str]]:
    """Untimed: a fresh bench campaign (through `provider`, the default one if empty) to the
    100,000 seeded customers, all opted in, and their addresses."""
    database.ensure_seeded_100k()
    delete_bench_campaigns()
    opt_everyone_in()
    # What autovacuum does in production (this machine's PostgreSQL runs without it): each
    # run would otherwise write its 100,000 messages among the dead ones of every run before.
    database.analyze()
    admin = bench_admin()
    template, segment = bench_template_and_segment(admin)
    campaign = bench_campaign(name, admin=admin, template=template, segment=segment)
    if provider:
        EmailCampaign.objects.filter(pk=campaign.pk).update(provider=provider)
    expected = set(sending.recipients_for(campaign).values_list("email", flat=True))
    # The seed's 100,000 and the past leads it adds for the AI model (demo.lead_history).
    if len(expected) < RECIPIENTS:
        raise RuntimeError(
            f"The segment reaches {len(expected)} customers, under {RECIPIENTS}: unsubscribed "
            "or suppressed bench customers left behind? Re-seed with seed_100k."
        )
    return campaign, expected


def timed_send(campaign: EmailCampaign) -> tuple[CampaignRun, float, QueryCounter]:
    """run_start + run_send, one worker's work measured in-process (the provider's fake set
    up by the caller): the run, its seconds, and its statements."""
    counter = QueryCounter()
    # run_start's on_commit would queue send_run on the broker; the mock takes the call
    # and run_send is called here.
    with (
        mock.patch("campaigns.tasks.send_run.delay") as send_run_delay,
        stopwatch() as ours,
        connection.execute_wrapper(counter),
    ):
        run = sending.run_start(campaign_id=campaign.pk, run_key=f"bench-{uuid.uuid4().hex[:12]}")
        outcome = sending.run_send(run_id=run.pk)
    send_run_delay.assert_called_once_with(run.pk)
    if outcome != "sent":
        raise AssertionError(f"run_send returned {outcome!r}, not 'sent'.")
    return run, ours["seconds"], counter


def check_everyone_sent(run: CampaignRun, campaign: EmailCampaign, count: int) -> None:
    """Untimed: every one of the `count` messages of the run sent, and the campaign says so."""
    messages = EmailMessage.objects.filter(run=run)
    not_sent = messages.exclude(status=EmailMessage.Status.SENT).count()
    if messages.count() != count or not_sent:
        raise AssertionError(
            f"{messages.count()} messages in the run, {not_sent} of them not 'sent'."
        )
    campaign.refresh_from_db()
    if campaign.status != EmailCampaign.Status.SENT or campaign.sent_count != count:
        raise AssertionError(
            f"Campaign is {campaign.status} with sent_count {campaign.sent_count}."
        )


@scenario("campaign_send_100k", targets={"seconds_max": 30, "ratio_min": 20}, order=40)
def campaign_send_100k() -> dict:
    """run_start + run_send of a 100k-recipient campaign, one worker, fake SendGrid."""
    campaign, expected = bench_campaign_ready("campaign_send_100k")
    with (
        FakeSendGrid(api_key=API_KEY) as fake,
        override_settings(SENDGRID_API_KEY=API_KEY, SENDGRID_API_HOST=fake.url),
    ):
        run, seconds, counter = timed_send(campaign)
        requests = fake.requests_seen

        # Untimed checks: everyone once, nobody twice, every message sent.
        recipients = fake.recipients()
        if len(recipients) != len(expected) or len(set(recipients)) != len(expected):
            raise AssertionError(
                f"The fake got {len(recipients)} recipients, {len(set(recipients))} unique; "
                f"{len(expected)} each expected."
            )
        if set(recipients) != expected:
            raise AssertionError("The fake's recipients are not the segment's customers.")
        check_everyone_sent(run, campaign, len(expected))
        del recipients
        fake.reset()  # the fake keeps every payload; free them before the baseline

        with stopwatch() as baseline:
            sample = _one_call_per_recipient(campaign, BASELINE_SAMPLE)
        if len(fake.recipients()) != sample:
            raise AssertionError(f"Baseline sent {len(fake.recipients())}, not {sample}.")

    return {
        "n": len(expected),
        "seconds": round(seconds, 3),
        "requests": requests,
        "queries_total": counter.count,
        "baseline_seconds": round(baseline["seconds"] * len(expected) / sample, 3),
        "baseline_sample": sample,
    }
