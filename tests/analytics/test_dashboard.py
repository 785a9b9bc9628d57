"""The executive dashboard: its blocks, who may see what, query counts and the cache."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from unittest import mock

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from analytics.dashboard import (
    BLOCKS,
    DashboardFilters,
    _cache_keys,
    dashboard_blocks,
    executive_dashboard,
)
from analytics.tasks import refresh_dashboard
from crm import cache as crm_cache
from crm.errors import PermissionDenied
from customers import services as customer_services
from sales import services as sale_services
from sales.models import Sale
from tests.factories import (
    CustomerFactory,
    RepFactory,
    SaleFactory,
    TeamFactory,
    stage_history,
)

pytestmark = pytest.mark.django_db

NOW = datetime(2025, 6, 15, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _empty_cache(settings):
    settings.TIME_ZONE = "UTC"
    cache.clear()
    yield
    cache.clear()


def _fresh(user):
    """The user as a new request would load it: nothing cached on the object."""
    return type(user).objects.get(pk=user.pk)


def _won(owner, amount, closed, currency="USD", created=None):
    sale = SaleFactory(customer=CustomerFactory(owner=owner), status="WON", currency=currency,
                       amount=Decimal(amount), closed_at=closed)  # fmt: skip
    Sale.objects.filter(pk=sale.pk).update(created_at=created or closed - timedelta(days=10))
    return sale


# The blocks -----------------------------------------------------------------------------------


def test_blocks_by_hand(manager, rep, teammate, teams):
    _won(rep, "100", NOW - timedelta(days=5))
    _won(teammate, "300", NOW - timedelta(days=40))
    _won(rep, "50", datetime(2024, 6, 20, tzinfo=UTC))  # same month last year
    customer = CustomerFactory(owner=rep, engagement_level="LOW", last_contact_date=None)
    SaleFactory(customer=CustomerFactory(owner=rep), status="PROPOSAL", amount=Decimal("700"),
                expected_close_date=NOW.date() + timedelta(days=10))  # fmt: skip
    dashboard = executive_dashboard(user=manager, filters=DashboardFilters(period=90), now=NOW)

    (usd,) = dashboard["revenue"]["windows"]
    assert (usd["last_30"], usd["last_90"], usd["last_365"]) == (
        Decimal("100"), Decimal("400"), Decimal("450"))  # fmt: skip
    (months,) = dashboard["revenue"]["by_month"]
    june = months["rows"][5]
    assert june["this_year"]["amount"] == Decimal("100")
    assert june["last_year"]["amount"] == Decimal("50")
    assert june["this_year"]["month"] == "2025-06" and months["rows"][6]["this_year"]["future"]
    assert months["this_year_total"] == Decimal("400")
    this_year = dashboard["revenue"]["chart"]["datasets"][1]
    assert this_year["label"] == "USD 2025" and this_year["data"][6] is None

    pipeline = dashboard["pipeline"]
    proposal = next(row for row in pipeline["by_stage"] if row["status"] == "PROPOSAL")
    assert proposal["cells"] == [{"currency": "USD", "deals": 1, "value": Decimal("700")}]
    (summary,) = pipeline["summary"]
    assert (summary["closing_soon"], summary["closing_soon_value"]) == (1, Decimal("700"))
    assert pipeline["velocity"]["won"] == 2
    assert len(pipeline["velocity_trend"]) == 6

    top = dashboard["team"]["top_reps"]
    assert [(row["rep_id"], row["won"]) for row in top] == [
        (teammate.pk, Decimal("300")), (rep.pk, Decimal("100"))]  # fmt: skip

    risky = [row["id"] for row in dashboard["customers"]["churn_risk"]]
    assert customer.pk in risky
    (best, *_) = dashboard["customers"]["high_clv"]
    assert best["won_count"] == 1
    assert dashboard["as_of"] == NOW and dashboard["cache_seconds"] == 120


def test_empty_dashboard(manager, teams):
    dashboard = executive_dashboard(user=manager, filters=DashboardFilters(), now=NOW)
    assert dashboard["revenue"]["windows"] == [] and dashboard["revenue"]["by_month"] == []
    assert dashboard["pipeline"]["velocity"]["velocity_per_day"] == 0
    assert dashboard["team"]["top_reps"] == [] and dashboard["customers"]["high_clv"] == []


# Who sees what ------------------------------------------------------------------------------


def test_a_manager_counts_only_their_teams(manager, other_manager, rep, other_rep, teams):
    _won(rep, "100", NOW - timedelta(days=5))
    _won(other_rep, "5000", NOW - timedelta(days=5))
    mine = executive_dashboard(user=manager, filters=DashboardFilters(), now=NOW)
    (usd,) = mine["revenue"]["windows"]
    assert usd["last_30"] == Decimal("100")
    assert [row["rep_id"] for row in mine["team"]["top_reps"]] == [rep.pk]
    theirs = executive_dashboard(user=other_manager, filters=DashboardFilters(), now=NOW)
    assert theirs["revenue"]["windows"][0]["last_30"] == Decimal("5000")


def test_an_admin_counts_everyone(admin_user, rep, other_rep, teams):
    _won(rep, "100", NOW - timedelta(days=5))
    _won(other_rep, "5000", NOW - timedelta(days=5))
    dashboard = executive_dashboard(user=admin_user, filters=DashboardFilters(), now=NOW)
    assert dashboard["revenue"]["windows"][0]["last_30"] == Decimal("5100")
    team = DashboardFilters(team_id=teams["other"].pk)
    dashboard = executive_dashboard(user=admin_user, filters=team, now=NOW)
    assert dashboard["revenue"]["windows"][0]["last_30"] == Decimal("5000")


def test_team_and_rep_filters(manager, rep, teammate, teams):
    _won(rep, "100", NOW - timedelta(days=5))
    _won(teammate, "900", NOW - timedelta(days=5))
    one_rep = executive_dashboard(user=manager, filters=DashboardFilters(rep_id=rep.pk), now=NOW)
    assert one_rep["revenue"]["windows"][0]["last_30"] == Decimal("100")
    team = DashboardFilters(team_id=teams["mine"].pk)
    assert executive_dashboard(user=manager, filters=team, now=NOW)["revenue"]["windows"][0][
        "last_30"] == Decimal("1000")  # fmt: skip


def test_reps_have_no_executive_dashboard(rep, teams):
    with pytest.raises(PermissionDenied):
        executive_dashboard(user=rep, filters=DashboardFilters())


@pytest.mark.parametrize("field", ["team", "rep"])
def test_a_manager_cannot_pick_another_teams_team_or_rep(manager, other_rep, teams, field):
    filters = (DashboardFilters(team_id=teams["other"].pk) if field == "team"
               else DashboardFilters(rep_id=other_rep.pk))  # fmt: skip
    with pytest.raises(PermissionDenied):
        executive_dashboard(user=manager, filters=filters)


def test_an_unknown_period_is_refused_as_bad_input(manager, teams):
    from crm.errors import ValidationFailed

    with pytest.raises(ValidationFailed, match="Unknown period"):
        executive_dashboard(user=manager, filters=DashboardFilters(period=7))


# Query counts -------------------------------------------------------------------------------


def _busy_company(manager, reps: int, deals_each: int):
    """Reps in the manager's team with won, lost and open deals with stage histories."""
    team = TeamFactory(managers=[manager])
    for index in range(reps):
        rep = RepFactory(username=f"busy{reps}-{index}")
        team.memberships.create(user=rep)
        for number in range(deals_each):
            status = ("WON", "LOST", "NEW", "PROPOSAL")[number % 4]
            closed = NOW - timedelta(days=number * 7) if status in ("WON", "LOST") else None
            sale = SaleFactory(customer=CustomerFactory(owner=rep), status=status, closed_at=closed,
                               lost_reason="x" if status == "LOST" else "",
                               currency="EUR" if number % 5 == 0 else "USD")  # fmt: skip
            created = NOW - timedelta(days=number * 9 + 20)
            Sale.objects.filter(pk=sale.pk).update(created_at=created)
            stage_history(sale, ("NEW", created), (status, NOW - timedelta(days=number * 6)))
    return team


