"""Email sequences (campaigns.sequences), end to end against PostgreSQL: enrolment through the
email gate, the scheduler tick and its send window, the stop conditions at a step's edge,
each step sent by the campaigns pipeline (the local outbox, or the fake SendGrid), tracking
through the signed webhook, the CSV import's enrol choice and the lead workflows' drafts.

The tick runs at explicit moments (`tick(moment)`); what it queues is sent by the campaigns
sender, eagerly, after commit. Tests that depend on the time of day of other writes (logged
activities, deals, webhook events, beat tasks) stop the clock with `clock` instead."""

import re
import threading
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from datetime import time as time_of_day

import pytest
import time_machine
from cryptography.hazmat.primitives.asymmetric import ec
from django.conf import settings
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from campaigns.drafts import draft_send
from campaigns.models import (
    CampaignRun,
    EmailCampaign,
    EmailDraft,
    EmailMessage,
    ImportEnrolment,
    LeadEmailSettings,
    OutboxMessage,
    Sequence,
    SequenceEnrollment,
    SequenceStep,
)
from campaigns.segments import segment_customers
from campaigns.sending import run_send
from campaigns.sequences import tick as tick_module
from campaigns.sequences.builder import (
    StepDraft,
    sequence_delete,
    sequence_save,
    sequence_set_active,
)
from campaigns.sequences.enrolment import (
    MANUAL_STOP,
    audience_count,
    customer_enrol,
    customers_enrol,
    enrollment_stop,
    segment_enrol,
)
from campaigns.sequences.imports import import_enrolment_choose
from campaigns.sequences.tick import sequences_tick
from campaigns.sequences.window import next_in_window, window_open
from campaigns.services import campaign_send_now
from campaigns.tokens import unsubscribe_token_read
from crm.celery import app
from crm.errors import ValidationFailed
from customers import csv_import
from customers.models import Customer, CustomerImport, Suppression
from leads.models import LeadActivity, LeadScore, WorkflowRun
from leads.services.rescore import leads_rescore
from tests.campaigns.test_webhooks import _post, _public_key_setting
from tests.factories import (
    CustomerFactory,
    CustomerSegmentFactory,
    EmailCampaignFactory,
    EmailTemplateFactory,
    SaleActivityFactory,
    SaleFactory,
    sequence_build,
    unreachable_customers,
)

pytestmark = pytest.mark.django_db

MONDAY = date(2030, 1, 7)  # a Monday in winter: no daylight saving change that week


def day(offset: int) -> date:
    """MONDAY plus `offset` days (5: Saturday, 7: the next Monday)."""
    return MONDAY + timedelta(days=offset)


def at(on: date, hour: int, minute: int = 0) -> datetime:
    """hour:minute on `on` in the CRM's time zone (settings.TIME_ZONE)."""
    return timezone.make_aware(datetime.combine(on, time_of_day(hour, minute)))


@pytest.fixture
def clock():
    """The clock stopped at MONDAY 10:00 (the default window, 09:00-17:00, is open);
    `clock.move_to(moment)` moves it."""
    traveller = time_machine.travel(at(MONDAY, 10), tick=False)
    coordinates = traveller.start()
    yield coordinates
    traveller.stop()


@pytest.fixture
def tick(django_capture_on_commit_callbacks):
    """Run the scheduler tick at `now`, then the sender of each run it queued (eagerly,
    after commit, as the worker would); returns how many emails the tick queued."""

    def run(now: datetime) -> int:
        with django_capture_on_commit_callbacks(execute=True):
            return sequences_tick(now=now)

    return run


@pytest.fixture
def leads(rep, teammate, teams):
    """Three leads of the manager's team who may get marketing email."""
    return [
        CustomerFactory(owner=owner, name=f"{first} Lead", email=f"{first.lower()}@leads.example",
                        lifecycle_stage="lead")
        for owner, first in ((rep, "Ann"), (rep, "Bob"), (teammate, "Cy"))
    ]  # fmt: skip


def enrol(sequence, customers, *, now: datetime) -> int:
    return customers_enrol(
        sequence=sequence, customers=Customer.objects.filter(pk__in=[c.pk for c in customers]),
        now=now,
    )  # fmt: skip


def received() -> Counter:
    """(address, step position) of every email in the outbox, counted."""
    positions = {
        str(campaign_id): position
        for campaign_id, position in SequenceStep.objects.values_list("campaign_id", "position")
    }
    return Counter(
        (message.to_email, positions.get(message.custom_args.get("campaign_id")))
        for message in OutboxMessage.objects.all()
    )


def each(customers, *positions) -> Counter:
    return Counter({(c.email, position): 1 for c in customers for position in positions})


def enrolment_of(customer) -> SequenceEnrollment:
    return SequenceEnrollment.objects.get(customer=customer)


def link_in(headers: dict) -> str:
    """The URL of a List-Unsubscribe header, "<url>"."""
    value = headers["List-Unsubscribe"]
    assert value.startswith("<") and value.endswith(">"), value
    return value[1:-1]


# The five addresses no path may email, each made so after the fact: (name, make, the gate's
# refusal, its label).
def _withdraw(customer):
    Customer.objects.filter(pk=customer.pk).update(email_consent="withdrawn")


def _unsubscribe(customer):
    Customer.objects.filter(pk=customer.pk).update(unsubscribed_at=timezone.now())


def _suppress(reason: str):
    def suppress(customer):
        Suppression.objects.create(email=customer.email.lower(), reason=reason)

    return suppress


UNREACHABLE = [
    ("withdrawn", _withdraw, "withdrawn", "consent withdrawn"),
    ("unsubscribed", _unsubscribe, "unsubscribed", "unsubscribed"),
    ("hard-bounced", _suppress("bounce"), "bounced", "bounced"),
    ("dropped", _suppress("dropped"), "dropped", "dropped by the provider"),
    ("spam-reported", _suppress("spam"), "spam_report", "spam report"),
]


# A sequence's steps, one after the other ---------------------------------------------------


