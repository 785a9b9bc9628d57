"""Scoring leads with the active model: through the leads' rescoring, with explanations,
after an activity, with a tampered file refused."""

import pytest
from django.utils import timezone

from ai.models import LeadScoringModel, ScoringPreference
from ai.services import registry
from ai.services.preferences import grading_source_set
from ai.services.registry import ModelFileRefused, model_deactivate, model_load
from ai.services.scoring import lead_ai_scores
from ai.services.training import models_train
from customers.models import Customer
from leads.models import LeadScore, grade_for
from leads.services import leads_rescore
from leads.services.activities import lead_activity_record

pytestmark = pytest.mark.django_db


@pytest.fixture
def trained(lead_history, django_capture_on_commit_callbacks):
    lead_history(3000)
    with django_capture_on_commit_callbacks(execute=True):
        models_train()  # activation rescoring every lead after commit
    model = LeadScoringModel.objects.get(is_active=True)
    return model


def test_every_lead_gets_the_model_score_and_its_explanation(trained):
    leads = Customer.objects.leads()
    scores = LeadScore.objects.filter(customer__in=leads)
    assert scores.count() == leads.count() > 0
    assert not scores.filter(ai_score__isnull=True).exists()
    score = scores.order_by("-ai_score").first()
    explanation = score.ai_explanation
    assert explanation["model"] == f"global model v{trained.version}"
    assert score.ai_score == round(explanation["probability"] * 100)
    assert explanation["up"] and all(points > 0 for _text, points in explanation["up"])
    assert all(points < 0 for _text, points in explanation["down"])
    assert isinstance(explanation["up"][0][0], str) and explanation["up"][0][0]
    # The rule score still grades the leads until the managers choose the model.
    assert score.grade == grade_for(score.total_score)


def test_the_model_grades_leads_when_the_managers_choose_it(
    trained, manager, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        grading_source_set(actor=manager, source=ScoringPreference.Source.MODEL)
    for score in LeadScore.objects.exclude(ai_score=None)[:200]:
        assert score.grade == grade_for(score.ai_score)


def test_the_score_updates_after_an_activity(trained, django_capture_on_commit_callbacks):
    lead = Customer.objects.leads().order_by("pk").first()
    before = LeadScore.objects.get(customer=lead)
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(4):
            lead_activity_record(customer=lead, activity_type="website_visit")
        lead_activity_record(customer=lead, activity_type="meeting_scheduled")
    after = LeadScore.objects.get(customer=lead)
    assert after.last_calculated > before.last_calculated
    assert after.ai_explanation != before.ai_explanation
    texts = [text for text, _points in after.ai_explanation["up"] + after.ai_explanation["down"]]
    assert after.ai_score is not None and texts


def test_a_tampered_model_file_is_refused_and_the_rule_score_stands(trained):
    lead = Customer.objects.leads().order_by("pk").first()
    path = trained.file.path
    with open(path, "ab") as handle:
        handle.write(b"\x00")  # one byte more: not the file this app wrote
    record = LeadScoringModel.objects.get(pk=trained.pk)
    registry._cache.clear()  # as in a fresh worker process
    with pytest.raises(ModelFileRefused):
        model_load(record)
    assert lead_ai_scores(customer_ids=[lead.pk], now=timezone.now()) == {}
    leads_rescore(customer_ids=[lead.pk])
    score = LeadScore.objects.get(customer=lead)
    assert score.ai_score is None and score.ai_explanation == {}


def test_without_an_active_model_the_leads_lose_their_model_score(
    trained, manager, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        model_deactivate(actor=manager, model_id=trained.pk)
    assert not LeadScore.objects.exclude(ai_score=None).exists()


def test_the_global_and_a_team_model_are_each_unpickled_once_per_process(
    trained, teams, monkeypatch
):
    """Scoring a few leads (after each activity) must not re-read and unpickle every active
    model file: with a team's model beside the global one, loading one used to evict the other."""
    registry._cache.clear()
    global_model = registry.model_load(trained)
    team_model = registry.model_store(
        calibrated=global_model.calibrated, features=global_model.features, team=teams["mine"],
        metrics={"passed": True},
    )  # fmt: skip
    LeadScoringModel.objects.filter(pk=team_model.pk).update(is_active=True)
    unpickled = []
    real_loads = registry.pickle.loads
    monkeypatch.setattr(
        registry.pickle, "loads", lambda data: unpickled.append(1) or real_loads(data)
    )
    registry._cache.clear()
    lead_ids = list(Customer.objects.leads().values_list("pk", flat=True)[:5])
    for _ in range(3):
        assert lead_ai_scores(customer_ids=lead_ids, now=timezone.now())
    assert len(unpickled) == 2
