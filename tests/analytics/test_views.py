"""The dashboard pages: who may open them, what they show, their exports and the home page."""

import csv
import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone

from analytics.exports import TABLES
from leads.models import LeadScore
from sales.models import Sale
from tests.factories import CustomerFactory, SaleActivityFactory, SaleFactory, TaskFactory

pytestmark = pytest.mark.django_db

DASHBOARD = reverse("analytics:dashboard")
DEALS = reverse("analytics:deals")
EXPORTS = [reverse("analytics:export", args=[table]) for table in TABLES]


@pytest.fixture(autouse=True)
def _empty_cache():
    cache.clear()
    yield
    cache.clear()


def _won(owner, amount, days_ago=5, **fields):
    customer = fields.pop("customer", None) or CustomerFactory(owner=owner)
    return SaleFactory(customer=customer, assigned_to=owner, status="WON", amount=Decimal(amount),
                       closed_at=timezone.now() - timedelta(days=days_ago), **fields)  # fmt: skip


def _csv(response) -> list[list[str]]:
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment;" in response["Content-Disposition"]
    return list(csv.reader(io.StringIO(response.content.decode())))


# Who may open what --------------------------------------------------------------------------


@pytest.mark.parametrize("url", [DASHBOARD, f"{DEALS}?metric=won", *EXPORTS])
def test_reps_are_refused_everywhere(rep_client, url):
    assert rep_client.get(url).status_code == 403


@pytest.mark.parametrize("url", [DASHBOARD, f"{DEALS}?metric=won", *EXPORTS])
def test_anonymous_users_are_sent_to_log_in(client, url):
    response = client.get(url)
    assert response.status_code == 302 and reverse("login") in response["Location"]


@pytest.mark.parametrize("url", [DASHBOARD, f"{DEALS}?metric=won", *EXPORTS])
def test_managers_and_admins_get_every_url(manager_client, admin_user, client, url):
    assert manager_client.get(url).status_code == 200
    client.force_login(admin_user)
    assert client.get(url).status_code == 200


def test_the_nav_shows_analytics_to_managers_only(manager_client, rep, client, teams):
    assert b'href="/analytics/"' in manager_client.get(reverse("home")).content
    client.force_login(rep)
    assert b'href="/analytics/"' not in client.get(reverse("home")).content


def test_post_is_not_allowed(manager_client):
    assert manager_client.post(DASHBOARD).status_code == 405


# Filters the user may not use ---------------------------------------------------------------


@pytest.mark.parametrize("field", ["team", "rep"])
def test_another_teams_team_or_rep_is_ignored_with_a_message(
    manager_client, rep, other_rep, teams, field
):
    _won(rep, "100")
    _won(other_rep, "5000")
    value = teams["other"].pk if field == "team" else other_rep.pk
    response = manager_client.get(DASHBOARD, {field: value})
    assert response.status_code == 200
    assert b"data-ignored" in response.content and b"Select a valid choice" in response.content
    # Shown instead: the manager's own teams, never the other team's numbers.
    filters = response.context["dashboard"]["filters"]
    assert (filters.team_id, filters.rep_id) == (None, None)
    assert b"5,000.00" not in response.content and b"100.00" in response.content


@pytest.mark.parametrize("field", ["team", "rep"])
def test_another_teams_team_or_rep_is_refused_on_exports_and_lists(
    manager_client, other_rep, teams, field
):
    value = teams["other"].pk if field == "team" else other_rep.pk
    export = reverse("analytics:export", args=["revenue"])
    assert manager_client.get(export, {field: value}).status_code == 404
    assert manager_client.get(DEALS, {"metric": "won", field: value}).status_code == 404


def test_an_admin_may_pick_any_team(admin_client_, other_rep, teams):
    _won(other_rep, "5000")
    response = admin_client_.get(DASHBOARD, {"team": teams["other"].pk})
    assert b"data-ignored" not in response.content and b"5,000.00" in response.content


def test_unknown_table_metric_or_period(manager_client):
    assert manager_client.get(reverse("analytics:export", args=["nope"])).status_code == 404
    assert manager_client.get(DEALS, {"metric": "nope"}).status_code == 404
    response = manager_client.get(DASHBOARD, {"period": "7"})
    assert response.status_code == 200 and b"data-ignored" in response.content
    assert response.context["dashboard"]["filters"].period == 90
    # The select shows the period the page shows, not its first choice.
    assert b'<option value="90" selected>' in response.content