def test_each_step_owns_a_hidden_campaign_that_is_never_listed_as_a_campaign(manager, teams):
    from crm.permissions.campaigns import visible_campaigns

    sequence = sequence_build(actor=manager, name="Welcome", steps=[(None, 0), (None, 3)])
    steps = list(sequence.steps.select_related("campaign").order_by("position"))
    assert [(step.position, step.delay_days) for step in steps] == [(0, 0), (1, 3)]
    assert [step.campaign.name for step in steps] == ["Welcome – step 1", "Welcome – step 2"]
    assert {step.campaign.segment for step in steps} == {None}
    assert {step.campaign.template_id for step in steps} == {step.template_id for step in steps}
    assert not visible_campaigns(manager).filter(pk__in=[s.campaign_id for s in steps]).exists()


def test_each_lead_gets_each_step_once_in_order_then_the_enrolment_completes(tick, manager, leads):
    sequence = sequence_build(actor=manager, steps=[(None, 0), (None, 3)])
    first, second = sequence.steps.order_by("position")
    assert enrol(sequence, leads, now=at(MONDAY, 10)) == 3
    enrolments = SequenceEnrollment.objects.all()
    assert set(enrolments.values_list("status", "next_position", "next_send_at")) == {
        ("active", 0, at(MONDAY, 10))
    }

    assert tick(at(MONDAY, 10)) == 3
    assert received() == each(leads, 0)
    assert set(enrolments.values_list("status", "next_position", "next_send_at")) == {
        ("active", 1, at(day(3), 10))  # three days later, in the window
    }
    for moment in (at(MONDAY, 10, 5), at(day(1), 10), at(day(3), 9, 59)):
        assert tick(moment) == 0, moment

    assert tick(at(day(3), 10)) == 3
    assert received() == each(leads, 0, 1)
    assert set(
        enrolments.values_list("status", "next_position", "next_send_at", "finished_at")
    ) == {("completed", 2, None, at(day(3), 10))}
    assert tick(at(day(14), 10)) == 0
    assert OutboxMessage.objects.count() == 6

    runs = CampaignRun.objects.order_by("started_at")
    assert [(run.campaign_id, run.status, run.total) for run in runs] == [
        (first.campaign_id, "sent", 3),
        (second.campaign_id, "sent", 3),
    ]
    assert set(EmailMessage.objects.values_list("status", flat=True)) == {"sent"}
    # The step campaigns' counters are the per-step funnel.
    for step in (first, second):
        campaign = EmailCampaign.objects.get(pk=step.campaign_id)
        assert (campaign.total_recipients, campaign.sent_count, campaign.status) == (
            3,
            3,
            "scheduled",  # never "sent" as a campaign: the tick starts its next runs
        )


def test_the_emails_are_rendered_for_each_lead(tick, manager, leads):
    template = EmailTemplateFactory(
        subject="Hello {{ first_name }}", text_body="{{ full_name }} at {{ company }}."
    )
    sequence = sequence_build(actor=manager, steps=[(template, 0)])
    enrol(sequence, leads, now=at(MONDAY, 10))
    tick(at(MONDAY, 10))
    rendered = {
        m.to_email: (m.subject, m.text_body.split("\n\n--\nUnsubscribe: ")[0])
        for m in OutboxMessage.objects.all()
    }
    assert rendered == {
        lead.email: (f"Hello {lead.name.split()[0]}", f"{lead.name} at {lead.company}.")
        for lead in leads
    }
    # The template has no {{ unsubscribe_url }}: each email gets its link in a footer.
    for message in OutboxMessage.objects.all():
        assert message.text_body.endswith(message.headers["List-Unsubscribe"][1:-1])


def test_a_paused_sequence_sends_nothing_and_its_due_steps_go_when_resumed(tick, manager, leads):
    sequence = sequence_build(actor=manager, steps=[(None, 0)])
    enrol(sequence, leads[:2], now=at(MONDAY, 10))
    sequence_set_active(actor=manager, sequence=sequence, active=False)
    assert tick(at(MONDAY, 10)) == 0
    with pytest.raises(ValidationFailed, match="paused"):
        enrol(sequence, leads[2:], now=at(MONDAY, 10))
    assert not OutboxMessage.objects.exists()
    sequence_set_active(actor=manager, sequence=sequence, active=True)
    assert tick(at(MONDAY, 11)) == 2
    assert received() == each(leads[:2], 0)


def test_enrolments_waiting_for_a_removed_step_complete(tick, manager, leads):
    sequence = sequence_build(actor=manager, steps=[(None, 0), (None, 2)])
    enrol(sequence, leads, now=at(MONDAY, 10))
    tick(at(MONDAY, 10))
    first = sequence.steps.get(position=0)
    sequence_save(
        actor=manager,
        sequence=sequence,
        data={"window_start": sequence.window_start, "window_end": sequence.window_end},
        steps=[StepDraft(template=first.template, delay_days=0)],
    )
    assert tick(at(day(2), 10)) == 0
    assert set(SequenceEnrollment.objects.values_list("status", flat=True)) == {"completed"}
    assert received() == each(leads, 0)


def test_a_step_or_a_sequence_that_has_sent_cannot_be_deleted(tick, manager, leads):
    sequence = sequence_build(actor=manager, steps=[(None, 0), (None, 2)])
    enrol(sequence, leads, now=at(MONDAY, 10))
    tick(at(MONDAY, 10))
    tick(at(day(2), 10))
    first = sequence.steps.get(position=0)
    with pytest.raises(ValidationFailed, match="Step 2 has sent emails"):
        sequence_save(
            actor=manager,
            sequence=sequence,
            data={"window_start": sequence.window_start, "window_end": sequence.window_end},
            steps=[StepDraft(template=first.template, delay_days=0)],
        )
    with pytest.raises(ValidationFailed, match="has sent emails"):
        sequence_delete(actor=manager, sequence=sequence)
    assert sequence.steps.count() == 2 and EmailMessage.objects.count() == 6


# Enrolment, audience counts, and the tick's exactly-once ----------------------------------


