"""The demo's email sequences: a four-step nurture for cold leads and a case-study series for
warm ones, the lead email settings that use them, and a few weeks of their history.

The history is made by the sequences' own services, run at past moments: leads are enrolled
(customers_enrol) in cohorts over the last four weeks, and the scheduler tick
(sequences_tick) runs at 10:00 on each weekday since, its runs sent at once (run_send) into
the local outbox (or the provider, when one is configured). So the enrolments stand at every
step, the earliest have completed, and the stops are the tick's own: a few leads
unsubscribed after their first email ("Not emailed: unsubscribed"), and any that got a deal
or logged a reply since they were enrolled; the manager stopped a few by hand. The last tick, at the
latest weekday 10:00, queues the newest cohort's first email. The messages' send times are
the seed's, not the past moments.
"""

import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import partial

from django.contrib.auth.models import AbstractUser
from django.utils import timezone

from campaigns.models import (
    CampaignRun,
    EmailTemplate,
    LeadEmailSettings,
    Sequence,
    SequenceEnrollment,
)
from campaigns.sending import run_send
from campaigns.sequences.builder import StepDraft, sequence_save
from campaigns.sequences.enrolment import MANUAL_STOP, customers_enrol, enrollment_stop
from campaigns.sequences.tick import sequences_tick
from campaigns.services import template_save
from customers.email_gate import EmailKind, with_email_refusal
from customers.models import Customer
from customers.services import customers_mark_unsubscribed
from leads.models import Grade

NURTURE = "Cold lead nurture"
CASE_STUDIES = "Case studies for warm leads"
CASE_STUDY = "Case study"  # the warm leads' one-to-one email, and the series' first step
PERSONAL_INTRODUCTION = "Personal introduction"  # the hot leads' one-to-one email
WINDOW = (time(9, 0), time(17, 0))
TICK_AT = time(10, 0)
ENROL_AT = time(9, 0)

_UNSUBSCRIBE_HTML = '<p><small><a href="{{ unsubscribe_url }}">Unsubscribe</a></small></p>'
_UNSUBSCRIBE_TEXT = "\n\nUnsubscribe: {{ unsubscribe_url }}"


@dataclass(frozen=True)
class DemoTemplate:
    name: str
    category: str
    subject: str
    paragraphs: tuple[str, ...]
    marketing: bool = True  # sent in bulk: an unsubscribe link at the bottom


TEMPLATES = [
    DemoTemplate(
        "Nurture 1: Getting started",
        EmailTemplate.Category.NURTURE,
        "Three things teams like {{ company }} automate first",
        (
            "Most teams we talk to start with the same three chores: follow-up reminders, "
            "the weekly pipeline report and tidying up duplicate contacts.",
            "Each takes about ten minutes to set up. Want the short guide?",
        ),
    ),
    DemoTemplate(
        "Nurture 2: A day a week",
        EmailTemplate.Category.NURTURE,
        '{{ first_name|default:"Hi" }}, how {{ company }} could save a day a week',
        (
            "A sales team of eight told us they got a day a week back once quotes, reminders "
            "and hand-offs ran by themselves.",
            "Here is how they set it up, step by step.",
        ),
    ),
    DemoTemplate(
        "Nurture 3: A customer story",
        EmailTemplate.Category.NURTURE,
        "How a team like {{ company }} shortened its sales cycle",
        (
            "Northwind's reps used to chase every lead the same way. Scoring them showed "
            "where to spend the week, and their cycle went from 60 to 41 days.",
        ),
    ),
    DemoTemplate(
        "Nurture 4: Fifteen minutes?",
        EmailTemplate.Category.NURTURE,
        'Still curious, {{ first_name|default:"there" }}? Fifteen minutes with {{ owner_name }}',
        (
            "If any of this sounded familiar, {{ owner_name }} would be glad to show you "
            "around in fifteen minutes, on your schedule.",
            "Just reply to this email, or write to {{ owner_email }}.",
        ),
    ),
    DemoTemplate(
        CASE_STUDY,
        EmailTemplate.Category.FOLLOW_UP,
        '{{ first_name|default:"Hi" }}, a case study for {{ company }}',
        (
            "Since you have been looking at what we do, here is how a team much like "
            "{{ company }} cut its quote turnaround from three days to one.",
            "Happy to walk you through it: {{ owner_name }}, {{ owner_email }}.",
        ),
    ),
    DemoTemplate(
        "Case study follow-up",
        EmailTemplate.Category.FOLLOW_UP,
        "The numbers behind the case study",
        (
            "A few of you asked for the numbers: 38 % fewer stalled deals in the first "
            "quarter, and forecasts within 5 % of the result.",
            "{{ owner_name }} can share the full write-up.",
        ),
    ),
    DemoTemplate(
        PERSONAL_INTRODUCTION,
        EmailTemplate.Category.FOLLOW_UP,
        '{{ first_name|default:"Hello" }}, {{ owner_name }} here',
        (
            "I saw that {{ company }} has been looking into how we work, and I would love "
            "to hear what you are trying to solve.",
            "Would a short call this week suit you? Reply with a time that works, or "
            "reach me at {{ owner_email }}.",
            "Best,\n{{ owner_name }}",
        ),
        marketing=False,
    ),
]
# (template, days after the previous step) of each step.
NURTURE_STEPS = [
    ("Nurture 1: Getting started", 0),
    ("Nurture 2: A day a week", 3),
    ("Nurture 3: A customer story", 7),
    ("Nurture 4: Fifteen minutes?", 7),
]
CASE_STUDY_STEPS = [
    (CASE_STUDY, 0),
    ("Case study follow-up", 4),
    ("Nurture 4: Fifteen minutes?", 7),
]
# Cold leads enrolled in the nurture: the share of them in each cohort, enrolled this many
# weekdays before the last tick. The first cohort has completed; the last gets its first
# email from the last tick.
NURTURE_ENROLMENTS = 300
NURTURE_COHORTS = [(0.3, 19), (0.25, 9), (0.25, 4), (0.2, 0)]
CASE_STUDY_ENROLMENTS = 40
CASE_STUDY_COHORTS = [(0.5, 8), (0.5, 3)]
UNSUBSCRIBED_SHARE = 0.04  # of the first two cohorts, after their first email
STOPPED_BY_HAND = 3  # of the third cohort, by the manager


