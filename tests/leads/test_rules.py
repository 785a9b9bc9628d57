import pytest
from django.urls import reverse

from crm.errors import ValidationFailed
from leads.models import LeadScore, RescoreRun, ScoringRule
from leads.services.rescore import leads_rescore
from leads.services.rules import (
    Band,
    scoring_rules_reset_defaults,
    scoring_rules_update,
    validate_bands,
)
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def _post_data(client) -> dict:
    """The rules form as it is shown, ready to be changed and posted back."""
    form = client.get(reverse("leads:rules")).context["form"]
    data = {}
    for name, field in form.fields.items():
        value = form.initial.get(name, field.initial)
        data[name] = "" if value is None else value
    return data


@pytest.mark.parametrize(
    "bands,message",
    [
        ([Band(1, 10, 5), Band(10, 50, 10)], "overlap"),
        ([Band(1, None, 5), Band(100, 200, 10)], "overlap"),
        ([Band(-5, 10, 5)], "negative"),
        ([Band(50, 10, 5)], "ends before it starts"),
        ([Band(1, 10, 99)], "between 0 and 20"),
    ],
)
def test_bad_bands_are_refused(bands, message):
    with pytest.raises(ValidationFailed, match=message):
        validate_bands(bands)


def test_rules_page_is_refused_to_reps(rep_client):
    assert rep_client.get(reverse("leads:rules")).status_code == 403
    assert rep_client.post(reverse("leads:rules"), {"budget__10k_50k": 1}).status_code == 403
    assert not RescoreRun.objects.exists()


def test_rules_page_for_managers(manager_client):
    response = manager_client.get(reverse("leads:rules"))
    assert response.status_code == 200
    assert b"Company size (employees)" in response.content


def test_saving_rules_rescores_every_lead_in_the_background(
    manager_client, rep, django_capture_on_commit_callbacks
):
    lead = CustomerFactory(owner=rep, lifecycle_stage="lead", budget_range="10k_50k")
    leads_rescore()
    assert LeadScore.objects.get(customer=lead).budget_score == 10
    data = _post_data(manager_client)
    data["budget__10k_50k"] = 18
    with django_capture_on_commit_callbacks(execute=True):
        response = manager_client.post(reverse("leads:rules"), data)
    assert response.status_code == 302
    assert ScoringRule.objects.get(factor="budget", key="10k_50k").points == 18
    run = RescoreRun.objects.get()
    assert (run.status, run.done, run.total) == ("done", 1, 1)
    assert LeadScore.objects.get(customer=lead).budget_score == 18
    page = manager_client.get(reverse("leads:rules")).content.decode()
    assert "Rescoring after the last rule change: Done" in page


def test_overlapping_bands_in_the_form_show_a_clear_error_and_save_nothing(manager_client):
    data = _post_data(manager_client)
    data.update({"band_0_min": 1, "band_0_max": 100, "band_1_min": 50, "band_1_max": 200})
    response = manager_client.post(reverse("leads:rules"), data)
    assert response.status_code == 422
    assert "Company size bands overlap" in response.content.decode()
    assert ScoringRule.objects.get(factor="company_size", min_value=1).max_value == 10
    assert not RescoreRun.objects.exists()


def test_negative_or_too_many_points_are_refused(manager_client):
    data = _post_data(manager_client)
    data.update({"engagement__download": -1, "source_quality__referral": 11})
    response = manager_client.post(reverse("leads:rules"), data)
    errors = response.context["form"].errors
    assert "engagement__download" in errors
    assert "source_quality__referral" in errors
    assert ScoringRule.objects.get(factor="engagement", key="download").points == 5


def test_service_refuses_points_above_the_cap(manager):
    with pytest.raises(ValidationFailed, match="between 0 and 10"):
        scoring_rules_update(
            actor=manager, keyed_points={("source_quality", "web"): 50}, bands=[Band(1, None, 5)]
        )


def test_progress_partial_polls_while_running(manager_client, manager):
    run = RescoreRun.objects.create(started_by=manager, status="running", total=10, done=4)
    body = manager_client.get(reverse("leads:rescore_progress", args=[run.pk])).content.decode()
    assert 'hx-trigger="every 1s"' in body
    assert "4 of 10 leads" in body


def test_progress_is_refused_to_reps(rep_client, manager):
    run = RescoreRun.objects.create(started_by=manager)
    assert rep_client.get(reverse("leads:rescore_progress", args=[run.pk])).status_code == 403


def test_reset_to_default_rules():
    ScoringRule.objects.filter(factor="budget").update(points=1)
    rules = scoring_rules_reset_defaults()
    assert ScoringRule.objects.count() == len(rules) == 4 + 4 + 4 + 3 + 7 + 7
    assert ScoringRule.objects.get(factor="budget", key="over_250k").points == 20
