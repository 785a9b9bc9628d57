"""One scheduler tick of a 100,000-enrolment sequence, 10,000 of them due, and the sends of
the runs it queued through a local fake SendGrid, against one email per due enrolment."""

import random
from collections import Counter
from datetime import datetime, time, timedelta
from unittest import mock

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count
from django.test.utils import override_settings
from django.utils import timezone

from bench import database
from bench.measure import QueryCounter, stopwatch
from bench.registry import scenario
from bench.scenarios.campaign_send_100k import PREFIX, bench_admin, opt_everyone_in
from campaigns.models import (
    CampaignRun,
    EmailCampaign,
    EmailEvent,
    EmailMessage,
    EmailTemplate,
    SendBatch,
    Sequence,
    SequenceEnrollment,
    SequenceStep,
)
from campaigns.sending import run_send
from campaigns.sending.provider import OutgoingEmail, unsubscribe_headers
from campaigns.sending.recipients import recipient_values
from campaigns.sending.sendgrid import SendGrid
from campaigns.sequences.builder import StepDraft, sequence_save
from campaigns.sequences.tick import sequences_tick
from campaigns.sequences.window import next_in_window
from campaigns.templating import render, variables_used
from crm.bulk import analyze, bulk_insert
from customers.email_gate import EmailKind, with_email_refusal
from customers.models import Customer
from leads.models import Grade
from tests.fakes.sendgrid_server import FakeSendGrid

ENROLMENTS = 100_000
# Due at the measured moment, per step position: 10,000 in all.
DUE_BY_POSITION = {0: 5_000, 1: 3_000, 2: 2_000}
DUE = sum(DUE_BY_POSITION.values())
BASELINE_SAMPLE = 300
API_KEY = "bench"
SEQUENCE_NAME = f"{PREFIX}sequence_tick_100k"
WINDOW = (time(9, 0), time(17, 0))
# (subject, body paragraph, days after the previous step) of each step.
STEPS = [
    ("{{ company }}: three things teams like yours automate first", "Here is where to start.", 0),
    ('{{ first_name|default:"Hi" }}, how {{ company }} could save a day a week', "A story.", 3),
    ("Still curious, {{ first_name }}? 15 minutes with {{ owner_name }}", "Book a call.", 7),
]
Enrollment = SequenceEnrollment.Status


def _bodies(paragraph: str) -> tuple[str, str]:
    html = (
        '<p>Hi {{ first_name|default:"there" }},</p>'
        f"<p>{paragraph} Teams like {{{{ company }}}} tell us it pays off in a month.</p>"
        '<p>{{ owner_name }} (<a href="mailto:{{ owner_email }}">{{ owner_email }}</a>)</p>'
        '<p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p>'
    )
    text = (
        'Hi {{ first_name|default:"there" }},\n\n'
        f"{paragraph} Teams like {{{{ company }}}} tell us it pays off in a month.\n\n"
        "{{ owner_name }} ({{ owner_email }})\n\nUnsubscribe: {{ unsubscribe_url }}\n"
    )
    return html, text


def measured_moment(after: datetime) -> datetime:
    """The first weekday 10:00 (local) after `after`: the window is open then, and every
    row the seed and the other scenarios wrote is older."""
    local = timezone.localtime(after)
    day = local.date()
    while True:
        moment = timezone.make_aware(datetime.combine(day, time(10, 0)))
        if moment > after and day.weekday() < 5:
            return moment
        day += timedelta(days=1)