def _count_queries(user, filters) -> int:
    with CaptureQueriesContext(connection) as queries:
        executive_dashboard(user=_fresh(user), filters=filters, use_cache=False, now=NOW)
    return len(queries)


def test_the_whole_dashboard_uncached_is_at_most_20_queries(manager, teams):
    team = _busy_company(manager, reps=3, deals_each=8)
    small = _count_queries(manager, DashboardFilters(team_id=team.pk))
    _busy_company(manager, reps=6, deals_each=12)
    big = _count_queries(manager, DashboardFilters(team_id=team.pk))
    assert small == big <= 20
    # With a rep picked, and for an admin (no visibility filter to read).
    assert _count_queries(manager, DashboardFilters(rep_id=manager.pk, period=365)) <= 20
    assert _count_queries(manager, DashboardFilters()) <= 19


def test_admin_dashboard_query_count(admin_user, manager, teams):
    _busy_company(manager, reps=3, deals_each=8)
    assert _count_queries(admin_user, DashboardFilters()) <= 17


# The cache ----------------------------------------------------------------------------------


def test_a_cached_dashboard_does_not_query_again(manager, rep, teams):
    _won(rep, "100", NOW - timedelta(days=5))
    filters = DashboardFilters(team_id=teams["mine"].pk)
    first = executive_dashboard(user=_fresh(manager), filters=filters, now=NOW)
    user = _fresh(manager)
    with CaptureQueriesContext(connection) as queries:
        again = executive_dashboard(user=user, filters=filters)
    # Only the role of a freshly loaded user; nothing of the dashboard itself.
    assert len(queries) == 1, [q["sql"] for q in queries]
    assert again["revenue"]["windows"] == first["revenue"]["windows"]
    assert again["as_of"] == NOW