@pytest.mark.parametrize("month", ["0000-01", "0001-01", "9999-12", "2026-13", "x"])
def test_a_deal_list_for_an_impossible_month_is_refused_not_a_500(manager_client, month):
    response = manager_client.get(DEALS, {"metric": "revenue", "month": month})
    assert response.status_code == 404


# What the page shows ------------------------------------------------------------------------


def test_manager_dashboard_counts_only_their_teams(manager_client, rep, teammate, other_rep):
    _won(rep, "100")
    _won(teammate, "250")
    _won(other_rep, "7777")
    response = manager_client.get(DASHBOARD)
    (usd,) = response.context["dashboard"]["revenue"]["windows"]
    assert usd["last_30"] == Decimal("350")
    assert b"7,777.00" not in response.content
    assert b"Figures as of" in response.content and b"at least every 120 s" in response.content


def test_rep_filter_through_htmx_returns_the_body_only(manager_client, rep, teammate):
    _won(rep, "100")
    _won(teammate, "250")
    response = manager_client.get(DASHBOARD, {"rep": rep.pk}, headers={"HX-Request": "true"})
    assert b"<html" not in response.content and b'id="analytics-charts"' in response.content
    (usd,) = response.context["dashboard"]["revenue"]["windows"]
    assert usd["last_30"] == Decimal("100")


def test_numbers_link_to_the_records_behind_them(manager_client, rep):
    deal = _won(rep, "100")
    SaleFactory(customer=deal.customer, status="NEW")
    risky = CustomerFactory(owner=rep, engagement_level="LOW", last_contact_date=None)
    content = manager_client.get(DASHBOARD, {"period": 30}).content.decode()
    assert f"{DEALS}?metric=revenue&amp;days=30&amp;currency=USD&amp;period=30" in content
    assert f"{DEALS}?metric=open&amp;status=NEW" in content
    assert reverse("customers:detail", args=[risky.pk]) in content  # churn risk
    assert reverse("customers:detail", args=[deal.customer_id]) in content  # high CLV
    # ... and the list behind the revenue number has exactly its deals.
    listed = manager_client.get(DEALS, {"metric": "revenue", "days": 30, "currency": "USD"})
    assert [sale.pk for sale in listed.context["page"].object_list] == [deal.pk]
    # ... with their count and total, so the number itself can be checked there.
    assert listed.context["totals"]["count"] == 1
    totals = listed.content.decode().split("data-totals>")[1].split("</p>")[0]
    assert "1 deal<" in totals and "100.00" in totals


def test_charts_and_their_data(manager_client, rep):
    _won(rep, "100")
    response = manager_client.get(DASHBOARD)
    charts = response.context["charts"]
    assert set(charts) == {"revenue", "stages", "funnel", "trend", "reps"}
    for name in charts:
        assert f'data-chart="{name}"'.encode() in response.content
        assert f'data-png="{name}"'.encode() in response.content
    assert b"js/analytics.js" in response.content and b"chart-4.6.1.umd.min.js" in response.content


def test_dashboard_page_query_count(manager_client, manager, rep, teammate, teams,
                                    django_assert_max_num_queries):  # fmt: skip
    for owner in (rep, teammate) * 5:
        _won(owner, "100")
        SaleFactory(customer=CustomerFactory(owner=owner), status="PROPOSAL")
    with django_assert_max_num_queries(20):  # the whole page: user, role, form and dashboard
        assert manager_client.get(DASHBOARD, {"team": teams["mine"].pk}).status_code == 200
    with django_assert_max_num_queries(4):  # cached: user, role, the form's choices
        assert manager_client.get(DASHBOARD, {"team": teams["mine"].pk}).status_code == 200


# CSV exports --------------------------------------------------------------------------------


