"""leads.scoring: each factor's points from the managers' rules, engagement decay, caps,
grades."""

import pytest

from leads.models import ScoringRule
from tests.leads.helpers import add_activity, new_lead, score_of

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "size,points",
    [(None, 0), (0, 0), (1, 5), (10, 5), (11, 10), (50, 10), (51, 15), (200, 15), (201, 20)],
)
def test_company_size_bands_at_their_edges(size, points):
    assert score_of(new_lead(company_size=size)).company_size_score == points


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
    assert getattr(score_of(new_lead(**{field: value})), column) == points


@pytest.mark.parametrize("days_ago,points", [(0, 8), (30, 4), (60, 2), (90, 1), (400, 0)])
def test_engagement_decays_with_a_30_day_half_life(days_ago, points):
    lead = new_lead()
    add_activity(lead, 8, days_ago)
    assert score_of(lead).engagement_score == points


def test_future_activities_do_not_count():
    lead = new_lead()
    add_activity(lead, 8, -3)
    assert score_of(lead).engagement_score == 0


def test_each_factor_is_capped_and_total_at_most_100():
    lead = new_lead(
        company_size=5000,
        budget_range="over_250k",
        purchase_timeline="immediate",
        decision_authority="decision_maker",
        source="referral",
    )
    for _ in range(10):
        add_activity(lead, 10, 0)
    ScoringRule.objects.filter(factor="source_quality", key="referral").update(points=60)
    score = score_of(lead)
    assert score.engagement_score == 20
    assert score.source_quality_score == 10
    assert score.total_score == 100
    assert score.grade == "hot"


@pytest.mark.parametrize("total,grade", [(49, "cold"), (50, "warm"), (79, "warm"), (80, "hot")])
def test_grade_boundaries(total, grade):
    from leads.models import grade_for

    assert grade_for(total) == grade
