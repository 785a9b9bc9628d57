"""The forecast page (sales.forecasting.page and its view)."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from sales.models import Sale
from sales.services.forecast import forecast_snapshots_take
from tests.sales.forecasting.helpers import (
    closed_history,
    enter_stages,
    make_deal,
    usd_row,
)

pytestmark = pytest.mark.django_db


# The page ---------------------------------------------------------------------------------


URL = reverse("sales:forecast")


def test_page_shows_a_reps_own_forecast(rep_client, rep, other_rep):
    now, today = timezone.now(), timezone.localdate()
    make_deal(rep, "PROPOSAL", "1000.00", now=now, expected_close_date=today + timedelta(days=2))
    make_deal(
        rep, "NEGOTIATION", "2000.00", now=now, expected_close_date=today + timedelta(days=40)
    )
    make_deal(rep, "NEW", "500.00", now=now, expected_close_date=None)
    make_deal(other_rep, "PROPOSAL", "9000.00", now=now, expected_close_date=today)
    response = rep_client.get(URL, {"period": "90"})
    assert response.status_code == 200
    assert response.context["scope"].key == "me"
    usd = usd_row(response.context)
    assert (usd["deal_count"], usd["pipeline_value"]) == (2, Decimal("3000.00"))
    assert usd["weighted_value"] == Decimal("2000.00")  # 500 + 1500
    body = response.content.decode()
    assert 'data-forecast-chart="USD"' in body and 'id="forecast-chart-data"' in body
    assert "9,000.00" not in body
    assert "1 open deal of this scope has none" in body
    assert [key for key, _ in response.context["form"].fields["scope"].choices] == ["me"]


def test_a_rep_cannot_pick_a_team_or_everyone(rep_client, teams):
    assert rep_client.get(URL, {"scope": teams["mine"].pk}).status_code == 404
    assert rep_client.get(URL, {"scope": "all"}).status_code == 404


def test_a_manager_cannot_pick_a_team_they_do_not_manage(manager_client, teams, teammate):
    make_deal(teammate, "PROPOSAL", "2000.00", now=timezone.now())
    assert manager_client.get(URL, {"scope": teams["other"].pk}).status_code == 404
    assert manager_client.get(URL, {"scope": "999999"}).status_code == 404
    response = manager_client.get(URL, {"scope": teams["mine"].pk, "period": "30"})
    assert response.status_code == 200
    assert usd_row(response.context)["pipeline_value"] == Decimal("2000.00")


def test_another_teams_manager_cannot_see_the_team(client, other_manager, teams):
    client.force_login(other_manager)
    assert client.get(URL, {"scope": teams["mine"].pk}).status_code == 404
    assert client.get(URL, {"scope": teams["other"].pk}).status_code == 200


def test_admin_can_pick_every_team_and_everyone(admin_client_, teams):
    keys = [k for k, _ in admin_client_.get(URL).context["form"].fields["scope"].choices]
    assert keys == ["me", str(teams["mine"].pk), str(teams["other"].pk), "all"]
    assert admin_client_.get(URL, {"scope": "all"}).status_code == 200


def test_page_needs_a_login(client):
    response = client.get(URL)
    assert response.status_code == 302 and "login" in response["Location"]


def test_empty_filters_mean_the_defaults(rep_client):
    response = rep_client.get(URL, {"period": "", "scope": ""})
    assert response.status_code == 200
    assert (response.context["period"].key, response.context["scope"].key) == ("90", "me")


def test_an_unknown_period_falls_back_to_90_days_and_says_so(rep_client):
    response = rep_client.get(URL, {"period": "45"})
    assert response.status_code == 200
    assert response.context["period"].key == "90"
    assert response.context["form"].errors["period"]


def test_page_empty_states(rep_client):
    body = rep_client.get(URL).content.decode()
    assert "No open deals of this scope are expected to close in this period." in body
    assert "No past forecast to compare yet" in body
    assert "No won or lost deals with a stage history in this scope yet." in body


def test_htmx_request_gets_the_body_partial(rep_client):
    response = rep_client.get(URL, {"period": "60"}, headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert "<html" not in response.content.decode()
    assert [t.name for t in response.templates][0] == "sales/partials/_forecast_body.html"


def test_page_query_count_is_fixed(
    admin_client_, rep, teammate, other_rep, teams, manager, django_assert_max_num_queries
):
    """Historical rates in use (the most queries); more deals, snapshots and stage history
    do not add any."""
    closed_history(200, other_rep)
    now, today = timezone.now(), timezone.localdate()
    for owner in (rep, teammate, other_rep):
        for status in Sale.OPEN_STATUSES:
            make_deal(owner, status, now=now)
        enter_stages(make_deal(owner, "WON", now=now), "NEW", "PROPOSAL", "WON")
    forecast_snapshots_take(today=today - timedelta(days=120))
    # session + user, teams, stage settings, closed count, historical rates, forecast,
    # undated count, forecast vs actual, calibration
    for scope in ("all", str(teams["mine"].pk), "me"):
        with django_assert_max_num_queries(9):
            response = admin_client_.get(URL, {"scope": scope})
        assert response.status_code == 200 and response.context["model"].historical
        if scope != "me":  # the admin has no deals of their own
            assert response.context["history"] and response.context["calibration"]
    for owner in (rep, teammate, other_rep):
        for _ in range(5):
            make_deal(owner, "PROPOSAL", now=now, expected_close_date=today + timedelta(days=40))
    with django_assert_max_num_queries(9):
        admin_client_.get(URL, {"scope": "all"})
    admin_client_.force_login(manager)  # + the manager's role and team members
    with django_assert_max_num_queries(11):
        assert admin_client_.get(URL, {"scope": "all"}).status_code == 200
