from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from crm.errors import ValidationFailed
from customers.models import Customer
from leads.models import (
    LeadActivity,
    LeadScore,
    NurtureEnrollment,
    ScoreChange,
    ScoringRule,
    WorkflowRun,
)
from leads.services.activities import lead_activity_record
from leads.services.rescore import leads_rescore
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

NOW = timezone.now()


def _lead(**fields):
    defaults = {"lifecycle_stage": "lead", "source": "other", "company_size": None}
    return CustomerFactory(**{**defaults, **fields})


def _score(customer) -> LeadScore:
    leads_rescore(customer_ids=[customer.pk], now=NOW)
    return LeadScore.objects.get(customer=customer)


@pytest.mark.parametrize(
    "size,points",
    [(None, 0), (0, 0), (1, 5), (10, 5), (11, 10), (50, 10), (51, 15), (200, 15), (201, 20)],
)
def test_company_size_bands_at_their_edges(size, points):
    assert _score(_lead(company_size=size)).company_size_score == points


@pytest.mark.parametrize(
    "field,value,column,points",
    [
        ("budget_range", "over_250k", "budget_score", 20),
        ("budget_range", "under_10k", "budget_score", 5),
        ("budget_range", "", "budget_score", 0),
        ("purchase_timeline", "immediate", "timeline_score", 15),
        ("purchase_timeline", "later", "timeline_score", 2),
        ("decision_authority", "decision_maker", "authority_score", 15),
        ("decision_authority", "user", "authority_score", 5),
        ("source", "referral", "source_quality_score", 10),
        ("source", "other", "source_quality_score", 1),
    ],
)
def test_keyed_factors(field, value, column, points):
    assert getattr(_score(_lead(**{field: value})), column) == points


def _activity(customer, impact: int, days_ago: float):
    return LeadActivity.objects.create(
        customer=customer,
        activity_type="form_submit",
        score_impact=impact,
        timestamp=NOW - timedelta(days=days_ago),
    )


@pytest.mark.parametrize("days_ago,points", [(0, 8), (30, 4), (60, 2), (90, 1), (400, 0)])
def test_engagement_decays_with_a_30_day_half_life(days_ago, points):
    lead = _lead()
    _activity(lead, 8, days_ago)
    assert _score(lead).engagement_score == points


def test_future_activities_do_not_count():
    lead = _lead()
    _activity(lead, 8, -3)
    assert _score(lead).engagement_score == 0


def test_each_factor_is_capped_and_total_at_most_100():
    lead = _lead(
        company_size=5000,
        budget_range="over_250k",
        purchase_timeline="immediate",
        decision_authority="decision_maker",
        source="referral",
    )
    for _ in range(10):
        _activity(lead, 10, 0)
    ScoringRule.objects.filter(factor="source_quality", key="referral").update(points=60)
    score = _score(lead)
    assert score.engagement_score == 20
    assert score.source_quality_score == 10
    assert score.total_score == 100
    assert score.grade == "hot"


@pytest.mark.parametrize("total,grade", [(49, "cold"), (50, "warm"), (79, "warm"), (80, "hot")])
def test_grade_boundaries(total, grade):
    from leads.models import grade_for

    assert grade_for(total) == grade


def test_rule_change_changes_the_score_and_history():
    lead = _lead(budget_range="10k_50k")
    assert _score(lead).budget_score == 10
    ScoringRule.objects.filter(factor="budget", key="10k_50k").update(points=17)
    assert _score(lead).budget_score == 17
    assert list(
        ScoreChange.objects.filter(customer=lead).values_list("total_score", flat=True)
    ) == [
        11,
        18,
    ]


def test_unchanged_score_writes_no_history():
    lead = _lead()
    _score(lead)
    _score(lead)
    assert ScoreChange.objects.filter(customer=lead).count() == 1


def test_only_leads_are_scored():
    customer = CustomerFactory(lifecycle_stage=Customer.LifecycleStage.CUSTOMER)
    leads_rescore(now=NOW)
    assert not LeadScore.objects.filter(customer=customer).exists()


def test_grade_transitions_are_reported():
    lead = _lead(company_size=5000, budget_range="over_250k", purchase_timeline="immediate",
                 decision_authority="decision_maker", source="referral")  # fmt: skip
    (first,) = leads_rescore(customer_ids=[lead.pk], now=NOW)
    assert (first.previous, first.current) == (None, "hot")
    assert leads_rescore(customer_ids=[lead.pk], now=NOW) == []


def test_rescore_query_count_does_not_grow_with_leads():
    def queries_for(count: int) -> int:
        Customer.objects.all().delete()
        for _ in range(count):
            lead = _lead(company_size=20)
            _activity(lead, 5, 3)
        with CaptureQueriesContext(connection) as queries:
            leads_rescore(now=NOW)
        return len(queries)

    assert queries_for(40) == queries_for(3)


def test_recording_an_activity_rescores_after_commit(django_capture_on_commit_callbacks):
    lead = _lead()
    with django_capture_on_commit_callbacks(execute=True):
        activity = lead_activity_record(customer=lead, activity_type="meeting_scheduled")
    assert activity.score_impact == 10
    assert LeadScore.objects.get(customer=lead).engagement_score == 10


def test_unknown_activity_type_is_refused():
    with pytest.raises(ValidationFailed):
        lead_activity_record(customer=_lead(), activity_type="telepathy")
    assert not LeadActivity.objects.exists()


def test_reset_to_default_rules():
    ScoringRule.objects.filter(factor="budget").update(points=1)
    from leads.services.rules import scoring_rules_reset_defaults

    rules = scoring_rules_reset_defaults()
    assert ScoringRule.objects.count() == len(rules) == 4 + 4 + 4 + 3 + 7 + 7
    assert ScoringRule.objects.get(factor="budget", key="over_250k").points == 20


def test_an_unchanged_lead_still_records_when_it_was_scored():
    lead = _lead(company_size=20)
    leads_rescore(customer_ids=[lead.pk], now=NOW)
    later = NOW + timedelta(hours=3)
    leads_rescore(customer_ids=[lead.pk], now=later)
    score = LeadScore.objects.get(customer=lead)
    assert (score.company_size_score, score.last_calculated) == (10, later)


def test_editing_a_lead_rescores_it_after_commit(rep, teams, django_capture_on_commit_callbacks):
    from customers.services import customer_update

    lead = _lead(owner=rep, budget_range="")
    with django_capture_on_commit_callbacks(execute=True):
        customer_update(actor=rep, customer=lead, data={"budget_range": "over_250k"})
    assert LeadScore.objects.get(customer=lead).budget_score == 20


def test_rescore_leads_command_shows_progress_and_starts_workflows(rep, teams):
    lead = _lead(owner=rep)
    out = StringIO()
    call_command("rescore_leads", stdout=out)
    assert "1/1 leads" in out.getvalue() and "1 grade change(s)" in out.getvalue()
    assert LeadScore.objects.get(customer=lead).grade == "cold"
    assert NurtureEnrollment.objects.filter(customer=lead).exists()


def test_rescore_leads_without_workflows_grades_but_starts_nothing(rep, teams):
    lead = _lead(owner=rep)
    call_command("rescore_leads", "--no-workflows", stdout=StringIO())
    assert LeadScore.objects.get(customer=lead).grade == "cold"
    assert not NurtureEnrollment.objects.exists() and not WorkflowRun.objects.exists()