def test_the_audience_count_is_what_enrolling_the_segment_enrols(manager, rep, other_rep, teams):
    sequence = sequence_build(actor=manager)
    reachable = [CustomerFactory(owner=rep, region="emea") for _ in range(4)]
    CustomerFactory(owner=rep, region="emea", email_consent="unknown")
    unreachable_customers(owner=rep, region="emea")
    CustomerFactory(owner=rep, region="americas")  # outside the segment
    CustomerFactory(owner=other_rep, region="emea")  # not the manager's to email
    already = CustomerFactory(owner=rep, region="emea")
    assert enrol(sequence, [already], now=timezone.now()) == 1
    segment = CustomerSegmentFactory(created_by=manager, criteria={"region": ["emea"]})
    customers = segment_customers(user=manager, criteria=segment.criteria)

    audience = audience_count(sequence=sequence, customers=customers)
    assert (audience.allowed, audience.already) == (4, 1)
    assert audience.refused == {
        "no_consent": 1,
        "withdrawn": 1,
        "unsubscribed": 1,
        "bounced": 1,
        "dropped": 1,
        "spam_report": 1,
    }
    assert audience.refused_summary == (6, [("suppressed", 4), ("no consent", 2)])

    assert segment_enrol(actor=manager, sequence=sequence, segment=segment) == audience.allowed
    enrolled = set(SequenceEnrollment.objects.values_list("customer_id", flat=True))
    assert enrolled == {c.pk for c in [*reachable, already]}
    again = audience_count(sequence=sequence, customers=customers)
    assert (again.allowed, again.already, again.refused) == (0, 5, audience.refused)
    assert segment_enrol(actor=manager, sequence=sequence, segment=segment) == 0

    fresh = sequence_build(actor=manager)  # the same audience, counted then enrolled directly
    counted = audience_count(sequence=fresh, customers=customers)
    assert customers_enrol(sequence=fresh, customers=customers) == counted.allowed == 5


def test_nobody_is_enrolled_twice_at_a_time_but_may_come_back_after_a_stop(manager, leads, teams):
    sequence = sequence_build(actor=manager)
    lead = leads[0]
    enrollment = customer_enrol(actor=manager, sequence=sequence, customer=lead)
    assert enrollment.enrolled_by == manager
    assert enrol(sequence, [lead], now=timezone.now()) == 0
    with pytest.raises(ValidationFailed, match="already in"):
        customer_enrol(actor=manager, sequence=sequence, customer=lead)
    enrollment_stop(actor=manager, enrollment=enrollment)
    assert enrol(sequence, [lead], now=timezone.now()) == 1
    assert sorted(SequenceEnrollment.objects.values_list("status", flat=True)) == [
        "active",
        "stopped",
    ]


def test_a_tick_twice_at_the_same_moment_queues_nothing_twice(
    clock, tick, manager, leads, django_capture_on_commit_callbacks
):
    sequence = sequence_build(actor=manager, steps=[(None, 0), (None, 2)])
    enrol(sequence, leads, now=at(MONDAY, 10))
    assert tick(at(MONDAY, 10)) == 3
    assert tick(at(MONDAY, 10)) == 0
    with django_capture_on_commit_callbacks(execute=True):  # beat's task, at the same moment
        app.tasks["campaigns.sequence_tick"].apply(throw=True)
    assert CampaignRun.objects.count() == 1
    assert EmailMessage.objects.count() == 3
    assert received() == each(leads, 0)
    assert set(SequenceEnrollment.objects.values_list("next_position", flat=True)) == {1}


@pytest.mark.django_db(transaction=True)
def test_a_tick_skips_the_due_enrolments_another_tick_is_queuing(manager, leads, monkeypatch):
    sequence = sequence_build(actor=manager, steps=[(None, 0)])
    enrol(sequence, leads, now=at(MONDAY, 10))
    holding, release = threading.Event(), threading.Event()
    real_stop = tick_module.due_enrollments_stop

    def judge_then_hold(**kwargs):
        stopped = real_stop(**kwargs)
        if not holding.is_set():  # the first tick holds its enrolments until released
            holding.set()
            release.wait(20)
        return stopped

    monkeypatch.setattr(tick_module, "due_enrollments_stop", judge_then_hold)
    results = []

    def first_tick():
        try:
            results.append(sequences_tick(now=at(MONDAY, 10)))
        finally:
            connection.close()

    thread = threading.Thread(target=first_tick)
    thread.start()
    try:
        assert holding.wait(20)
        second = sequences_tick(now=at(MONDAY, 10, 1))  # a minute later, while the first works
    finally:
        release.set()
        thread.join(30)
    assert (results, second) == ([3], 0)
    assert CampaignRun.objects.count() == 1 and EmailMessage.objects.count() == 3
    assert received() == each(leads, 0)


def test_the_tick_query_count_does_not_grow_with_the_enrolments(
    manager, rep, teams, django_capture_on_commit_callbacks
):
    def queries_for(count: int) -> int:
        Sequence.objects.update(is_active=False)  # only the new one is ticked
        sequence = sequence_build(actor=manager, steps=[(None, 0), (None, 2)])
        enrol(sequence, [CustomerFactory(owner=rep) for _ in range(count)], now=at(MONDAY, 10))
        with (
            django_capture_on_commit_callbacks(execute=False),  # the sender is not measured
            CaptureQueriesContext(connection) as queries,
        ):
            assert sequences_tick(now=at(MONDAY, 10)) == count
        return len(queries)

    assert queries_for(30) == queries_for(3)


def test_a_lead_graded_cold_enters_the_cold_sequence_and_leaves_it_when_it_warms_up(
    clock, tick, manager, rep, teams, django_capture_on_commit_callbacks
):
    cold = sequence_build(actor=manager, steps=[(None, 0), (None, 2)])
    LeadEmailSettings.objects.update_or_create(
        pk=1,
        defaults={
            "cold_sequence": cold,
            "warm_template": EmailTemplateFactory(text_body="Hi {{ first_name }}, a case study."),
            "send_automatically": True,
        },
    )
    lead = CustomerFactory(owner=rep, lifecycle_stage="lead", company_size=None, source="other")
    unasked = CustomerFactory(owner=rep, lifecycle_stage="lead", company_size=None,
                              source="other", email_consent="unknown")  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        leads_rescore(customer_ids=[lead.pk, unasked.pk])
    assert set(LeadScore.objects.values_list("grade", flat=True)) == {"cold"}
    enrollment = SequenceEnrollment.objects.get()  # the gate kept out the one without consent
    assert (enrollment.customer, enrollment.sequence, enrollment.enrolled_by) == (lead, cold, None)
    assert tick(at(MONDAY, 10)) == 1

    clock.move_to(at(day(1), 10))
    Customer.objects.filter(pk=lead.pk).update(
        company_size=5000, budget_range="over_250k", purchase_timeline="immediate"
    )
    with django_capture_on_commit_callbacks(execute=True):
        leads_rescore(customer_ids=[lead.pk])
    assert LeadScore.objects.get(customer=lead).grade == "warm"
    assert [message.to for message in mail.outbox] == [[lead.email]]  # the warm one-to-one

    assert tick(at(day(2), 10)) == 0
    enrollment.refresh_from_db()
    assert (enrollment.status, enrollment.stop_reason) == ("stopped", "Lead turned warm or hot")
    assert received() == each([lead], 0)


