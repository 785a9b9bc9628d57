import pytest
from django.urls import reverse

from leads.models import LeadActivity, LeadScore, RescoreRun
from leads.services.rescore import leads_rescore
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def my_lead(rep, teams):
    lead = CustomerFactory(owner=rep, lifecycle_stage="lead", name="Hot Prospect",
                           company_size=5000, budget_range="over_250k",
                           purchase_timeline="immediate", decision_authority="decision_maker",
                           source="referral")  # fmt: skip
    for _ in range(3):
        LeadActivity.objects.create(customer=lead, activity_type="download", score_impact=10)
    leads_rescore(customer_ids=[lead.pk])
    return lead


def test_lead_list_sorted_by_score_with_grades(rep_client, rep, my_lead):
    cold = CustomerFactory(owner=rep, lifecycle_stage="lead", name="Cold One")
    leads_rescore(customer_ids=[cold.pk])
    response = rep_client.get(reverse("leads:list"))
    assert [lead.name for lead in response.context["page"].object_list] == [
        "Hot Prospect",
        "Cold One",
    ]
    assert b"grade-hot" in response.content


def test_lead_list_filters(rep_client, rep, my_lead):
    CustomerFactory(owner=rep, lifecycle_stage="lead", name="Unscored")
    url = reverse("leads:list")
    assert [c.name for c in rep_client.get(url, {"grade": "hot"}).context["page"]] == [
        "Hot Prospect"
    ]
    assert [c.name for c in rep_client.get(url, {"score_max": "10"}).context["page"]] == []
    assert rep_client.get(url, {"score_min": "abc", "page": "x"}).status_code == 200


def _hot_lead(owner, name):
    lead = CustomerFactory(owner=owner, lifecycle_stage="lead", name=name, company_size=5000,
                           budget_range="over_250k", purchase_timeline="immediate",
                           decision_authority="decision_maker", source="referral")  # fmt: skip
    leads_rescore(customer_ids=[lead.pk])
    return lead


def test_hot_leads_are_the_reps_own(rep_client, teammate, my_lead):
    theirs = CustomerFactory(owner=teammate, lifecycle_stage="lead", company_size=5000,
                             budget_range="over_250k", purchase_timeline="immediate",
                             decision_authority="decision_maker", source="referral",
                             shared_with=[])  # fmt: skip
    leads_rescore(customer_ids=[theirs.pk])
    response = rep_client.get(reverse("leads:hot"))
    assert [c.name for c in response.context["page"]] == ["Hot Prospect"]
    assert "<h1>My hot leads</h1>" in response.content.decode()


def test_managers_hot_leads_are_their_teams(manager_client, teammate, other_rep, my_lead):
    _hot_lead(teammate, "Teammate Hot")
    _hot_lead(other_rep, "Other Team Hot")
    CustomerFactory(owner=teammate, lifecycle_stage="lead", name="Teammate Cold")
    response = manager_client.get(reverse("leads:hot"))
    assert sorted(c.name for c in response.context["page"]) == ["Hot Prospect", "Teammate Hot"]
    page = response.content.decode()
    assert "<h1>Hot leads</h1>" in page
    assert "My hot leads" not in page
    assert "Other Team Hot" not in page


def test_admins_hot_leads_are_everyones(admin_client_, other_rep, my_lead):
    _hot_lead(other_rep, "Other Team Hot")
    response = admin_client_.get(reverse("leads:hot"))
    assert sorted(c.name for c in response.context["page"]) == ["Hot Prospect", "Other Team Hot"]


def test_other_rep_sees_no_lead_and_gets_404(other_rep_client, my_lead):
    assert b"Hot Prospect" not in other_rep_client.get(reverse("leads:list")).content
    assert other_rep_client.get(reverse("leads:detail", args=[my_lead.pk])).status_code == 404
    response = other_rep_client.post(
        reverse("leads:activity_add", args=[my_lead.pk]), {"activity_type": "call_answered"}
    )
    assert response.status_code == 404
    assert LeadActivity.objects.filter(customer=my_lead).count() == 3


def test_lead_detail_shows_breakdown_and_history(rep_client, my_lead):
    response = rep_client.get(reverse("leads:detail", args=[my_lead.pk]))
    assert response.status_code == 200
    breakdown = {row["factor"]: row["points"] for row in response.context["breakdown"]}
    assert breakdown["Company size"] == 20
    assert breakdown["Engagement"] == 20
    assert (
        response.context["history"][-1]["total"]
        == LeadScore.objects.get(customer=my_lead).total_score
    )


def test_lead_detail_shows_total_score_and_grade(rep_client, my_lead):
    score = LeadScore.objects.get(customer=my_lead)
    score.total_score, score.grade = 73, "warm"  # as if the rules had changed
    score.save(update_fields=["total_score", "grade"])
    page = rep_client.get(reverse("leads:detail", args=[my_lead.pk])).content.decode()
    assert '<span class="badge grade-warm">Warm</span>' in page
    assert "Score 73 / 100" in page
    assert "<strong>73 / 100</strong>" in page  # the breakdown's total row