@dataclass
class DemoSequences:
    nurture: Sequence
    case_studies: Sequence
    enrolled: int
    emails: int  # queued by the ticks and sent


def demo_sequences_ensure(
    *, manager: AbstractUser, seed: int, now: datetime | None = None
) -> DemoSequences | None:
    """The templates, both sequences, the lead email settings and the sequences' history;
    None (nothing done) when the nurture sequence exists already."""
    if Sequence.objects.filter(name=NURTURE).exists():
        return None
    now = now or timezone.now()
    templates = {spec.name: _template_ensure(manager, spec) for spec in TEMPLATES}
    nurture = _sequence(
        manager,
        name=NURTURE,
        description="Cold leads: an email every week or so until they warm up.",
        steps=[StepDraft(templates[name], days) for name, days in NURTURE_STEPS],
        stop_at_grade=Sequence.StopGrade.WARM,
    )
    case_studies = _sequence(
        manager,
        name=CASE_STUDIES,
        description="Warm leads: customer stories until they turn hot.",
        steps=[StepDraft(templates[name], days) for name, days in CASE_STUDY_STEPS],
        stop_at_grade=Sequence.StopGrade.HOT,
    )
    LeadEmailSettings.objects.update_or_create(
        pk=1,
        defaults={
            "cold_sequence": nurture,
            "warm_template": templates[CASE_STUDY],
            "hot_template": templates[PERSONAL_INTRODUCTION],
            "updated_by": manager,
            "updated_at": now,
        },
    )
    return _history(manager=manager, nurture=nurture, case_studies=case_studies, seed=seed, now=now)


def _template_ensure(manager: AbstractUser, spec: DemoTemplate) -> EmailTemplate:
    existing = EmailTemplate.objects.filter(name=spec.name).first()
    if existing is not None:
        return existing
    greeting = '{{ first_name|default:"there" }}'
    paragraphs = list(spec.paragraphs)
    html = f"<p>Hi {greeting},</p>" + "".join(
        "<p>" + p.replace("\n", "<br>") + "</p>" for p in paragraphs
    )
    text = f"Hi {greeting},\n\n" + "\n\n".join(paragraphs)
    if spec.marketing:
        html += _UNSUBSCRIBE_HTML
        text += _UNSUBSCRIBE_TEXT
    return template_save(
        actor=manager,
        data={
            "name": spec.name,
            "category": spec.category,
            "subject": spec.subject,
            "html_body": html,
            "text_body": text,
        },
    )


def _sequence(
    manager: AbstractUser, *, name: str, description: str, steps: list[StepDraft], stop_at_grade
) -> Sequence:
    return sequence_save(
        actor=manager,
        data={
            "name": name,
            "description": description,
            "window_start": WINDOW[0],
            "window_end": WINDOW[1],
            "stop_at_grade": stop_at_grade,
        },
        steps=steps,
    )


# The history ---------------------------------------------------------------------------------


def last_tick_day(now: datetime) -> date:
    """The latest weekday whose 10:00 (local) is not after `now`."""
    local = timezone.localtime(now)
    day = local.date() if local.time() >= TICK_AT else local.date() - timedelta(days=1)
    while day.weekday() >= 5:
        day -= timedelta(days=1)
    return day