# The send window ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        ((0, 10, 0), (0, 10, 0)),  # Monday, open: at once
        ((0, 8, 0), (0, 9, 0)),  # before the start: the start
        ((0, 17, 0), (1, 9, 0)),  # the end is not in the window: the next morning
        ((4, 18, 0), (7, 9, 0)),  # Friday evening: Monday
        ((5, 10, 0), (7, 9, 0)),  # Saturday: Monday
        ((6, 23, 59), (7, 9, 0)),  # Sunday night: Monday
    ],
)
def test_next_in_window(settings, moment, expected):
    settings.TIME_ZONE = "Europe/Berlin"
    nine, five = time_of_day(9), time_of_day(17)
    found = next_in_window(start=nine, end=five, moment=at(day(moment[0]), *moment[1:]))
    assert found == at(day(expected[0]), *expected[1:])
    assert window_open(start=nine, end=five, now=found)


def test_a_step_due_on_saturday_goes_on_monday_at_the_window_start(settings, tick, manager, leads):
    settings.TIME_ZONE = "Europe/Berlin"  # the window is in the CRM's time zone, not UTC
    sequence = sequence_build(actor=manager, steps=[(None, 0), (None, 2)])
    thursday, saturday, sunday, monday = day(3), day(5), day(6), day(7)
    enrol(sequence, leads, now=at(thursday, 10))
    assert tick(at(thursday, 10)) == 3  # the first step at once; the second due on Saturday
    monday_nine = at(monday, 9)
    assert monday_nine == datetime(2030, 1, 14, 8, 0, tzinfo=UTC)  # 09:00 in Berlin
    assert set(SequenceEnrollment.objects.values_list("next_send_at", flat=True)) == {monday_nine}
    for moment in (at(saturday, 10), at(sunday, 12), at(monday, 8, 59)):
        assert tick(moment) == 0, moment
    assert received() == each(leads, 0)
    assert tick(monday_nine) == 3
    assert received() == each(leads, 0, 1)


@pytest.mark.parametrize(
    "moment",
    [(5, 10, 0), (6, 12, 0), (7, 8, 59), (7, 17, 0), (7, 23, 30)],
    ids=["saturday", "sunday", "before-the-start", "at-the-end", "at-night"],
)
def test_a_tick_outside_the_window_sends_nothing(settings, tick, manager, leads, moment):
    settings.TIME_ZONE = "Europe/Berlin"
    sequence = sequence_build(actor=manager, steps=[(None, 0)])
    enrol(sequence, leads, now=at(MONDAY, 10))  # due since last Monday
    assert tick(at(day(moment[0]), *moment[1:])) == 0
    assert not CampaignRun.objects.exists() and not OutboxMessage.objects.exists()
    assert set(SequenceEnrollment.objects.values_list("status", "next_position")) == {("active", 0)}
    assert tick(at(day(7), 16, 59)) == 3  # the last minute of the window


# The unsubscribe link and headers -----------------------------------------------------------


def test_every_sequence_email_carries_the_unsubscribe_link_and_both_headers(tick, manager, leads):
    sequence = sequence_build(actor=manager, steps=[(None, 0), (None, 1)])
    enrol(sequence, leads, now=at(MONDAY, 10))
    tick(at(MONDAY, 10))
    tick(at(day(1), 10))
    messages = list(OutboxMessage.objects.all())
    assert len(messages) == 6
    emails = {lead.email: lead.pk for lead in leads}
    for message in messages:
        assert message.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        link = link_in(message.headers)
        assert link.startswith(f"{settings.SITE_URL}/u/")
        assert link in message.text_body  # the template's {{ unsubscribe_url }}
        customer_id, message_id = unsubscribe_token_read(link.rstrip("/").rsplit("/", 1)[1])
        sent = EmailMessage.objects.get(pk=message_id)
        assert customer_id == sent.customer_id == emails[message.to_email]
        assert str(sent.pk) == message.custom_args["email_message_id"]


def test_the_sendgrid_payload_of_a_step_carries_the_link_and_both_headers(
    fake_sendgrid, tick, manager, leads
):
    sequence = sequence_build(actor=manager, steps=[(None, 0)])
    step = sequence.steps.get()
    enrol(sequence, leads, now=at(MONDAY, 10))
    assert tick(at(MONDAY, 10)) == 3
    (request,) = fake_sendgrid.accepted
    payload = request.payload
    assert payload["custom_args"]["campaign_id"] == str(step.campaign_id)
    assert sorted(fake_sendgrid.recipients()) == sorted(lead.email for lead in leads)
    text = next(c["value"] for c in payload["content"] if c["type"] == "text/plain")
    for personalization in payload["personalizations"]:
        headers = personalization["headers"]
        assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        link = link_in(headers)
        body = text
        for key, value in personalization["substitutions"].items():
            body = body.replace(key, value)
        assert link in body
        message = EmailMessage.objects.get(
            pk=int(personalization["custom_args"]["email_message_id"])
        )
        assert message.email == personalization["to"][0]["email"]
        assert unsubscribe_token_read(link.rstrip("/").rsplit("/", 1)[1]) == (
            message.customer_id,
            message.pk,
        )