def test_unscored_lead_detail_says_so(rep_client, rep):
    lead = CustomerFactory(owner=rep, lifecycle_stage="lead")
    page = rep_client.get(reverse("leads:detail", args=[lead.pk])).content.decode()
    assert "Not scored yet" in page
    assert "<strong>0 / 100</strong>" in page


def test_activity_points_are_pluralised(rep_client, my_lead):
    LeadActivity.objects.create(customer=my_lead, activity_type="email_open", score_impact=1)
    page = rep_client.get(reverse("leads:detail", args=[my_lead.pk])).content.decode()
    assert "+1 point</div>" in page
    assert "+1 points" not in page
    assert "+10 points" in page


def test_lead_detail_lists_workflow_actions(rep_client, my_lead):
    from leads.models import WorkflowRun

    WorkflowRun.objects.create(
        customer=my_lead, previous_grade="warm", grade="hot", status="done",
        actions=["Task: Call now", "Email: Hello"],
    )  # fmt: skip
    page = rep_client.get(reverse("leads:detail", args=[my_lead.pk])).content.decode()
    assert "warm → hot" in page
    assert "Task: Call now" in page


def test_log_activity_with_htmx(rep_client, my_lead, django_capture_on_commit_callbacks):
    url = reverse("leads:activity_add", args=[my_lead.pk])
    with django_capture_on_commit_callbacks(execute=True):
        response = rep_client.post(
            url, {"activity_type": "call_answered", "note": "Keen"}, headers={"HX-Request": "true"}
        )
    assert response.status_code == 200
    assert b"Call answered" in response.content
    assert LeadActivity.objects.filter(customer=my_lead, activity_type="call_answered").exists()
    bad = rep_client.post(url, {"activity_type": "nope"}, headers={"HX-Request": "true"})
    assert bad.status_code == 422


def test_log_activity_without_htmx_redirects_to_the_lead(
    rep_client, my_lead, django_capture_on_commit_callbacks
):
    url = reverse("leads:activity_add", args=[my_lead.pk])
    with django_capture_on_commit_callbacks(execute=True):
        response = rep_client.post(url, {"activity_type": "call_answered", "note": "Keen"})
    assert response.status_code == 302
    assert response.url == reverse("leads:detail", args=[my_lead.pk])
    assert LeadActivity.objects.filter(customer=my_lead, activity_type="call_answered").exists()
    page = rep_client.get(response.url).content.decode()
    assert "Activity logged." in page
    assert "Call answered: Keen" in page


def test_log_activity_without_htmx_shows_the_page_with_errors(rep_client, my_lead):
    url = reverse("leads:activity_add", args=[my_lead.pk])
    response = rep_client.post(url, {"activity_type": "nope", "note": "Kept"})
    assert response.status_code == 422
    page = response.content.decode()
    assert "<h1>Hot Prospect</h1>" in page  # the whole lead page, not the bare partial
    assert "Score breakdown" in page
    assert "Select a valid choice" in page
    assert 'value="Kept"' in page
    assert LeadActivity.objects.filter(customer=my_lead).count() == 3


def test_rescore_progress_says_starting_before_the_count_is_known(manager_client, manager):
    run = RescoreRun.objects.create(started_by=manager)
    body = manager_client.get(reverse("leads:rescore_progress", args=[run.pk])).content.decode()
    assert "Starting…" in body
    assert "0 of 0 leads" not in body
    run.status, run.finished_at = "done", run.created_at
    run.save(update_fields=["status", "finished_at"])
    body = manager_client.get(reverse("leads:rescore_progress", args=[run.pk])).content.decode()
    assert "0 of 0 leads, finished" in body


def test_lead_list_query_count(rep_client, rep, django_assert_max_num_queries):
    for index in range(30):
        CustomerFactory(owner=rep, lifecycle_stage="lead", company_size=index * 10)
    leads_rescore()
    with django_assert_max_num_queries(7):
        assert rep_client.get(reverse("leads:list"), {"grade": "cold"}).status_code == 200


def test_leads_best_first_pages_across_the_scored_and_the_unscored(rep, teams):
    from django.core.paginator import Paginator

    from leads import selectors

    for index, size in enumerate((10, 5000, 200)):
        lead = CustomerFactory(owner=rep, lifecycle_stage="lead", name=f"Scored {index}",
                               company_size=size)  # fmt: skip
        leads_rescore(customer_ids=[lead.pk])
    for name in ("Unscored B", "Unscored A", "Unscored C"):
        CustomerFactory(owner=rep, lifecycle_stage="lead", name=name)
    leads = selectors.lead_list(user=rep)
    expected = ["Scored 1", "Scored 2", "Scored 0", "Unscored A", "Unscored B", "Unscored C"]
    assert [lead.name for lead in leads[0:6]] == expected
    assert leads.count() == len(leads) == 6
    for size in (1, 2, 4):
        paginator = Paginator(leads, size)
        names = [lead.name for number in paginator.page_range
                 for lead in paginator.page(number).object_list]  # fmt: skip
        assert names == expected, size
    assert [lead.name for lead in leads[5:9]] == ["Unscored C"]
    assert leads[7:9] == []