def delete_bench_sequences() -> None:
    """Earlier runs' bench sequences with their enrolments, steps and step campaigns (runs,
    batches, messages, events), in plain SQL like campaign_send_100k's cleanup. Also run
    after the scenario: campaign_send_100k deletes every `bench: ` campaign in SQL, which a
    step still pointing at one would refuse."""
    sequences = list(Sequence.objects.filter(name__startswith=PREFIX).values_list("pk", flat=True))
    if not sequences:
        return
    campaigns = list(
        SequenceStep.objects.filter(sequence_id__in=sequences).values_list("campaign_id", flat=True)
    )
    tables = {
        model: model._meta.db_table
        for model in (EmailEvent, EmailMessage, SendBatch, CampaignRun, EmailCampaign)
    }
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {SequenceEnrollment._meta.db_table} WHERE sequence_id = ANY(%s)",
            [sequences],
        )
        cursor.execute(
            f"DELETE FROM {SequenceStep._meta.db_table} WHERE sequence_id = ANY(%s)", [sequences]
        )
        cursor.execute(
            f"DELETE FROM {tables[EmailEvent]} WHERE message_id IN "
            f"(SELECT id FROM {tables[EmailMessage]} WHERE campaign_id = ANY(%s))",
            [campaigns],
        )
        cursor.execute(
            f"DELETE FROM {tables[EmailMessage]} WHERE campaign_id = ANY(%s)", [campaigns]
        )
        cursor.execute(
            f"DELETE FROM {tables[SendBatch]} WHERE run_id IN "
            f"(SELECT id FROM {tables[CampaignRun]} WHERE campaign_id = ANY(%s))",
            [campaigns],
        )
        cursor.execute(
            f"DELETE FROM {tables[CampaignRun]} WHERE campaign_id = ANY(%s)", [campaigns]
        )
        cursor.execute(f"DELETE FROM {tables[EmailCampaign]} WHERE id = ANY(%s)", [campaigns])
        Sequence.objects.filter(pk__in=sequences).delete()


def bench_sequence(admin) -> tuple[Sequence, list[SequenceStep]]:
    drafts = []
    for position, (subject, paragraph, delay_days) in enumerate(STEPS):
        html, text = _bodies(paragraph)
        template, _ = EmailTemplate.objects.update_or_create(
            name=f"{PREFIX}sequence step {position + 1}",
            defaults={
                "category": EmailTemplate.Category.NURTURE,
                "subject": subject,
                "html_body": html,
                "text_body": text,
                "variables": variables_used(subject, html, text),
                "created_by": admin,
            },
        )
        drafts.append(StepDraft(template=template, delay_days=delay_days))
    sequence = sequence_save(
        actor=admin,
        data={
            "name": SEQUENCE_NAME,
            "window_start": WINDOW[0],
            "window_end": WINDOW[1],
            # The default: a lead graded warm or hot leaves; the due ones are chosen colder.
            "stop_at_grade": Sequence.StopGrade.WARM,
        },
        steps=drafts,
    )
    steps = list(sequence.steps.select_related("template").order_by("position"))
    return sequence, steps


def enrolments_load(sequence: Sequence, *, enrolled_at: datetime, now: datetime) -> dict:
    """Untimed: ENROLMENTS active enrolments, one per customer the gate lets through, spread
    over the three steps; DUE_BY_POSITION of them due at `now` (customers not graded warm
    or hot, so no stop condition holds for them), the others due within the next week.
    Returns {enrolment id: (customer id, email, position)} of the due ones."""
    allowed = list(
        with_email_refusal(Customer.objects.all(), EmailKind.MARKETING)
        .filter(email_refusal__isnull=True)
        .order_by("pk")
        .values_list("pk", "email", "lead_score__grade")
    )
    if len(allowed) < ENROLMENTS:
        raise RuntimeError(
            f"The gate lets {len(allowed)} customers through, not {ENROLMENTS}: unsubscribed or "
            "suppressed bench customers left behind? Re-seed with seed_100k."
        )
    rng = random.Random(2026)
    customers = rng.sample(allowed, ENROLMENTS)
    cool = [row for row in customers if row[2] not in (Grade.WARM, Grade.HOT)]
    if len(cool) < DUE:
        raise RuntimeError(f"Only {len(cool)} customers are not graded warm or hot.")
    due_customers = {row[0] for row in cool[:DUE]}
    positions = [p for p, count in DUE_BY_POSITION.items() for _ in range(count)]
    rng.shuffle(positions)
    due_position = dict(zip(sorted(due_customers), positions, strict=True))
    rows, due_rows = [], []
    for customer_id, email, _grade in customers:
        if customer_id in due_position:
            position = due_position[customer_id]
            send_at = enrolled_at + (now - enrolled_at) * rng.random()
            due_rows.append((customer_id, email, position))
        else:
            position = rng.randrange(len(STEPS))
            send_at = now + timedelta(minutes=rng.uniform(1, 7 * 24 * 60))
        rows.append(
            {
                "sequence_id": sequence.pk,
                "customer_id": customer_id,
                "status": Enrollment.ACTIVE,
                "next_position": position,
                "next_send_at": send_at,
                "stop_reason": "",
                "enrolled_at": enrolled_at,
                "enrolled_by_id": None,
                "finished_at": None,
            }
        )
    ids = bulk_insert(SequenceEnrollment, rows)
    analyze(SequenceEnrollment)
    by_customer = {row["customer_id"]: pk for pk, row in zip(ids, rows, strict=True)}
    return {by_customer[row[0]]: row for row in due_rows}