def test_the_one_click_link_of_a_step_stops_the_sequence_at_the_next_edge(
    client, tick, manager, leads
):
    sequence = sequence_build(actor=manager, steps=[(None, 0), (None, 1)])
    enrol(sequence, leads, now=at(MONDAY, 10))
    tick(at(MONDAY, 10))
    ann = leads[0]
    link = link_in(OutboxMessage.objects.get(to_email=ann.email).headers)
    path = link.removeprefix(settings.SITE_URL)
    assert client.post(path).status_code == 200  # what a mail client's one click does
    assert tick(at(day(1), 10)) == 2
    ann.refresh_from_db()
    assert ann.unsubscribed_at is not None and ann.email_consent == "withdrawn"
    stopped = enrolment_of(ann)
    # Unsubscribing withdraws consent too; the gate names what happened: the unsubscribe.
    assert (stopped.status, stopped.stop_reason) == ("stopped", "Not emailed: unsubscribed")
    assert received() == each(leads, 0) + each(leads[1:], 1)


# Mailgun ---------------------------------------------------------------------------


def test_a_sequence_step_goes_through_mailgun_when_the_sequence_picks_it(
    fake_sendgrid, fake_mailgun, tick, manager, leads
):
    sendgrid, mailgun = fake_sendgrid, fake_mailgun  # both configured; SendGrid the default
    sequence = sequence_build(actor=manager, steps=[(None, 0)], provider="mailgun")
    step = sequence.steps.select_related("campaign").get()
    assert step.campaign.provider == "mailgun"
    enrol(sequence, leads, now=at(MONDAY, 10))
    assert tick(at(MONDAY, 10)) == 3
    assert not sendgrid.accepted
    (request,) = mailgun.accepted
    deliveries = mailgun.deliveries()
    assert sorted(d.to[0] for d in deliveries) == sorted(lead.email for lead in leads)
    for delivery in deliveries:
        assert len(delivery.to) == 1
        link = delivery.headers["List-Unsubscribe"][1:-1]
        assert link in delivery.text
        message = EmailMessage.objects.get(pk=int(delivery.variables["email_message_id"]))
        assert message.email == delivery.to[0]
        assert unsubscribe_token_read(link.rstrip("/").rsplit("/", 1)[1]) == (
            message.customer_id,
            message.pk,
        )
        assert delivery.variables["campaign_id"] == str(step.campaign_id)


# Tracking --------------------------------------------------------------------------------


@pytest.fixture
def webhook_key(settings):
    private_key = ec.generate_private_key(ec.SECP256R1())
    settings.SENDGRID_WEBHOOK_PUBLIC_KEY = _public_key_setting(private_key)
    settings.SENDGRID_WEBHOOK_MAX_AGE_SECONDS = 300
    return private_key


def test_a_sequence_open_through_the_signed_webhook_raises_the_engagement_score(
    clock, tick, client, webhook_key, manager, leads, django_capture_on_commit_callbacks
):
    lead = leads[0]
    leads_rescore(customer_ids=[lead.pk])
    before = LeadScore.objects.get(customer=lead)
    assert before.engagement_score == 0
    sequence = sequence_build(actor=manager, steps=[(None, 0), (None, 1)])
    customer_enrol(actor=manager, sequence=sequence, customer=lead)
    assert tick(at(MONDAY, 10)) == 1
    message = EmailMessage.objects.get(customer=lead)

    clock.move_to(at(MONDAY, 11))
    event = {
        "email": lead.email,
        "timestamp": int(time.time()),
        "event": "open",
        "sg_event_id": "sequence-open-1",
        "sg_message_id": "provider-id.filter0001",
        "email_message_id": str(message.pk),
    }
    assert _post(client, [event], None).status_code == 403  # unsigned: nothing happens
    assert not LeadActivity.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        response = _post(client, [event], webhook_key)
    assert response.status_code == 200, response.content

    activity = LeadActivity.objects.get(customer=lead)
    assert (activity.activity_type, activity.details) == (
        "email_open",
        {"email_message_id": message.pk},
    )
    after = LeadScore.objects.get(customer=lead)
    assert after.engagement_score > before.engagement_score
    assert after.total_score > before.total_score
    message.refresh_from_db()
    assert message.status == "opened"
    assert EmailCampaign.objects.get(pk=message.campaign_id).opened_count == 1
    # An open is no reply: the sequence goes on.
    assert tick(at(day(1), 10)) == 1
    assert enrolment_of(lead).status == "completed"


# Stop conditions at a step's edge -------------------------------------------------------


def _meeting(customer, when):
    LeadActivity.objects.create(customer=customer, activity_type="meeting_scheduled",
                                timestamp=when)  # fmt: skip


def _call_answered(customer, when):
    LeadActivity.objects.create(customer=customer, activity_type="call_answered", timestamp=when)


def _email_on_an_old_deal(customer, when):
    sale = SaleFactory(customer=customer, created_at=when - timedelta(days=30))
    SaleActivityFactory(sale=sale, kind="email", occurred_at=when)


def _deal(customer, when):
    SaleFactory(customer=customer, created_at=when)


def _warm(customer, when):
    LeadScore.objects.update_or_create(
        customer=customer, defaults={"total_score": 60, "grade": "warm", "last_calculated": when}
    )


REPLIED = "Replied or meeting logged"
STOPS = [
    ("meeting-logged", _meeting, REPLIED),
    ("call-answered", _call_answered, REPLIED),
    ("email-logged-on-a-deal", _email_on_an_old_deal, REPLIED),
    ("deal-created", _deal, "Deal created"),
    ("grade-reached", _warm, "Lead turned warm or hot"),
    *[
        (name, lambda customer, when, make=make: make(customer), f"Not emailed: {label}")
        for name, make, _refusal, label in UNREACHABLE
    ],
]


@pytest.mark.parametrize(
    ("happen", "reason"), [(h, r) for _n, h, r in STOPS], ids=[n for n, _h, _r in STOPS]
)
def test_a_stop_condition_stops_the_sequence_at_the_next_steps_edge(
    clock, tick, manager, leads, happen, reason
):
    sequence = sequence_build(actor=manager, steps=[(None, 0), (None, 2), (None, 2)])
    target, bystander = leads[:2]
    enrol(sequence, [target, bystander], now=at(MONDAY, 10))
    assert tick(at(MONDAY, 10)) == 2  # the first step to both
    clock.move_to(at(day(1), 12))
    happen(target, timezone.now())

    assert tick(at(day(2), 10)) == 1  # the second step to the bystander only
    stopped = enrolment_of(target)
    assert (stopped.status, stopped.stop_reason, stopped.next_send_at, stopped.finished_at) == (
        "stopped",
        reason,
        None,
        at(day(2), 10),
    )
    assert stopped.next_position == 1  # where it stopped: before the second step
    assert tick(at(day(4), 10)) == 1
    assert received() == each([target], 0) + each([bystander], 0, 1, 2)
    assert enrolment_of(bystander).status == "completed"