def test_other_filters_and_other_users_are_cached_apart(manager, other_manager, rep, teams):
    _won(rep, "100", NOW - timedelta(days=5))
    executive_dashboard(user=manager, filters=DashboardFilters(), now=NOW)
    theirs = executive_dashboard(user=other_manager, filters=DashboardFilters(), now=NOW)
    assert theirs["revenue"]["windows"] == []
    with CaptureQueriesContext(connection) as queries:
        executive_dashboard(user=manager, filters=DashboardFilters(period=30), now=NOW)
    assert len(queries) > 5


def _win(rep, deal, callbacks):
    with callbacks(execute=True) as done:
        sale_services.sale_change_stage(actor=rep, sale=deal, to_status="WON",
                                        closed_on=timezone.localdate())  # fmt: skip
    assert done, "the generation is bumped after commit"


def test_a_deal_change_shows_the_old_figures_while_a_worker_computes_new_ones(
    manager, rep, teams, django_capture_on_commit_callbacks
):
    customer = CustomerFactory(owner=rep)
    deal = SaleFactory(customer=customer, assigned_to=rep, amount=Decimal("100"))
    filters = DashboardFilters()
    before = executive_dashboard(user=manager, filters=filters)
    assert before["revenue"]["windows"] == [] and not before["refreshing"]
    _win(rep, deal, django_capture_on_commit_callbacks)
    queue = mock.patch("analytics.tasks.refresh_dashboard.delay")
    with queue as queued, django_capture_on_commit_callbacks(execute=True):
        stale = executive_dashboard(user=manager, filters=filters)
    assert stale["revenue"]["windows"] == [] and stale["refreshing"]
    queued.assert_called_once_with(manager.pk, filters.period, None, None, list(BLOCKS))
    # The worker's run (Celery runs eagerly in the tests): the next view is the new one.
    refresh_dashboard(*queued.call_args.args)
    after = executive_dashboard(user=manager, filters=filters)
    assert after["revenue"]["windows"][0]["last_30"] == Decimal("100")
    assert not after["refreshing"]


def test_a_refresh_is_queued_at_most_once_per_refresh_time(
    manager, rep, teams, settings, django_capture_on_commit_callbacks
):
    settings.ANALYTICS_REFRESH_SECONDS = 60
    customer = CustomerFactory(owner=rep)
    deals = SaleFactory.create_batch(3, customer=customer, assigned_to=rep, amount=Decimal("5"))
    filters = DashboardFilters()
    executive_dashboard(user=manager, filters=filters)
    with mock.patch("analytics.tasks.refresh_dashboard.delay") as queued:
        for deal in deals:  # a busy team: changes between every view
            _win(rep, deal, django_capture_on_commit_callbacks)
            queries = CaptureQueriesContext(connection)
            with django_capture_on_commit_callbacks(execute=True), queries:
                assert executive_dashboard(user=manager, filters=filters)["refreshing"]
            assert len(queries) <= 1, "a stale dashboard is not computed on the request"
    assert queued.call_count == 1


def test_an_old_dashboard_is_refreshed_even_without_changes(manager, rep, teams, settings):
    _won(rep, "100", NOW - timedelta(days=5))
    filters = DashboardFilters()
    executive_dashboard(user=manager, filters=filters, now=NOW)
    later = NOW + timedelta(seconds=settings.ANALYTICS_CACHE_SECONDS + 1)
    with mock.patch("analytics.tasks.refresh_dashboard.delay"):
        assert executive_dashboard(user=manager, filters=filters, now=later)["refreshing"]


