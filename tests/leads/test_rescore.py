"""leads.services.rescore: scores written in chunks with their history, grade changes
reported once, the rescore_leads command and the tracked run after a rule change."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from campaigns.models import LeadEmailSettings, SequenceEnrollment
from customers.models import Customer
from leads.models import LeadScore, RescoreRun, ScoreChange, ScoringRule, WorkflowRun
from leads.services.rescore import leads_rescore, rescore_run_execute
from tests.factories import CustomerFactory, sequence_build
from tests.leads.helpers import NOW, add_activity, new_lead, score_of

pytestmark = pytest.mark.django_db


def test_rule_change_changes_the_score_and_history():
    lead = new_lead(budget_range="10k_50k")
    assert score_of(lead).budget_score == 10
    ScoringRule.objects.filter(factor="budget", key="10k_50k").update(points=17)
    assert score_of(lead).budget_score == 17
    assert list(
        ScoreChange.objects.filter(customer=lead).values_list("total_score", flat=True)
    ) == [
        11,
        18,
    ]


def test_unchanged_score_writes_no_history():
    lead = new_lead()
    score_of(lead)
    score_of(lead)
    assert ScoreChange.objects.filter(customer=lead).count() == 1


def test_only_leads_are_scored():
    customer = CustomerFactory(lifecycle_stage=Customer.LifecycleStage.CUSTOMER)
    leads_rescore(now=NOW)
    assert not LeadScore.objects.filter(customer=customer).exists()


def test_grade_transitions_are_reported():
    lead = new_lead(company_size=5000, budget_range="over_250k", purchase_timeline="immediate",
                 decision_authority="decision_maker", source="referral")  # fmt: skip
    (first,) = leads_rescore(customer_ids=[lead.pk], now=NOW)
    assert (first.previous, first.current) == (None, "hot")
    assert leads_rescore(customer_ids=[lead.pk], now=NOW) == []


def test_rescore_query_count_does_not_grow_with_leads():
    LeadEmailSettings.current()  # made on its first read: not a cost of the first rescoring

    def queries_for(count: int) -> int:
        Customer.objects.all().delete()
        for _ in range(count):
            lead = new_lead(company_size=20)
            add_activity(lead, 5, 3)
        with CaptureQueriesContext(connection) as queries:
            leads_rescore(now=NOW)
        return len(queries)

    assert queries_for(40) == queries_for(3)


def test_an_unchanged_lead_still_records_when_it_was_scored():
    lead = new_lead(company_size=20)
    leads_rescore(customer_ids=[lead.pk], now=NOW)
    later = NOW + timedelta(hours=3)
    leads_rescore(customer_ids=[lead.pk], now=later)
    score = LeadScore.objects.get(customer=lead)
    assert (score.company_size_score, score.last_calculated) == (10, later)


def test_editing_a_lead_rescores_it_after_commit(rep, teams, django_capture_on_commit_callbacks):
    from customers.services import customer_update

    lead = new_lead(owner=rep, budget_range="")
    with django_capture_on_commit_callbacks(execute=True):
        customer_update(actor=rep, customer=lead, data={"budget_range": "over_250k"})
    assert LeadScore.objects.get(customer=lead).budget_score == 20


@pytest.fixture
def cold_sequence(manager):
    """The sequence the managers chose for cold leads (LeadEmailSettings.cold_sequence)."""
    sequence = sequence_build(actor=manager)
    LeadEmailSettings.objects.update_or_create(pk=1, defaults={"cold_sequence": sequence})
    return sequence


def test_rescore_leads_command_shows_progress_and_starts_workflows(rep, teams, cold_sequence):
    lead = new_lead(owner=rep)
    out = StringIO()
    call_command("rescore_leads", stdout=out)
    assert "1/1 leads" in out.getvalue() and "1 grade change(s)" in out.getvalue()
    assert LeadScore.objects.get(customer=lead).grade == "cold"
    enrollment = SequenceEnrollment.objects.get(customer=lead)
    assert (enrollment.sequence, enrollment.status) == (cold_sequence, "active")


def test_rescore_leads_without_workflows_grades_but_starts_nothing(rep, teams, cold_sequence):
    lead = new_lead(owner=rep)
    call_command("rescore_leads", "--no-workflows", stdout=StringIO())
    assert LeadScore.objects.get(customer=lead).grade == "cold"
    assert not SequenceEnrollment.objects.exists() and not WorkflowRun.objects.exists()


def test_a_rescore_run_executes_once(manager):
    run = RescoreRun.objects.create(started_by=manager)
    assert rescore_run_execute(run_id=run.pk).status == "done"
    assert rescore_run_execute(run_id=run.pk) is None