@pytest.mark.parametrize(
    "happen",
    [_meeting, _call_answered, _email_on_an_old_deal, _deal],
    ids=["meeting-logged", "call-answered", "email-logged-on-a-deal", "deal-created"],
)
def test_an_activity_before_the_enrolment_does_not_stop_it(clock, tick, manager, leads, happen):
    lead = leads[0]
    happen(lead, at(day(-1), 15))  # the Sunday before
    sequence = sequence_build(actor=manager, steps=[(None, 0), (None, 2)])
    enrol(sequence, [lead], now=at(MONDAY, 10))
    assert tick(at(MONDAY, 10)) == 1
    assert tick(at(day(2), 10)) == 1
    assert received() == each([lead], 0, 1)
    enrollment = enrolment_of(lead)
    assert (enrollment.status, enrollment.stop_reason) == ("completed", "")


@pytest.mark.parametrize(
    ("stop_at_grade", "grade", "stops"),
    [("warm", "warm", True), ("warm", "hot", True), ("hot", "warm", False),
     ("hot", "hot", True), ("", "hot", False)],
)  # fmt: skip
def test_the_grade_that_stops_a_sequence_is_the_sequences_choice(
    tick, manager, leads, stop_at_grade, grade, stops
):
    lead = leads[0]
    sequence = sequence_build(actor=manager, steps=[(None, 0)], stop_at_grade=stop_at_grade)
    enrol(sequence, [lead], now=at(MONDAY, 10))
    LeadScore.objects.create(customer=lead, total_score=90 if grade == "hot" else 60, grade=grade)
    assert tick(at(MONDAY, 10)) == (0 if stops else 1)
    assert enrolment_of(lead).status == ("stopped" if stops else "completed")


def test_a_manual_stop_holds_at_once_and_only_once(tick, manager, leads):
    sequence = sequence_build(actor=manager, steps=[(None, 0), (None, 2)])
    enrol(sequence, leads[:2], now=at(MONDAY, 10))
    tick(at(MONDAY, 10))
    enrollment = enrolment_of(leads[0])
    assert enrollment_stop(actor=manager, enrollment=enrollment) is True
    assert enrollment_stop(actor=manager, enrollment=enrollment) is False
    enrollment.refresh_from_db()
    assert (enrollment.status, enrollment.stop_reason, enrollment.next_send_at) == (
        "stopped",
        MANUAL_STOP,
        None,
    )
    assert tick(at(day(2), 10)) == 1
    assert received() == each(leads[:2], 0) + each(leads[1:2], 1)


# Unreachable addresses, by every path --------------------------------------------------------


def test_unreachable_addresses_are_never_emailed_by_a_campaign(
    manager, rep, teams, django_capture_on_commit_callbacks
):
    unreachable = unreachable_customers(owner=rep)
    reachable = CustomerFactory(owner=rep)
    campaign = EmailCampaignFactory(
        created_by=manager,
        segment=CustomerSegmentFactory(created_by=manager, criteria={}),
        status=EmailCampaign.Status.DRAFT,
    )
    with django_capture_on_commit_callbacks(execute=True):
        campaign_send_now(actor=manager, campaign=campaign)
    run = CampaignRun.objects.get(campaign=campaign)
    assert run.status == "sent"
    assert run.skipped == {refusal: 1 for _customer, refusal in unreachable.values()}
    assert list(EmailMessage.objects.values_list("email", flat=True)) == [reachable.email]
    assert list(OutboxMessage.objects.values_list("to_email", flat=True)) == [reachable.email]


def test_unreachable_addresses_are_never_enrolled(manager, rep, teams):
    unreachable = unreachable_customers(owner=rep, lifecycle_stage="lead")
    sequence = sequence_build(actor=manager)
    customers = Customer.objects.filter(pk__in=[c.pk for c, _r in unreachable.values()])
    audience = audience_count(sequence=sequence, customers=customers)
    assert audience.allowed == 0
    assert audience.refused == {refusal: 1 for _customer, refusal in unreachable.values()}
    assert customers_enrol(sequence=sequence, customers=customers) == 0
    labels = {refusal: label for _n, _m, refusal, label in UNREACHABLE}
    for customer, refusal in unreachable.values():
        with pytest.raises(ValidationFailed, match=re.escape(f"emailed: {labels[refusal]}.")):
            customer_enrol(actor=manager, sequence=sequence, customer=customer)
    assert not SequenceEnrollment.objects.exists()


def test_addresses_that_became_unreachable_are_stopped_at_the_steps_edge_with_the_reason(
    tick, manager, rep, teams
):
    sequence = sequence_build(actor=manager, steps=[(None, 0), (None, 1)])
    doomed = {name: CustomerFactory(owner=rep, email=f"{name}@seq.example")
              for name, *_rest in UNREACHABLE}  # fmt: skip
    fine = CustomerFactory(owner=rep, email="fine@seq.example")
    enrol(sequence, [*doomed.values(), fine], now=at(MONDAY, 10))
    assert tick(at(MONDAY, 10)) == 6
    for name, make, _refusal, _label in UNREACHABLE:
        make(doomed[name])

    assert tick(at(day(1), 10)) == 1
    second = sequence.steps.get(position=1)
    assert list(
        EmailMessage.objects.filter(campaign_id=second.campaign_id).values_list("email", flat=True)
    ) == [fine.email]
    reasons = dict(
        SequenceEnrollment.objects.filter(status="stopped").values_list(
            "customer__email", "stop_reason"
        )
    )
    assert reasons == {
        doomed[name].email: f"Not emailed: {label}" for name, _m, _r, label in UNREACHABLE
    }
    assert received() == each([*doomed.values(), fine], 0) + each([fine], 1)