def _weekdays_before(day: date, count: int) -> date:
    while count:
        day -= timedelta(days=1)
        if day.weekday() < 5:
            count -= 1
    return day


def _at(day: date, moment: time) -> datetime:
    return timezone.make_aware(datetime.combine(day, moment))


def _allowed(customers) -> list[int]:
    """The ids of `customers` the email gate lets marketing reach, in id order."""
    return list(
        with_email_refusal(customers, EmailKind.MARKETING)
        .filter(email_refusal__isnull=True)
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def _cohorts(rng, ids: list[int], total: int, shares) -> list[tuple[int, list[int]]]:
    """(weekdays back, the ids enrolled then) for each cohort, drawn from `ids`."""
    chosen = rng.sample(ids, min(total, len(ids)))
    cohorts, start = [], 0
    for index, (share, weekdays_back) in enumerate(shares):
        end = len(chosen) if index == len(shares) - 1 else start + round(share * len(chosen))
        cohorts.append((weekdays_back, chosen[start:end]))
        start = end
    return cohorts


def _history(*, manager, nurture, case_studies, seed: int, now: datetime) -> DemoSequences:
    """Enrol the cohorts and tick every weekday since the first, sending what each tick
    queued; the manager enrols them (as from a segment)."""
    rng = random.Random(seed)
    last_day = last_tick_day(now)
    leads = Customer.objects.leads()
    cold = _allowed(leads.filter(lead_score__grade=Grade.COLD))
    warm = _allowed(leads.filter(lead_score__grade=Grade.WARM))
    nurture_cohorts = _cohorts(rng, cold, NURTURE_ENROLMENTS, NURTURE_COHORTS)
    case_cohorts = _cohorts(rng, warm, CASE_STUDY_ENROLMENTS, CASE_STUDY_COHORTS)
    # (moment, kind, what happens): at one moment, enrolments go first, then unsubscribes,
    # then the tick.
    events: list[tuple[datetime, int, Callable[[], tuple[str, int]]]] = []
    for sequence, cohorts in ((nurture, nurture_cohorts), (case_studies, case_cohorts)):
        for weekdays_back, ids in cohorts:
            moment = _at(_weekdays_before(last_day, weekdays_back), ENROL_AT)
            events.append((moment, 0, partial(_enrol, sequence, ids, manager, moment)))
    # Some of the first two nurture cohorts unsubscribe the day after their first email.
    for weekdays_back, ids in nurture_cohorts[:2]:
        leaving = rng.sample(ids, round(UNSUBSCRIBED_SHARE * len(ids)))
        moment = _at(_weekdays_before(last_day, weekdays_back - 1), time(14, 0))
        events.append((moment, 1, partial(_unsubscribe, leaving, moment)))
    day = _weekdays_before(last_day, max(back for _share, back in NURTURE_COHORTS))
    while day <= last_day:
        if day.weekday() < 5:
            events.append((_at(day, TICK_AT), 2, partial(_tick, _at(day, TICK_AT))))
        day += timedelta(days=1)
    done: Counter = Counter()
    for _moment, _kind, happen in sorted(events, key=lambda event: event[:2]):
        what, count = happen()
        done[what] += count
    # The manager took a few of the third cohort out of the nurture by hand.
    third = nurture_cohorts[2][1][:STOPPED_BY_HAND]
    active = SequenceEnrollment.objects.filter(
        sequence=nurture, customer_id__in=third, status=SequenceEnrollment.Status.ACTIVE
    )
    for enrollment in active:
        enrollment_stop(actor=manager, enrollment=enrollment, reason=MANUAL_STOP)
    return DemoSequences(
        nurture=nurture,
        case_studies=case_studies,
        enrolled=done["enrolled"],
        emails=done["queued"],
    )


def _enrol(sequence: Sequence, ids: list[int], actor, moment: datetime) -> tuple[str, int]:
    if not ids:  # customers_enrol cannot INSERT ... SELECT from an empty id list
        return "enrolled", 0
    customers = Customer.objects.filter(pk__in=ids)
    return "enrolled", customers_enrol(
        sequence=sequence, customers=customers, actor=actor, now=moment
    )


def _unsubscribe(ids: list[int], moment: datetime) -> tuple[str, int]:
    return "unsubscribed", customers_mark_unsubscribed(customer_ids=ids, at=moment)


def _tick(moment: datetime) -> tuple[str, int]:
    """The scheduler tick at `moment`, then its runs sent as a worker would send them (the
    tick also queues the send task after commit; a worker that gets it finds them sent)."""
    queued = sequences_tick(now=moment)
    runs = CampaignRun.objects.filter(
        campaign__sequence_step__isnull=False, status=CampaignRun.Status.SENDING
    )
    for run_id in list(runs.values_list("pk", flat=True)):
        run_send(run_id=run_id)
    return "queued", queued
