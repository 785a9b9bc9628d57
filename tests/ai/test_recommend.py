"""Content recommendations: similar customers' engagement, the text match, recent sends
left out, document visibility respected, the tracked share link."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from ai.models import RecommendationShare
from ai.services.recommend import document_recommendations, engagement_stats_refresh
from documents.tokens import share_token_read_full
from leads.models import LeadActivity
from tests.factories import CustomerFactory, MarketingDocumentFactory

pytestmark = pytest.mark.django_db


def _opened(customer, document, days_ago=60):
    LeadActivity.objects.create(
        customer=customer, activity_type="download", details={"document_id": document.pk},
        timestamp=timezone.now() - timedelta(days=days_ago),
    )  # fmt: skip


@pytest.fixture
def library(manager, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    return {
        "popular": MarketingDocumentFactory(title="Logistics case study", uploaded_by=manager),
        "fresh": MarketingDocumentFactory(
            title="Warehouse automation deck",
            document_type="presentation",
            extracted_text="warehouse automation forklifts pallets",
            uploaded_by=manager,
        ),  # fmt: skip
        "other": MarketingDocumentFactory(
            title="Retail brochure", uploaded_by=manager, extracted_text="shop tills"
        ),  # fmt: skip
    }


def test_similar_customers_engagement_ranks_first_with_its_reason(rep, teams, library):
    similar = [CustomerFactory(industry="logistics", company_size=60, owner=rep) for _ in range(6)]
    for customer in similar[:4]:
        _opened(customer, library["popular"])
    _opened(CustomerFactory(industry="retail", company_size=60), library["other"])
    engagement_stats_refresh()
    customer = CustomerFactory(industry="logistics", company_size=80, owner=rep,
                               notes="Wants warehouse automation")  # fmt: skip

    top = document_recommendations(user=rep, customer=customer)

    assert [r.document_id for r in top[:2]] == [library["popular"].pk, library["fresh"].pk]
    assert top[0].reason.startswith("Opened by 4 of 6 similar customers (Logistics")
    assert top[1].reason.startswith("Matches") and "warehouse" in top[1].reason


def test_recent_sends_and_opens_are_left_out(rep, teams, library, settings):
    customer = CustomerFactory(industry="logistics", owner=rep)
    RecommendationShare.objects.create(
        customer=customer, document=library["popular"], shared_by=rep
    )
    _opened(customer, library["fresh"], days_ago=3)
    ids = {r.document_id for r in document_recommendations(user=rep, customer=customer)}
    assert ids == {library["other"].pk}
    # Long enough ago, they come back.
    later = timezone.now() + timedelta(days=settings.AI_RECOMMEND_EXCLUDE_DAYS + 1)
    ids = {r.document_id for r in document_recommendations(user=rep, customer=customer, now=later)}
    assert ids == {d.pk for d in library.values()}


def test_recommendations_respect_document_visibility(rep, other_rep, admin_user, teams, library):
    private = MarketingDocumentFactory(title="Internal pricing deck", is_public=False,
                                       uploaded_by=other_rep)  # fmt: skip
    customer = CustomerFactory(owner=rep)

    def shown(user):
        return {r.document_id for r in document_recommendations(user=user, customer=customer,
                                                                limit=10)}  # fmt: skip

    for_rep, for_admin = shown(rep), shown(admin_user)
    assert private.pk not in for_rep
    assert private.pk in for_admin


def test_share_gives_a_tracked_link_whose_opens_count_for_the_customer(
    rep_client, rep, teams, library, django_capture_on_commit_callbacks
):
    customer = CustomerFactory(owner=rep)
    response = rep_client.post(f"/ai/recommendations/customer/{customer.pk}/share/",
                               {"document": library["popular"].pk})  # fmt: skip
    assert response.status_code == 200
    link = response.context["link"]
    token = link.rstrip("/").rsplit("/", 1)[-1]
    assert share_token_read_full(token) == (library["popular"].pk, customer.pk)
    assert RecommendationShare.objects.filter(customer=customer).count() == 1

    rep_client.logout()
    with django_capture_on_commit_callbacks(execute=True):
        opened = rep_client.get(f"/d/{token}/")
    assert opened.status_code == 200
    activity = LeadActivity.objects.get(customer=customer)
    assert activity.details["document_id"] == library["popular"].pk


@pytest.fixture
def case_study_email(db):
    """The managers' warm-lead email names the recommended document; drafts wait for the rep."""
    from campaigns.models import LeadEmailSettings
    from tests.factories import EmailTemplateFactory

    choice = LeadEmailSettings.current()
    choice.warm_template = EmailTemplateFactory(
        subject="How others like {{ company }} did it",
        text_body="Hi {{ first_name }}, read {{ recommended_document_title }}: "
        "{{ recommended_document_url }}",
        html_body="",
    )
    choice.send_automatically = False
    choice.save()
    return choice