def test_provider_events_through_the_webhook_stop_the_sequence_at_the_next_edge(
    clock, tick, client, webhook_key, manager, rep, teams, django_capture_on_commit_callbacks
):
    sequence = sequence_build(actor=manager, steps=[(None, 0), (None, 1)])
    names = ["bounced", "dropped", "spam", "fine"]
    people = {name: CustomerFactory(owner=rep, email=f"{name}@seq.example") for name in names}
    enrol(sequence, people.values(), now=at(MONDAY, 10))
    assert tick(at(MONDAY, 10)) == 4
    message = {m.customer_id: m for m in EmailMessage.objects.all()}
    clock.move_to(at(MONDAY, 12))
    events = [
        {"event": "bounce", "type": "bounce", "reason": "550 5.1.1 no such user"},
        {"event": "dropped", "reason": "Invalid SMTPAPI header"},
        {"event": "spamreport"},
    ]
    for index, (name, extra) in enumerate(zip(names, events, strict=False)):
        extra |= {
            "email": people[name].email,
            "timestamp": int(time.time()),
            "sg_event_id": f"sequence-{name}-{index}",
            "email_message_id": str(message[people[name].pk].pk),
        }
    with django_capture_on_commit_callbacks(execute=True):
        assert _post(client, events, webhook_key).status_code == 200
    assert dict(Suppression.objects.values_list("email", "reason")) == {
        "bounced@seq.example": "bounce",
        "dropped@seq.example": "dropped",
        "spam@seq.example": "spam",
    }

    assert tick(at(day(1), 10)) == 1
    reasons = dict(SequenceEnrollment.objects.values_list("customer__email", "stop_reason"))
    assert reasons == {
        "bounced@seq.example": "Not emailed: bounced",
        "dropped@seq.example": "Not emailed: dropped by the provider",
        # A spam report unsubscribes and withdraws consent too; the gate names the report.
        "spam@seq.example": "Not emailed: spam report",
        "fine@seq.example": "",
    }
    assert received() == each(people.values(), 0) + each([people["fine"]], 1)


def test_an_address_refused_after_the_tick_queued_it_is_cancelled_before_its_batch(
    manager, rep, teams, django_capture_on_commit_callbacks
):
    sequence = sequence_build(actor=manager, steps=[(None, 0)])
    doomed = {name: CustomerFactory(owner=rep, email=f"{name}@seq.example")
              for name, *_rest in UNREACHABLE}  # fmt: skip
    fine = CustomerFactory(owner=rep, email="fine@seq.example")
    enrol(sequence, [*doomed.values(), fine], now=at(MONDAY, 10))
    with django_capture_on_commit_callbacks(execute=False):  # the sender has not run yet
        assert sequences_tick(now=at(MONDAY, 10)) == 6
    for name, make, _refusal, _label in UNREACHABLE:
        make(doomed[name])

    run = CampaignRun.objects.get()
    assert run_send(run_id=run.pk) == "sent"
    assert list(OutboxMessage.objects.values_list("to_email", flat=True)) == [fine.email]
    cancelled = dict(EmailMessage.objects.filter(status="cancelled").values_list("email", "error"))
    assert cancelled == {
        doomed[name].email: f"Not sent: {label} (found just before its batch went)."
        for name, _m, _r, label in UNREACHABLE
    }
    run.refresh_from_db()
    assert run.skipped == {refusal: 1 for _n, _m, refusal, _l in UNREACHABLE}


@pytest.fixture
def warm_leads_with_drafts(rep, teams, django_capture_on_commit_callbacks):
    """One warm lead per unreachable kind, each with the workflow's email waiting as a draft
    on its rep's task (the managers chose the warm template, not automatic sending)."""
    LeadEmailSettings.objects.update_or_create(
        pk=1,
        defaults={
            "warm_template": EmailTemplateFactory(text_body="Hi {{ first_name }}, a case study."),
            "send_automatically": False,
        },
    )
    warm = {"company_size": 5000, "budget_range": "over_250k", "purchase_timeline": "immediate"}
    leads = {name: CustomerFactory(owner=rep, email=f"{name}@warm.example", lifecycle_stage="lead",
                                   **warm)
             for name, *_rest in UNREACHABLE}  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        leads_rescore(customer_ids=[lead.pk for lead in leads.values()])
    assert WorkflowRun.objects.filter(grade="warm", status="done").count() == len(leads)
    assert EmailDraft.objects.filter(status="draft").count() == len(leads)
    return leads


def test_workflow_drafts_sent_automatically_to_addresses_that_became_unreachable_are_refused(
    warm_leads_with_drafts, django_capture_on_commit_callbacks
):
    for name, make, _refusal, _label in UNREACHABLE:
        make(warm_leads_with_drafts[name])
    with django_capture_on_commit_callbacks(execute=True):
        for draft_id in EmailDraft.objects.values_list("pk", flat=True):
            app.tasks["campaigns.send_draft"].apply(args=[draft_id], throw=True)
    assert mail.outbox == [] and not OutboxMessage.objects.exists()
    drafts = {d.customer.email: d for d in EmailDraft.objects.select_related("customer")}
    for name, _make, _refusal, label in UNREACHABLE:
        draft = drafts[warm_leads_with_drafts[name].email]
        assert (draft.status, draft.error, draft.sent_at) == (
            "refused",
            f"Not sent: {label}.",
            None,
        )


def test_a_draft_the_rep_sends_goes_once_and_only_where_the_gate_allows(warm_leads_with_drafts):
    name, make, _refusal, label = UNREACHABLE[0]
    refused_lead = warm_leads_with_drafts[name]
    make(refused_lead)
    draft = EmailDraft.objects.get(customer=refused_lead)
    assert draft_send(actor=draft.rep, draft=draft).status == "refused"
    other = EmailDraft.objects.exclude(customer=refused_lead).first()
    assert draft_send(actor=other.rep, draft=other).status == "sent"
    with pytest.raises(ValidationFailed, match="sent already"):
        draft_send(actor=other.rep, draft=other)
    assert [message.to for message in mail.outbox] == [[other.customer.email]]
    assert mail.outbox[0].reply_to == [other.rep.email]


# The CSV import: never an email by itself; the enrol choice enrols the consenting new leads --


IMPORT_HEADER = "name,email,consent,stage,employees,budget,timeline,authority,source\n"
HOT_PROFILE = "5000,over_250k,immediate,decision_maker,referral"
COLD_PROFILE = ",,,,other"
EXISTING = 10  # the first rows are customers the CRM has already