def test_revenue_export_has_the_pages_numbers(manager_client, rep, other_rep):
    _won(rep, "100")
    _won(rep, "40", currency="EUR")
    _won(other_rep, "999")
    rows = _csv(manager_client.get(reverse("analytics:export", args=["revenue"])))
    assert rows[0] == ["currency", "last_30_days", "last_90_days", "last_365_days",
                       "average_deal_size"]  # fmt: skip
    assert [row[:4] for row in rows[1:]] == [
        ["EUR", "40.00", "40.00", "40.00"], ["USD", "100.00", "100.00", "100.00"]]  # fmt: skip


def test_exports_follow_the_filters(manager_client, rep, teammate):
    _won(rep, "100")
    _won(teammate, "250")
    url = reverse("analytics:export", args=["top_reps"])
    rows = _csv(manager_client.get(url, {"rep": teammate.pk, "period": 30}))
    assert [row[2] for row in rows[1:]] == ["250.00"]


def test_exports_neutralise_spreadsheet_formulas(manager_client, rep):
    CustomerFactory(owner=rep, name='=HYPERLINK("http://evil.example","x")', company="@SUM(A1)",
                    engagement_level="LOW", last_contact_date=None)  # fmt: skip
    rows = _csv(manager_client.get(reverse("analytics:export", args=["churn_risk"])))
    (row,) = rows[1:]
    assert row[1].startswith("'=HYPERLINK") and row[2] == "'@SUM(A1)"
    assert row[8] == "Never contacted; No open deals; Low engagement"


@pytest.mark.parametrize("table", list(TABLES))
def test_every_table_exports_with_its_header(manager_client, rep, table):
    _won(rep, "100")
    SaleFactory(customer=CustomerFactory(owner=rep), status="PROPOSAL")
    rows = _csv(manager_client.get(reverse("analytics:export", args=[table])))
    assert rows[0] == TABLES[table].header
    assert all(len(row) == len(rows[0]) for row in rows)


# The deals behind a number ------------------------------------------------------------------


def test_deal_list_for_a_month_and_a_stage(manager_client, rep, other_rep):
    won = _won(rep, "100", days_ago=0)
    _won(other_rep, "100", days_ago=0)
    month = timezone.localdate().strftime("%Y-%m")
    response = manager_client.get(DEALS, {"metric": "revenue", "month": month})
    assert [sale.pk for sale in response.context["page"].object_list] == [won.pk]
    proposal = SaleFactory(customer=CustomerFactory(owner=rep), status="PROPOSAL")
    response = manager_client.get(DEALS, {"metric": "open", "status": "PROPOSAL"})
    assert [sale.pk for sale in response.context["page"].object_list] == [proposal.pk]
    assert manager_client.get(DEALS, {"metric": "revenue", "month": "2025-13"}).status_code == 404


def test_deal_list_query_count(manager_client, rep, django_assert_max_num_queries):
    for _ in range(30):
        _won(rep, "10")
    with django_assert_max_num_queries(9):
        response = manager_client.get(DEALS, {"metric": "won"})
    assert len(response.context["page"].object_list) == 25


# The home page (each user's own dashboard) ----------------------------------------------------


def test_rep_home_shows_my_numbers_only(rep_client, rep, teammate, manager):
    mine = CustomerFactory(owner=rep)
    _won(rep, "100", days_ago=0, customer=mine)
    _won(teammate, "5000", days_ago=0, customer=mine)  # on my customer, but not mine
    _won(teammate, "7000", days_ago=0)
    SaleActivityFactory(sale=SaleFactory(customer=mine, assigned_to=rep), user=rep)
    SaleActivityFactory(sale=SaleFactory(customer=mine, assigned_to=rep), user=teammate)
    response = rep_client.get(reverse("home"))
    numbers = response.context["numbers"]
    (usd,) = numbers["revenue"]
    assert usd["this_month"] == Decimal("100")
    assert numbers["deals_won"]["this_month"] == 1
    assert numbers["activities"]["this_month"] == 1
    assert b"data-my-numbers" in response.content
    assert b"5,000.00" not in response.content and b"7,000.00" not in response.content