def _one_email_per_enrolment(sequence: Sequence, steps: list[SequenceStep], ids, now) -> int:
    """The obvious way: each due enrolment loaded with its customer (one query), its step's
    template rendered for that customer, one single-email request through the provider, the
    enrolment saved alone. Rolled back afterwards (so its updates never pay a commit);
    returns how many were sent."""
    provider = SendGrid()
    sent = 0
    with transaction.atomic():
        for pk in ids:
            enrollment = SequenceEnrollment.objects.select_related("customer__owner").get(pk=pk)
            customer = enrollment.customer
            template = steps[enrollment.next_position].template
            values = recipient_values(customer)
            provider.send_email(
                OutgoingEmail(
                    to=[customer.email],
                    from_email=settings.DEFAULT_FROM_EMAIL,
                    subject=render(template.subject, values, html=False),
                    text=render(template.text_body, values, html=False),
                    html=render(template.html_body, values, html=True),
                    headers=unsubscribe_headers(values["unsubscribe_url"]),
                )
            )
            enrollment.next_position += 1
            if enrollment.next_position >= len(steps):
                enrollment.status, enrollment.next_send_at = Enrollment.COMPLETED, None
                enrollment.finished_at = now
            else:
                following = steps[enrollment.next_position]
                enrollment.next_send_at = next_in_window(
                    start=sequence.window_start,
                    end=sequence.window_end,
                    moment=now + timedelta(days=following.delay_days),
                )
            enrollment.save(
                update_fields=["status", "next_position", "next_send_at", "finished_at"]
            )
            sent += 1
        transaction.set_rollback(True)
    return sent


def _check(sequence, steps, due: dict, run_ids: list[int], fake, *, now, queued) -> None:
    """Every due enrolment got exactly one message, sent, of its step, and moved on; the
    others are untouched."""
    if queued != DUE:
        raise AssertionError(f"sequences_tick queued {queued} emails, not {DUE}.")
    expected_emails = sorted(email for _, email, _ in due.values())
    recipients = fake.recipients()
    if sorted(recipients) != expected_emails:
        raise AssertionError(
            f"The fake got {len(recipients)} recipients ({len(set(recipients))} unique); the "
            f"{DUE} due customers, once each, expected."
        )
    messages = EmailMessage.objects.filter(run_id__in=run_ids)
    per_customer = Counter(messages.values_list("customer_id", flat=True))
    if set(per_customer) != {customer_id for customer_id, _, _ in due.values()} or any(
        n != 1 for n in per_customer.values()
    ):
        raise AssertionError("The runs' messages are not one per due customer.")
    not_sent = messages.exclude(status=EmailMessage.Status.SENT).count()
    if not_sent:
        raise AssertionError(f"{not_sent} messages of the runs are not 'sent'.")
    by_step = dict(
        messages.order_by()
        .values("campaign_id")
        .annotate(n=Count("id"))
        .values_list("campaign_id", "n")
    )
    expected_by_step = {steps[p].campaign_id: n for p, n in DUE_BY_POSITION.items()}
    if by_step != expected_by_step:
        raise AssertionError(f"Messages per step campaign {by_step}, not {expected_by_step}.")

    moved = Counter()
    for pk, status, position, send_at in SequenceEnrollment.objects.filter(
        pk__in=list(due)
    ).values_list("pk", "status", "next_position", "next_send_at"):
        old = due[pk][2]
        if position != old + 1:
            raise AssertionError(f"Enrolment {pk} is at position {position}, not {old + 1}.")
        if old + 1 == len(steps):
            ok = status == Enrollment.COMPLETED and send_at is None
        else:
            ok = status == Enrollment.ACTIVE and send_at == next_in_window(
                start=sequence.window_start,
                end=sequence.window_end,
                moment=now + timedelta(days=steps[old + 1].delay_days),
            )
        if not ok:
            raise AssertionError(f"Enrolment {pk} did not move on: {status}, {send_at}.")
        moved[old] += 1
    if dict(moved) != DUE_BY_POSITION:
        raise AssertionError(f"Moved on per position {dict(moved)}, not {DUE_BY_POSITION}.")
    others = SequenceEnrollment.objects.filter(sequence=sequence).exclude(pk__in=list(due))
    untouched = others.filter(status=Enrollment.ACTIVE, next_send_at__gt=now).count()
    if untouched != ENROLMENTS - DUE:
        raise AssertionError(f"{ENROLMENTS - DUE - untouched} enrolments not due were touched.")
    stopped = SequenceEnrollment.objects.filter(sequence=sequence, status=Enrollment.STOPPED)
    if stopped.exists():
        raise AssertionError(f"{stopped.count()} due enrolments were stopped.")