def _consent(i: int) -> str:
    return "no" if i % 3 == 0 else ("" if i % 7 == 0 else "yes")


def _stage(i: int) -> str:
    return "customer" if i % 11 == 0 else "lead"


def _import_rows() -> str:
    return IMPORT_HEADER + "".join(
        f"Person {i},person{i}@import.example,{_consent(i)},{_stage(i)},"
        f"{HOT_PROFILE if i % 10 == 0 else COLD_PROFILE}\n"
        for i in range(1000)
    )


def _consenting_new_leads() -> set[str]:
    return {
        f"person{i}@import.example"
        for i in range(EXISTING, 1000)
        if _consent(i) == "yes" and _stage(i) == "lead"
    }


@pytest.fixture
def existing_customers(rep, teams):
    """The file's first rows are leads the CRM has (scored, consenting): skipped, not new."""
    existing = [
        CustomerFactory(owner=rep, email=f"person{i}@import.example", lifecycle_stage="lead")
        for i in range(EXISTING)
    ]
    leads_rescore(customer_ids=[c.pk for c in existing], start_workflows=False)
    return existing


def _import_through_the_pages(client, capture, **choice) -> CustomerImport:
    upload = client.post(
        reverse("customers:import_upload"),
        {
            "file": SimpleUploadedFile("leads.csv", _import_rows().encode()),
            "duplicate_mode": "skip",
        },
    )
    assert upload.status_code == 302, upload.content.decode()[:2000]
    customer_import = CustomerImport.objects.latest("pk")
    post = {f"map_{field}": "" for field in csv_import.IMPORTABLE_FIELDS}
    post.update({f"map_{f}": str(c) for f, c in customer_import.column_mapping.items()})
    post.update({"duplicate_mode": "skip", **choice})
    with capture(execute=True):
        done = client.post(upload["Location"], post)
    assert done.status_code == 302, done.content.decode()[:2000]
    customer_import.refresh_from_db()
    assert customer_import.status == "done", customer_import.failure_reason
    assert (customer_import.created_count, customer_import.skipped_count) == (1000 - EXISTING,
                                                                              EXISTING)  # fmt: skip
    return customer_import


def test_a_1000_row_import_sends_nothing_even_after_every_beat_task_has_run(
    clock, rep_client, manager, existing_customers, django_capture_on_commit_callbacks
):
    # Everything that could email a lead is switched on: the cold leads' sequence, and the
    # hot and warm emails sent without the rep.
    LeadEmailSettings.objects.update_or_create(
        pk=1,
        defaults={
            "cold_sequence": sequence_build(actor=manager, steps=[(None, 0), (None, 1)]),
            "hot_template": EmailTemplateFactory(),
            "warm_template": EmailTemplateFactory(),
            "send_automatically": True,
        },
    )
    _import_through_the_pages(rep_client, django_capture_on_commit_callbacks)
    grades = Counter(LeadScore.objects.values_list("grade", flat=True))
    assert grades["cold"] and grades["hot"] + grades["warm"]  # graded, all kinds
    assert sum(grades.values()) == Customer.objects.filter(lifecycle_stage="lead").count()

    app.loader.import_default_modules()
    assert "campaigns.sequence_tick" in {e["task"] for e in settings.CELERY_BEAT_SCHEDULE.values()}
    for moment in (at(MONDAY, 10), at(day(1), 10), at(day(7), 10)):  # in the window
        clock.move_to(moment)
        with django_capture_on_commit_callbacks(execute=True):
            for entry in settings.CELERY_BEAT_SCHEDULE.values():
                app.tasks[entry["task"]].apply(throw=True)

    assert not ImportEnrolment.objects.exists()
    assert not SequenceEnrollment.objects.exists()
    assert not WorkflowRun.objects.exists() and not EmailDraft.objects.exists()
    assert not CampaignRun.objects.exists() and not EmailMessage.objects.exists()
    assert not OutboxMessage.objects.exists() and mail.outbox == []


def test_the_import_enrol_choice_enrols_exactly_the_consenting_new_leads(
    rep_client, rep, manager, existing_customers, django_capture_on_commit_callbacks
):
    chosen = sequence_build(actor=manager, name="Imported leads")
    other = sequence_build(actor=manager, name="Another")
    _import_upload = rep_client.post(
        reverse("customers:import_upload"),
        {"file": SimpleUploadedFile("x.csv", b"name,email\nA,a@x.example\n"),
         "duplicate_mode": "skip"},
    )  # fmt: skip
    page = rep_client.get(_import_upload["Location"]).content.decode()
    assert "data-import-enrol" in page and "Imported leads" in page and "Another" in page

    customer_import = _import_through_the_pages(
        rep_client, django_capture_on_commit_callbacks, enrol_sequence=str(chosen.pk)
    )
    expected = _consenting_new_leads()
    assert len(expected) == 514  # of the 990 new rows: consent "yes", stage "lead"
    enrolled = SequenceEnrollment.objects.filter(sequence=chosen)
    assert set(enrolled.values_list("customer__email", flat=True)) == expected
    assert enrolled.count() == len(expected)
    assert set(enrolled.values_list("status", "next_position", "enrolled_by")) == {
        ("active", 0, rep.pk)
    }
    choice = ImportEnrolment.objects.get(customer_import=customer_import)
    assert (choice.sequence, choice.chosen_by, choice.enrolled_count) == (
        chosen,
        rep,
        len(expected),
    )
    assert not SequenceEnrollment.objects.filter(sequence=other).exists()
    assert not OutboxMessage.objects.exists()  # enrolled; the tick sends, in the window


def test_only_an_active_sequence_with_steps_can_be_chosen_for_an_import(rep, manager, teams):
    customer_import = csv_import.customer_import_upload(
        actor=rep,
        uploaded_file=SimpleUploadedFile("x.csv", b"name,email\nA,a@x.example\n"),
        duplicate_mode="skip",
    )
    paused = sequence_build(actor=manager, is_active=False)
    with pytest.raises(ValidationFailed, match="active sequence"):
        import_enrolment_choose(customer_import=customer_import, actor=rep,
                                sequence_id=str(paused.pk))  # fmt: skip
    import_enrolment_choose(customer_import=customer_import, actor=rep, sequence_id="")
    assert not ImportEnrolment.objects.exists()
