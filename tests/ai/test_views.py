"""Every AI URL: who may use it, who is refused."""

import pytest

from ai.models import LeadScoringModel, TrainingRun
from tests.factories import CustomerFactory, MarketingDocumentFactory, SaleFactory

pytestmark = pytest.mark.django_db


def test_the_model_page_is_for_managers_and_admins(rep_client, client, manager, admin_user, teams):
    assert rep_client.get("/ai/").status_code == 403
    client.force_login(manager)
    page = client.get("/ai/")
    assert page.status_code == 200
    assert b"No model is active: the rule score grades every lead." in page.content
    client.force_login(admin_user)
    assert client.get("/ai/").status_code == 200


def test_a_rep_cannot_train_activate_or_choose_the_grading(rep_client, rep, teams):
    assert rep_client.post("/ai/train/").status_code == 403
    assert not TrainingRun.objects.exists()
    assert rep_client.post("/ai/models/1/activate/").status_code == 403
    assert rep_client.post("/ai/models/1/deactivate/").status_code == 403
    assert rep_client.post("/ai/grading/", {"grading_source": "model"}).status_code == 403
    run = TrainingRun.objects.create()
    assert rep_client.get(f"/ai/runs/{run.pk}/").status_code == 403


def test_train_now_shows_the_progress_and_the_threshold(
    manager_client, lead_history, django_capture_on_commit_callbacks
):
    lead_history(100)
    with django_capture_on_commit_callbacks(execute=True):
        response = manager_client.post("/ai/train/", HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    run = TrainingRun.objects.get()
    assert run.status == "done" and run.progress == 100  # eager in tests
    progress = manager_client.get(f"/ai/runs/{run.pk}/")
    assert b"No model" in progress.content and b"more labelled leads" in progress.content
    page = manager_client.get("/ai/")
    assert b"Not enough history to train yet." in page.content
    assert not LeadScoringModel.objects.exists()
    assert manager_client.get("/ai/runs/999999/").status_code == 404


def test_a_candidate_that_did_not_beat_the_rules_cannot_be_activated(
    manager_client, lead_history, django_capture_on_commit_callbacks
):
    lead_history(2500, signal=False)
    with django_capture_on_commit_callbacks(execute=True):
        manager_client.post("/ai/train/")
    model = LeadScoringModel.objects.get()
    response = manager_client.post(f"/ai/models/{model.pk}/activate/", follow=True)
    assert b"did not beat the rule score" in response.content
    model.refresh_from_db()
    assert not model.is_active
    page = manager_client.get(f"/ai/?model={model.pk}")
    assert b"Not activated" in page.content and b"roc-chart" in page.content
    assert manager_client.post("/ai/models/999999/activate/").status_code == 302


def test_recommendation_panels_show_for_the_customer_and_deal_owner(
    rep_client, rep, teams, manager
):
    MarketingDocumentFactory(uploaded_by=manager)
    customer = CustomerFactory(owner=rep)
    sale = SaleFactory(customer=customer, assigned_to=rep)
    assert rep_client.get(f"/ai/recommendations/customer/{customer.pk}/").status_code == 200
    deal = rep_client.get(f"/ai/recommendations/deal/{sale.pk}/")
    assert deal.status_code == 200 and b"data-recommended-document" in deal.content


def test_other_reps_are_refused_recommendations_and_shares(other_rep_client, rep, teams, manager):
    document = MarketingDocumentFactory(uploaded_by=manager)
    customer = CustomerFactory(owner=rep)
    sale = SaleFactory(customer=customer, assigned_to=rep)
    client = other_rep_client
    assert client.get(f"/ai/recommendations/customer/{customer.pk}/").status_code == 404
    assert client.get(f"/ai/recommendations/deal/{sale.pk}/").status_code == 404
    share = client.post(f"/ai/recommendations/customer/{customer.pk}/share/",
                        {"document": document.pk})  # fmt: skip
    assert share.status_code == 404


def test_a_document_out_of_sight_cannot_be_shared(rep_client, rep, other_rep, teams):
    private = MarketingDocumentFactory(uploaded_by=other_rep, is_public=False)
    customer = CustomerFactory(owner=rep)
    response = rep_client.post(f"/ai/recommendations/customer/{customer.pk}/share/",
                               {"document": private.pk})  # fmt: skip
    assert response.status_code == 404
    bad = rep_client.post(f"/ai/recommendations/customer/{customer.pk}/share/", {"document": "x"})
    assert bad.status_code == 400