def _warm_lead_draft(rep, django_capture_on_commit_callbacks):
    from campaigns.models import EmailDraft
    from leads.services.rescore import leads_rescore
    from tests.leads.helpers import WARM

    lead = CustomerFactory(owner=rep, lifecycle_stage="lead", industry="logistics", **WARM)
    with django_capture_on_commit_callbacks(execute=True):
        leads_rescore(customer_ids=[lead.pk])
    return lead, EmailDraft.objects.get(customer=lead)


def test_a_sent_case_study_email_counts_as_a_send(
    rep, teams, library, case_study_email, django_capture_on_commit_callbacks
):
    """The warm workflow's email offers the top recommendation; once it is sent, the
    recommender leaves that document out for the customer, as after a one-click share."""
    from campaigns.drafts import draft_send

    lead, draft = _warm_lead_draft(rep, django_capture_on_commit_callbacks)
    rep = draft.rep  # the workflow may give the lead to a teammate: the email is theirs
    [top] = document_recommendations(user=rep, customer=lead, limit=1)
    assert top.title in draft.text_body and draft.recommended_document_id == top.document_id
    assert not RecommendationShare.objects.exists()  # a draft is not a send

    with django_capture_on_commit_callbacks(execute=True):
        sent = draft_send(actor=rep, draft=draft)

    assert sent.status == "sent" and top.title in mail.outbox[0].body
    share = RecommendationShare.objects.get()
    assert (share.customer, share.document_id, share.shared_by) == (lead, top.document_id, rep)
    offered = {r.document_id for r in document_recommendations(user=rep, customer=lead)}
    assert top.document_id not in offered and offered


def test_a_discarded_or_refused_case_study_email_is_no_send(
    rep, teams, library, case_study_email, django_capture_on_commit_callbacks
):
    from campaigns.drafts import draft_discard, draft_send
    from customers.models import Customer

    lead, draft = _warm_lead_draft(rep, django_capture_on_commit_callbacks)
    draft_discard(actor=rep, draft=draft)
    second, refused = _warm_lead_draft(rep, django_capture_on_commit_callbacks)
    Customer.objects.filter(pk=second.pk).update(unsubscribed_at=timezone.now())
    assert draft_send(actor=rep, draft=refused).status == "refused"
    assert not RecommendationShare.objects.exists()
    [top] = document_recommendations(user=draft.rep, customer=lead, limit=1)
    assert top.document_id == draft.recommended_document_id  # still offered


def test_an_email_that_names_no_document_records_none(
    rep, teams, library, case_study_email, django_capture_on_commit_callbacks
):
    from campaigns.drafts import draft_send

    case_study_email.warm_template.text_body = "Hi {{ first_name }}, shall we talk?"
    case_study_email.warm_template.save()
    _lead, draft = _warm_lead_draft(rep, django_capture_on_commit_callbacks)
    assert draft.recommended_document_id is None
    draft_send(actor=rep, draft=draft)
    assert not RecommendationShare.objects.exists()


def test_offline_hit_rate_beats_most_popular_on_segment_behaviour(rep, teams, manager, tmp_path,
                                                                  settings):  # fmt: skip
    from ai.services.recommend import recommendations_evaluate

    settings.MEDIA_ROOT = str(tmp_path)
    niche = MarketingDocumentFactory(title="Fleet routing", uploaded_by=manager)
    popular = [MarketingDocumentFactory(uploaded_by=manager) for _ in range(3)]
    for document in popular:
        for _ in range(5):
            _opened(CustomerFactory(industry="retail", company_size=300), document, days_ago=90)
    for _ in range(2):
        _opened(CustomerFactory(industry="logistics", company_size=60), niche, days_ago=90)
    newcomer = CustomerFactory(industry="logistics", company_size=70)
    _opened(newcomer, niche, days_ago=5)

    result = recommendations_evaluate(split_at=timezone.now() - timedelta(days=30))

    assert result == {"customers": 1, "hit_rate_at_3": 1.0, "hit_rate_at_3_popular": 0.0}


def test_a_refresh_of_the_statistics_is_read_at_once_despite_the_cached_segment(
    rep, teams, library
):
    similar = [CustomerFactory(industry="logistics", company_size=60, owner=rep) for _ in range(6)]
    for customer in similar[:4]:
        _opened(customer, library["popular"])
    engagement_stats_refresh()
    customer = CustomerFactory(industry="logistics", company_size=80, owner=rep)
    assert document_recommendations(user=rep, customer=customer)[0].reason.startswith(
        "Opened by 4 of 6"
    )  # the segment is cached now
    _opened(similar[4], library["popular"])
    engagement_stats_refresh()
    assert document_recommendations(user=rep, customer=customer)[0].reason.startswith(
        "Opened by 5 of 7"
    )
