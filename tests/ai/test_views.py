"""Every AI URL: who may use it, who is refused."""

import pytest
from django.urls import reverse

from ai import urls as ai_urls
from ai.models import (
    LeadScoringModel,
    ModelStatus,
    RecommendationShare,
    ScoringPreference,
    TrainingRun,
)
from crm.models import AuditEvent
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


@pytest.mark.parametrize("method", ["get", "post"])
@pytest.mark.parametrize("name", [pattern.name for pattern in ai_urls.urlpatterns])
def test_anonymous_is_sent_to_the_login_page(client, teams, name, method):
    pattern = next(p for p in ai_urls.urlpatterns if p.name == name)
    run = TrainingRun.objects.create()
    customer = CustomerFactory()
    ids = {"pk": run.pk if name == "training_progress" else customer.pk}
    url = reverse(f"ai:{name}", kwargs={key: ids[key] for key in pattern.pattern.converters})
    response = getattr(client, method)(url, {"document": 1, "grading_source": "model"})
    assert response.status_code == 302
    assert response["Location"].startswith(f"{reverse('login')}?next=")
    assert TrainingRun.objects.count() == 1 and not RecommendationShare.objects.exists()
    assert not ScoringPreference.objects.filter(grading_source="model").exists()


def _passing_model(version: int, **fields) -> LeadScoringModel:
    return LeadScoringModel.objects.create(
        version=version, metrics={"passed": True}, reason="Activated: beat the rules",
        sha256="0" * 64, **fields,
    )  # fmt: skip


def test_a_manager_rolls_back_deactivates_and_chooses_the_grading(
    manager_client, manager, django_capture_on_commit_callbacks
):
    older = _passing_model(1, status=ModelStatus.RETIRED)
    newer = _passing_model(2, status=ModelStatus.ACTIVE, is_active=True)

    with django_capture_on_commit_callbacks() as rescorings:
        response = manager_client.post(f"/ai/models/{older.pk}/activate/", follow=True)
    assert b"Model v1 is now in use." in response.content
    older.refresh_from_db()
    newer.refresh_from_db()
    assert (older.is_active, older.status, older.activated_by) == (True, "active", manager)
    assert (newer.is_active, newer.status) == (False, "retired")
    assert len(rescorings) == 1  # every lead rescored with v1 after commit
    assert AuditEvent.objects.filter(actor=manager, changes={"is_active": True}).exists()

    with django_capture_on_commit_callbacks() as rescorings:
        response = manager_client.post(f"/ai/models/{older.pk}/deactivate/", follow=True)
    assert b"Model v1 is no longer used." in response.content
    assert not LeadScoringModel.objects.filter(is_active=True).exists()
    assert len(rescorings) == 1

    with django_capture_on_commit_callbacks() as regradings:
        response = manager_client.post("/ai/grading/", {"grading_source": "model"})
    assert response.status_code == 302 and response["Location"] == reverse("ai:models")
    preference = ScoringPreference.objects.get()
    assert (preference.grading_source, preference.updated_by) == ("model", manager)
    assert len(regradings) == 1
    refused = manager_client.post("/ai/grading/", {"grading_source": "dice"}, follow=True)
    assert b"Choose the rule score or the model score." in refused.content
    assert ScoringPreference.objects.get().grading_source == "model"


def test_a_customer_shared_to_read_gets_no_share(client, rep, other_rep, teams, manager):
    """Sharing sends content to the customer on its owner's behalf, a change like any other:
    a rep who may only read the customer sees the recommendations without a Share button,
    and a posted share is refused with the reason (403) and leaves no trace."""
    document = MarketingDocumentFactory(uploaded_by=manager)
    customer = CustomerFactory(owner=other_rep, shared_with=[rep])
    client.force_login(rep)
    panel = client.get(f"/ai/recommendations/customer/{customer.pk}/")
    assert panel.status_code == 200
    assert b"data-recommended-document" in panel.content and b"data-share-refused" in panel.content
    assert b"Share</button>" not in panel.content
    response = client.post(f"/ai/recommendations/customer/{customer.pk}/share/",
                           {"document": document.pk})  # fmt: skip
    assert response.status_code == 403 and b"You may only read this customer" in response.content
    assert not RecommendationShare.objects.exists()


def test_the_reps_own_deal_on_a_shared_customer_may_share(client, rep, other_rep, teams, manager):
    document = MarketingDocumentFactory(uploaded_by=manager)
    customer = CustomerFactory(owner=other_rep, shared_with=[rep])
    sale = SaleFactory(customer=customer, assigned_to=rep)
    client.force_login(rep)
    panel = client.get(f"/ai/recommendations/deal/{sale.pk}/")
    assert b"Share</button>" in panel.content and b"data-share-refused" not in panel.content
    response = client.post(f"/ai/recommendations/customer/{customer.pk}/share/",
                           {"document": document.pk, "sale": sale.pk})  # fmt: skip
    assert response.status_code == 200 and b"Tracked share link" in response.content
    assert RecommendationShare.objects.get().sale == sale


def test_the_customers_owner_may_share_from_another_reps_deal(
    client, rep, other_rep, teams, manager
):
    """The deal is the other rep's, the customer the rep's own: sharing with one's own
    customer needs no right to change the deal it is sent from."""
    document = MarketingDocumentFactory(uploaded_by=manager)
    customer = CustomerFactory(owner=rep)
    sale = SaleFactory(customer=customer, assigned_to=other_rep)
    client.force_login(rep)
    assert b"Share</button>" in client.get(f"/ai/recommendations/deal/{sale.pk}/").content
    response = client.post(f"/ai/recommendations/customer/{customer.pk}/share/",
                           {"document": document.pk, "sale": sale.pk})  # fmt: skip
    assert response.status_code == 200
    assert RecommendationShare.objects.get().sale == sale