def test_the_refresh_task_does_nothing_for_a_user_no_longer_allowed(manager, rep, teams):
    filters = DashboardFilters()
    refresh_dashboard(rep.pk, filters.period, None, None, list(BLOCKS))  # a rep: no dashboard
    refresh_dashboard(999_999, filters.period, None, None, list(BLOCKS))  # gone
    assert cache.get_many(list(_cache_keys(rep, filters, BLOCKS).values())) == {}


@pytest.mark.parametrize(
    "change",
    ["create", "update", "delete", "customer_delete", "customer_reassign", "customer_owner",
     "customer_shared", "customer_auto_assign"],
)  # fmt: skip
def test_every_deal_write_bumps_the_generation(rep, teammate, manager, teams, change,
                                               django_capture_on_commit_callbacks):  # fmt: skip
    deal = SaleFactory(customer=CustomerFactory(owner=rep), assigned_to=rep)
    generation = crm_cache.generation(crm_cache.DEALS)
    with django_capture_on_commit_callbacks(execute=True):
        if change == "create":
            sale_services.sale_create(actor=rep, data={"title": "New", "customer": deal.customer})
        elif change == "update":
            sale_services.sale_update(actor=rep, sale=deal, data={"amount": Decimal("5")})
        elif change == "delete":
            sale_services.sale_delete(actor=rep, sale=deal)
        elif change == "customer_delete":  # the deals go with the customer
            customer_services.customer_delete(actor=rep, customer=deal.customer)
        elif change == "customer_reassign":  # the deals move to another rep's book
            customer_services.customer_bulk_assign_owner(
                actor=manager, customer_ids=[deal.customer_id], owner=teammate
            )
        elif change == "customer_owner":
            customer_services.customer_update(
                actor=manager, customer=deal.customer, data={"owner": teammate}
            )
        elif change == "customer_shared":  # the teammate now sees its deals
            customer_services.customer_update(
                actor=rep, customer=deal.customer, data={}, shared_with=[teammate]
            )
        else:
            customer_services.customer_assign_owner_automatically(
                customer_id=deal.customer_id, owner=teammate, reason="hot lead"
            )
    assert crm_cache.generation(crm_cache.DEALS) > generation


def test_nothing_is_bumped_before_commit(rep, teams, django_capture_on_commit_callbacks):
    deal = SaleFactory(customer=CustomerFactory(owner=rep), assigned_to=rep)
    generation = crm_cache.generation(crm_cache.DEALS)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        sale_services.sale_update(actor=rep, sale=deal, data={"amount": Decimal("5")})
        assert crm_cache.generation(crm_cache.DEALS) == generation
    # One bump, after commit (the other callbacks push the change to open boards).
    assert len([c for c in callbacks if c.__qualname__.startswith("bump_on_commit")]) == 1


def test_cache_time_comes_from_the_setting(manager, rep, teams, settings):
    settings.ANALYTICS_CACHE_SECONDS = 45
    dashboard = executive_dashboard(user=manager, filters=DashboardFilters(), now=NOW)
    assert dashboard["cache_seconds"] == 45


def test_a_lost_generation_never_comes_back_as_an_old_one(teams):
    first = crm_cache.generation("topic")
    crm_cache.bump("topic")
    assert crm_cache.generation("topic") == first + 1
    cache.delete(crm_cache.KEY_PREFIX + "topic")  # evicted
    assert crm_cache.generation("topic") > first + 1


def test_an_export_reads_only_its_block(manager, teams):
    user = _fresh(manager)
    with CaptureQueriesContext(connection) as queries:
        blocks = dashboard_blocks(user=user, filters=DashboardFilters(), names=("team",), now=NOW)
    assert list(blocks) == ["team"] and len(queries) <= 4


def test_top_reps_of_a_manager_are_their_own_reps(manager, rep, other_rep, teams):
    """A deal on the team's customer assigned to another team's rep is visible to the
    manager, but that rep is not one of theirs to rank."""
    from tests.factories import CustomerFactory, SaleFactory

    _won(rep, "100", NOW - timedelta(days=5))
    SaleFactory(
        customer=CustomerFactory(owner=rep), assigned_to=other_rep, status="WON",
        amount=Decimal("9000"), currency="USD", closed_at=NOW - timedelta(days=3),
    )  # fmt: skip
    mine = executive_dashboard(user=manager, filters=DashboardFilters(), now=NOW)
    assert [row["rep_id"] for row in mine["team"]["top_reps"]] == [rep.pk]