def test_rep_home_shows_my_hot_leads(rep_client, rep, teammate):
    def lead(owner, grade, score):
        customer = CustomerFactory(owner=owner, lifecycle_stage="lead")
        LeadScore.objects.create(customer=customer, grade=grade, total_score=score)
        return customer

    hot = lead(rep, "hot", 91)
    lead(rep, "warm", 60)
    lead(teammate, "hot", 95)
    response = rep_client.get(reverse("home"))
    assert [customer.pk for customer in response.context["hot_leads"]] == [hot.pk]
    assert reverse("leads:detail", args=[hot.pk]).encode() in response.content
    assert f"grade=hot&amp;owner={rep.pk}".encode() in response.content


def test_rep_home_shows_my_tasks_due(rep_client, rep, teammate):
    TaskFactory(assigned_to=rep, title="Call Ada back", due_at=timezone.now() - timedelta(hours=1))
    TaskFactory(assigned_to=teammate, title="Not mine", due_at=timezone.now())
    content = rep_client.get(reverse("home")).content
    assert b"Call Ada back" in content and b"Not mine" not in content


def test_home_pipeline_chart_data(rep_client, rep):
    customer = CustomerFactory(owner=rep)
    SaleFactory(customer=customer, assigned_to=rep, amount=Decimal("100"), status="PROPOSAL")
    SaleFactory(customer=customer, assigned_to=rep, amount=Decimal("50"), status="PROPOSAL")
    SaleFactory(customer=customer, assigned_to=rep, amount=Decimal("70"), status="WON")
    SaleFactory(customer=customer, assigned_to=rep, amount=Decimal("9"), currency="EUR")
    response = rep_client.get(reverse("home"))
    pipeline = {row["status"]: row for row in response.context["pipeline"]}
    assert pipeline["Proposal"] == {"status": "Proposal", "count": 2, "value": 150.0}
    assert pipeline["New"]["count"] == 0
    assert "Won" not in pipeline
    assert b"chart-4.6.1.umd.min.js" in response.content


def test_home_query_count_is_fixed(rep_client, rep, django_assert_max_num_queries):
    customer = CustomerFactory(owner=rep, lifecycle_stage="lead")
    LeadScore.objects.create(customer=customer, grade="hot", total_score=90)
    for _ in range(5):
        sale = SaleFactory(customer=customer, assigned_to=rep)
        TaskFactory(assigned_to=rep, sale=sale, customer=customer)
        SaleActivityFactory(sale=sale, user=rep)
    Sale.objects.filter(customer=customer).update(status="WON", closed_at=timezone.now())
    with django_assert_max_num_queries(14):
        assert rep_client.get(reverse("home")).status_code == 200


def test_a_managers_home_links_to_the_dashboard(manager_client):
    content = manager_client.get(reverse("home")).content
    assert b"Executive dashboard" in content


def test_print_layout_names_the_filters(manager_client, rep, teams):
    response = manager_client.get(DASHBOARD, {"team": teams["mine"].pk, "rep": rep.pk})
    assert response.context["filters_label"] == f"Last 90 days · North · {rep.get_full_name()}"
    assert b'class="print-only"' in response.content
    assert b'<option value="90" selected>' in response.content  # the default period shown


def test_a_managers_home_shows_the_team_not_zeros(manager_client, rep, teammate, other_rep):
    """A manager owns no deals: their home shows their teams' figures."""
    _won(rep, "100", days_ago=0)
    _won(teammate, "300", days_ago=0)
    _won(other_rep, "7000", days_ago=0)  # another team
    customer = CustomerFactory(owner=rep)
    SaleFactory(customer=customer, assigned_to=teammate, amount=Decimal("50"), status="PROPOSAL")
    response = manager_client.get(reverse("home"))
    (usd,) = response.context["numbers"]["revenue"]
    assert usd["this_month"] == Decimal("400")
    pipeline = {row["status"]: row for row in response.context["pipeline"]}
    assert pipeline["Proposal"]["count"] == 1
    assert b"My team&#x27;s numbers" in response.content or b"My team's numbers" in response.content
    assert b"7,000.00" not in response.content


def test_the_velocity_says_why_its_cycle_is_longer_than_the_stage_days(manager_client):
    content = manager_client.get(DASHBOARD).content.decode()
    assert "Cycle: from a won deal&#x27;s creation to its close" in content or (
        "Cycle: from a won deal's creation to its close" in content
    )
    assert "their sum is usually shorter than the cycle" in content
