"""The forecast page (sales.forecasting.page and its view)."""

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from sales.models import Sale
from sales.services.forecast import forecast_snapshots_take, forecast_statistics_compute
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
    # Before the first nightly statistics: the base rates, and the calibration to come.
    assert "it appears here after the first run" in body
    assert "historical stage-to-win rates are computed nightly" in body
    forecast_statistics_compute()
    body = rep_client.get(URL).content.decode()
    assert "No won or lost deals with a stage history in this scope yet." in body
    assert "data-statistics-computed" in body


def test_page_works_with_history_but_no_statistics_yet(manager_client, rep, other_rep, teams):
    closed_history(250, rep)
    make_deal(rep, "PROPOSAL", now=timezone.now())
    response = manager_client.get(URL, {"scope": "all"})
    assert response.status_code == 200
    assert not response.context["model"].historical
    assert response.context["calibration"] == []
    assert response.context["statistics_computed_at"] is None
    assert "it appears here after the first run" in response.content.decode()


def test_page_says_when_the_statistics_were_computed(manager_client, rep, teams):
    closed_history(200, rep)
    computed = timezone.make_aware(datetime(2026, 3, 9, 3, 15))
    forecast_statistics_compute(now=computed)
    response = manager_client.get(URL, {"scope": teams["mine"].pk})
    assert response.context["model"].historical
    assert response.context["statistics_computed_at"] == computed
    body = response.content.decode()
    assert "historical stage-to-win rates from 200 closed deals, computed" in body
    assert f'datetime="{timezone.localtime(computed).isoformat()}"' in body
    assert "last computed <time datetime=" in body


def test_htmx_request_gets_the_body_partial(rep_client):
    response = rep_client.get(URL, {"period": "60"}, headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert "<html" not in response.content.decode()
    assert [t.name for t in response.templates][0] == "sales/partials/_forecast_body.html"


def test_page_query_count_is_fixed(
    admin_client_, rep, teammate, other_rep, teams, manager, django_assert_max_num_queries
):
    """Historical rates in use; more deals, snapshots and stage history do not add any."""
    closed_history(200, other_rep)
    now, today = timezone.now(), timezone.localdate()
    for owner in (rep, teammate, other_rep):
        for status in Sale.OPEN_STATUSES:
            make_deal(owner, status, now=now)
        enter_stages(make_deal(owner, "WON", now=now), "NEW", "PROPOSAL", "WON")
    forecast_snapshots_take(today=today - timedelta(days=120))
    forecast_statistics_compute()
    # session + user, teams, stage settings, stored rates, forecast, undated count,
    # forecast vs actual, stored calibration
    for scope in ("all", str(teams["mine"].pk), "me"):
        with django_assert_max_num_queries(8):
            response = admin_client_.get(URL, {"scope": scope})
        assert response.status_code == 200 and response.context["model"].historical
        if scope != "me":  # the admin has no deals of their own
            assert response.context["history"] and response.context["calibration"]
    for owner in (rep, teammate, other_rep):
        for _ in range(5):
            make_deal(owner, "PROPOSAL", now=now, expected_close_date=today + timedelta(days=40))
    forecast_statistics_compute()
    with django_assert_max_num_queries(8):
        admin_client_.get(URL, {"scope": "all"})
    admin_client_.force_login(manager)  # + the manager's role and team members
    with django_assert_max_num_queries(10):
        assert admin_client_.get(URL, {"scope": "all"}).status_code == 200


def _stage_history_queries(client, url) -> list[str]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200, url
    sql = [query["sql"] for query in queries.captured_queries]
    assert any("sales_stagewinrate" in statement for statement in sql), url  # stored rates
    return [statement for statement in sql if "sales_stagechange" in statement]


def test_the_forecast_and_deal_pages_never_read_all_the_stage_history(manager_client, rep, teams):
    """The stage history grows without bound: the pages read the nightly statistics."""
    closed_history(200, rep)
    open_deal = make_deal(rep, "PROPOSAL", now=timezone.now())
    enter_stages(open_deal, "NEW", "PROPOSAL")
    forecast_statistics_compute()
    for query in ("", "?scope=all", f"?scope={teams['mine'].pk}", "?period=quarter"):
        assert _stage_history_queries(manager_client, URL + query) == []
    # The deal page lists the deal's own stage changes, and nothing else of the history.
    deal_page = reverse("sales:detail", args=[open_deal.pk])
    (own,) = _stage_history_queries(manager_client, deal_page)
    assert f'WHERE "sales_stagechange"."sale_id" = {open_deal.pk} ' in own
