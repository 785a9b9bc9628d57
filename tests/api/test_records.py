"""Tasks, notes, leads and lead activities, teams and users, quick stats, campaigns."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from customers.models import CustomerNote
from leads.models import LeadActivity, LeadScore
from sales.models import Task
from tests.factories import (
    CustomerFactory,
    EmailCampaignFactory,
    EmailTemplateFactory,
    ManagerFactory,
    RepFactory,
    SaleFactory,
    TaskFactory,
    TeamFactory,
)

pytestmark = pytest.mark.django_db


# Tasks ---------------------------------------------------------------------


def test_tasks_mine_and_due(rep_api, rep, other_rep):
    now = timezone.now()
    overdue = TaskFactory(assigned_to=rep, due_at=now - timedelta(days=2))
    upcoming = TaskFactory(assigned_to=rep, due_at=now + timedelta(days=3))
    TaskFactory(assigned_to=other_rep)
    ids = [r["id"] for r in rep_api.get("/api/v1/tasks/", {"mine": "true"}).json()["results"]]
    assert ids == [overdue.pk, upcoming.pk]
    due = rep_api.get("/api/v1/tasks/", {"due": "overdue"}).json()["results"]
    assert [r["id"] for r in due] == [overdue.pk]
    assert rep_api.get("/api/v1/tasks/", {"due": "someday"}).status_code == 400


def test_complete_and_reopen(rep_api, rep, other_rep_api):
    task = TaskFactory(assigned_to=rep)
    assert other_rep_api.post(f"/api/v1/tasks/{task.pk}/complete/").status_code == 404
    response = rep_api.post(f"/api/v1/tasks/{task.pk}/complete/")
    assert response.status_code == 200 and response.json()["is_done"] is True
    assert rep_api.post(f"/api/v1/tasks/{task.pk}/complete/").status_code == 200  # harmless
    assert rep_api.post(f"/api/v1/tasks/{task.pk}/reopen/").json()["is_done"] is False


def test_create_a_task(rep_api, rep, other_rep):
    sale = SaleFactory(customer=CustomerFactory(owner=rep), assigned_to=rep)
    due = (timezone.now() + timedelta(days=1)).isoformat()
    created = rep_api.post("/api/v1/tasks/", {"title": "Call", "sale": sale.pk, "due_at": due},
                           format="json")  # fmt: skip
    assert created.status_code == 201
    task = Task.objects.get(pk=created.json()["id"])
    assert task.customer == sale.customer and task.created_by == rep
    refused = rep_api.post("/api/v1/tasks/", {"title": "x", "due_at": due,
                           "assigned_to": other_rep.pk}, format="json")  # fmt: skip
    assert refused.status_code == 400 and "assigned_to" in refused.json()["errors"]


def test_a_task_on_a_shared_deal_is_403(rep_api, rep, other_rep):
    shared = SaleFactory(customer=CustomerFactory(owner=other_rep, shared_with=[rep]),
                         assigned_to=other_rep)  # fmt: skip
    assert rep_api.get(f"/api/v1/deals/{shared.pk}/").status_code == 200  # readable
    due = (timezone.now() + timedelta(days=1)).isoformat()
    response = rep_api.post("/api/v1/tasks/", {"title": "Call", "sale": shared.pk, "due_at": due},
                            format="json")  # fmt: skip
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert not Task.objects.exists()


def test_task_list_queries_are_fixed(rep_api, rep, django_assert_max_num_queries):
    TaskFactory.create_batch(3, assigned_to=rep)
    with django_assert_max_num_queries(7):
        rep_api.get("/api/v1/tasks/")
    TaskFactory.create_batch(20, assigned_to=rep)
    with django_assert_max_num_queries(7):
        assert len(rep_api.get("/api/v1/tasks/").json()["results"]) == 23


# Notes ---------------------------------------------------------------------


def test_notes(rep_api, rep, other_rep, other_rep_api, django_assert_max_num_queries):
    customer = CustomerFactory(owner=rep)
    created = rep_api.post("/api/v1/notes/", {"customer": customer.pk, "text": "Likes golf"},
                           format="json")  # fmt: skip
    assert created.status_code == 201 and CustomerNote.objects.get().author == rep
    blank = rep_api.post("/api/v1/notes/", {"customer": customer.pk, "text": " "}, format="json")
    assert blank.status_code == 400 and "text" in blank.json()["errors"]
    with django_assert_max_num_queries(7):
        rows = rep_api.get("/api/v1/notes/", {"customer": customer.pk}).json()["results"]
    assert [r["text"] for r in rows] == ["Likes golf"]
    assert other_rep_api.get("/api/v1/notes/").json()["results"] == []
    refused = other_rep_api.post("/api/v1/notes/", {"customer": customer.pk, "text": "x"},
                                 format="json")  # fmt: skip
    assert refused.status_code == 404
    shared = CustomerFactory(owner=other_rep, shared_with=[rep])
    read_only = rep_api.post("/api/v1/notes/", {"customer": shared.pk, "text": "x"}, format="json")
    assert read_only.status_code == 403


# Leads ---------------------------------------------------------------------


def test_leads_with_score_grade_and_top_factors(rep_api, rep, other_rep):
    hot = CustomerFactory(owner=rep, lifecycle_stage="lead", name="Hot")
    LeadScore.objects.update_or_create(customer=hot, defaults={
        "company_size_score": 20, "budget_score": 20, "timeline_score": 15,
        "authority_score": 15, "engagement_score": 5, "source_quality_score": 10,
        "total_score": 85, "grade": "hot"})  # fmt: skip
    cold = CustomerFactory(owner=rep, lifecycle_stage="lead", name="Cold")
    LeadScore.objects.update_or_create(customer=cold, defaults={"total_score": 10, "grade": "cold",
                                       "company_size_score": 10})  # fmt: skip
    CustomerFactory(owner=rep, lifecycle_stage="customer")
    CustomerFactory(owner=other_rep, lifecycle_stage="lead")
    rows = rep_api.get("/api/v1/leads/").json()["results"]
    assert [r["name"] for r in rows] == ["Hot", "Cold"]
    assert rows[0]["grade"] == "hot" and rows[0]["score"] == 85
    assert [f["points"] for f in rows[0]["top_factors"]] == [20, 20, 15]
    hot_only = rep_api.get("/api/v1/leads/", {"grade": "hot"}).json()["results"]
    assert [r["name"] for r in hot_only] == ["Hot"]


def test_lead_list_queries_are_fixed(rep_api, rep, django_assert_max_num_queries):
    CustomerFactory.create_batch(3, owner=rep, lifecycle_stage="lead")
    with django_assert_max_num_queries(7):
        rep_api.get("/api/v1/leads/")
    CustomerFactory.create_batch(20, owner=rep, lifecycle_stage="lead")
    with django_assert_max_num_queries(7):
        assert len(rep_api.get("/api/v1/leads/").json()["results"]) == 23


def test_another_reps_lead_is_404(other_rep_api, rep):
    lead = CustomerFactory(owner=rep, lifecycle_stage="lead")
    assert other_rep_api.get(f"/api/v1/leads/{lead.pk}/").status_code == 404


def test_log_a_lead_activity(rep_api, rep, other_rep_api):
    lead = CustomerFactory(owner=rep, lifecycle_stage="lead")
    url = "/api/v1/lead-activities/"
    created = rep_api.post(url, {"customer": lead.pk, "activity_type": "call_answered",
                           "details": {"minutes": 5}}, format="json")  # fmt: skip
    assert created.status_code == 201
    activity = LeadActivity.objects.get()
    assert activity.recorded_by == rep and activity.details == {"minutes": 5}
    assert activity.score_impact > 0
    bad = rep_api.post(url, {"customer": lead.pk, "activity_type": "dance"}, format="json")
    assert bad.status_code == 400
    refused = other_rep_api.post(url, {"customer": lead.pk, "activity_type": "download"},
                                 format="json")  # fmt: skip
    assert refused.status_code == 404
    assert other_rep_api.get(url).json()["results"] == []


def test_lead_activity_list_queries_are_fixed(rep_api, rep, django_assert_max_num_queries):
    def log(count):
        for lead in CustomerFactory.create_batch(count, owner=rep, lifecycle_stage="lead"):
            LeadActivity.objects.create(customer=lead, activity_type="download",
                                        recorded_by=rep)  # fmt: skip

    log(3)
    with django_assert_max_num_queries(6):
        first = rep_api.get("/api/v1/lead-activities/").json()["results"]
    log(17)
    with django_assert_max_num_queries(6):
        second = rep_api.get("/api/v1/lead-activities/").json()["results"]
    assert len(first) == 3 and len(second) == 20
    assert {row["recorded_by"]["id"] for row in second} == {rep.pk}


def test_a_lead_activity_on_a_shared_lead_is_403(rep_api, rep, other_rep):
    shared = CustomerFactory(owner=other_rep, lifecycle_stage="lead", shared_with=[rep])
    assert rep_api.get(f"/api/v1/leads/{shared.pk}/").status_code == 200  # readable
    response = rep_api.post("/api/v1/lead-activities/",
                            {"customer": shared.pk, "activity_type": "call_answered"},
                            format="json")  # fmt: skip
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert not LeadActivity.objects.exists()


# Teams and users ---------------------------------------------------------------------


def test_teams_and_users_in_reach(rep_api, other_rep_api, rep, teammate, manager, teams,
                                  django_assert_max_num_queries):  # fmt: skip
    with django_assert_max_num_queries(7):
        teams_seen = rep_api.get("/api/v1/teams/").json()["results"]
    assert [t["name"] for t in teams_seen] == ["North"]
    with django_assert_max_num_queries(8):
        users = rep_api.get("/api/v1/users/").json()["results"]
    assert {u["username"] for u in users} == {"rep", "teammate", "manager"}
    assert {u["role"] for u in users if u["username"] == "manager"} == {"manager"}
    assert other_rep_api.get(f"/api/v1/users/{teammate.pk}/").status_code == 404
    assert other_rep_api.get(f"/api/v1/teams/{teams['mine'].pk}/").status_code == 404


def test_team_list_queries_are_fixed(api_as, admin_user, django_assert_max_num_queries):
    admin_api = api_as(admin_user)  # an admin sees every team: the list grows with them

    def add_teams(count):
        for _ in range(count):
            TeamFactory(managers=[ManagerFactory()], members=[RepFactory(), RepFactory()])

    add_teams(1)  # with the fixture's two teams: 3
    with django_assert_max_num_queries(6):
        first = admin_api.get("/api/v1/teams/").json()["results"]
    add_teams(17)
    with django_assert_max_num_queries(6):
        second = admin_api.get("/api/v1/teams/").json()["results"]
    assert len(first) == 3 and len(second) == 20
    assert all(len(team["members"]) == 2 and len(team["managers"]) == 1 for team in second[2:])


# Quick stats ---------------------------------------------------------------------


def test_quick_stats(rep_api, rep, other_rep, django_assert_max_num_queries):
    mine = CustomerFactory(owner=rep)
    SaleFactory(customer=mine, assigned_to=rep, amount=Decimal("100"), currency="USD")
    SaleFactory(customer=mine, assigned_to=rep, amount=Decimal("50"), currency="EUR")
    SaleFactory(customer=mine, assigned_to=rep, amount=Decimal("70"), currency="USD",
                status="WON")  # fmt: skip
    SaleFactory(customer=CustomerFactory(owner=other_rep), amount=Decimal("999"))
    TaskFactory(assigned_to=rep, due_at=timezone.now() + timedelta(minutes=1))
    lead = CustomerFactory(owner=rep, lifecycle_stage="lead")
    LeadScore.objects.update_or_create(customer=lead, defaults={"total_score": 90,
                                       "grade": "hot"})  # fmt: skip
    with django_assert_max_num_queries(10):
        stats = rep_api.get("/api/v1/quick-stats/").json()
    assert stats["pipeline"] == [
        {"currency": "EUR", "count": 1, "amount": "50.00"},
        {"currency": "USD", "count": 1, "amount": "100.00"},
    ]
    assert stats["won_this_month"] == [{"currency": "USD", "count": 1, "amount": "70.00"}]
    assert stats["deals_this_month"] == 3
    assert stats["hot_leads"] == 1
    assert stats["tasks_due_today"] + stats["tasks_overdue"] >= 0


def test_quick_stats_needs_a_token(anonymous_api):
    assert anonymous_api.get("/api/v1/quick-stats/").status_code == 401


# Campaigns ---------------------------------------------------------------------


def test_managers_read_campaigns_with_funnels(manager_api, rep_api, manager, other_manager,
                                              django_assert_max_num_queries):  # fmt: skip
    template = EmailTemplateFactory(created_by=manager)
    campaign = EmailCampaignFactory(created_by=manager, template=template, sent_count=10,
                                    opened_count=4)  # fmt: skip
    EmailCampaignFactory(created_by=other_manager, template=EmailTemplateFactory(
        created_by=other_manager))  # fmt: skip
    with django_assert_max_num_queries(8):
        rows = manager_api.get("/api/v1/campaigns/").json()["results"]
    assert [r["id"] for r in rows] == [campaign.pk]
    opened = next(step for step in rows[0]["funnel"] if step["label"] == "Opened")
    assert opened == {"label": "Opened", "count": 4, "rate": 40.0}
    assert rep_api.get("/api/v1/campaigns/").status_code == 403


def test_another_managers_campaign_is_404(manager_api, rep_api, manager, other_manager):
    mine = EmailCampaignFactory(created_by=manager, template=EmailTemplateFactory(
        created_by=manager))  # fmt: skip
    theirs = EmailCampaignFactory(created_by=other_manager, template=EmailTemplateFactory(
        created_by=other_manager))  # fmt: skip
    own = manager_api.get(f"/api/v1/campaigns/{mine.pk}/")
    assert own.status_code == 200 and own.json()["id"] == mine.pk
    response = manager_api.get(f"/api/v1/campaigns/{theirs.pk}/")
    assert response.status_code == 404 and response.json()["code"] == "not_found"
    assert rep_api.get(f"/api/v1/campaigns/{mine.pk}/").status_code == 403