@scenario("sequence_tick_100k", targets={"seconds_max": 15, "ratio_min": 10}, order=42)
def sequence_tick_100k() -> dict:
    """sequences_tick + run_send of 10,000 due of 100k enrolments, fake SendGrid."""
    database.ensure_seeded_100k()
    delete_bench_sequences()
    opt_everyone_in()
    admin = bench_admin()
    enrolled_at = timezone.now()
    now = measured_moment(enrolled_at + timedelta(minutes=1))
    # The seed's own sequences would be ticked too: paused meanwhile, resumed afterwards.
    paused = list(Sequence.objects.filter(is_active=True).values_list("pk", flat=True))
    Sequence.objects.filter(pk__in=paused).update(is_active=False)
    try:
        sequence, steps = bench_sequence(admin)
        due = enrolments_load(sequence, enrolled_at=enrolled_at, now=now)
        sample = random.Random(7).sample(sorted(due), BASELINE_SAMPLE)
        counter = QueryCounter()
        with (
            FakeSendGrid(api_key=API_KEY) as fake,
            override_settings(SENDGRID_API_KEY=API_KEY, SENDGRID_API_HOST=fake.url),
            # The tick's on_commit would queue send_run on the broker for each run; the mock
            # takes the calls and one worker's run_send is called here for each.
            mock.patch("campaigns.tasks.send_run.delay") as send_run_delay,
        ):
            with stopwatch() as baseline:
                sent = _one_email_per_enrolment(sequence, steps, sample, now)
            if fake.requests_seen != sent or len(fake.recipients()) != sent:
                raise AssertionError(f"Baseline sent {len(fake.recipients())}, not {sent}.")
            fake.reset()

            with stopwatch() as ours, connection.execute_wrapper(counter):
                with stopwatch() as tick:
                    queued = sequences_tick(now=now)
                run_ids = [call.args[0] for call in send_run_delay.call_args_list]
                outcomes = [run_send(run_id=run_id) for run_id in run_ids]
            requests = fake.requests_seen

            if len(run_ids) != len(DUE_BY_POSITION) or set(outcomes) != {"sent"}:
                raise AssertionError(f"Runs {run_ids} ended {outcomes}; one 'sent' a step.")
            _check(sequence, steps, due, run_ids, fake, now=now, queued=queued)
    finally:
        delete_bench_sequences()
        Sequence.objects.filter(pk__in=paused).update(is_active=True)

    return {
        "n": DUE,
        "seconds": round(ours["seconds"], 3),
        "tick_seconds": round(tick["seconds"], 3),
        "send_seconds": round(ours["seconds"] - tick["seconds"], 3),
        "enrolments": ENROLMENTS,
        "runs": len(run_ids),
        "requests": requests,
        "queries_total": counter.count,
        "baseline_seconds": round(baseline["seconds"] * DUE / sent, 3),
        "baseline_sample": sent,
    }
