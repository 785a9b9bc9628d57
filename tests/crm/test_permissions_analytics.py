"""crm.permissions.analytics and crm.permissions.scopes: whose numbers a user may look at."""

import pytest
from django.http import Http404

from crm.errors import PermissionDenied
from crm.permissions.analytics import (
    UNSCOPED,
    AnalyticsScope,
    access_dashboard_scope,
    dashboard_reps,
    dashboard_view_key,
    require_dashboard,
    scoped_customers,
    scoped_sales,
)
from crm.permissions.scopes import ScopeOutOfReach, of_owner, of_team
from sales.models import Sale
from tests.factories import CustomerFactory, SaleFactory

pytestmark = pytest.mark.django_db


def test_the_dashboards_are_for_managers_and_admins(rep, manager, admin_user, teams):
    with pytest.raises(PermissionDenied):
        require_dashboard(rep)
    with pytest.raises(PermissionDenied) as refused:
        access_dashboard_scope(rep)
    assert not isinstance(refused.value, Http404)  # a rep is refused (403), not "not found"
    require_dashboard(manager)
    require_dashboard(admin_user)


def test_a_manager_picks_only_their_teams_and_people(manager, rep, other_rep, teams):
    mine, other = teams["mine"].pk, teams["other"].pk
    assert access_dashboard_scope(manager, team_id=mine, rep_id=rep.pk) == AnalyticsScope(
        team_id=mine, rep_id=rep.pk
    )
    assert access_dashboard_scope(manager, rep_id=manager.pk).rep_id == manager.pk
    assert access_dashboard_scope(manager) == UNSCOPED
    for kwargs in ({"team_id": other}, {"rep_id": other_rep.pk}):
        with pytest.raises(ScopeOutOfReach) as refused:
            access_dashboard_scope(manager, **kwargs)
        # Out of reach: a 404 in a request, still a PermissionDenied to a caller.
        assert isinstance(refused.value, Http404)
        assert isinstance(refused.value, PermissionDenied)


def test_an_admin_picks_any_team_or_person(admin_user, other_rep, teams):
    scope = access_dashboard_scope(admin_user, team_id=teams["other"].pk, rep_id=other_rep.pk)
    assert scope == AnalyticsScope(team_id=teams["other"].pk, rep_id=other_rep.pk)


def test_dashboard_reps_and_view_keys(manager, rep, teammate, other_rep, admin_user, teams):
    assert {person.pk for person in dashboard_reps(manager)} == {manager.pk, rep.pk, teammate.pk}
    assert other_rep in dashboard_reps(admin_user)
    assert dashboard_view_key(admin_user) == "all"
    assert dashboard_view_key(manager) == f"u{manager.pk}"


def test_a_scope_narrows_what_the_user_sees(manager, rep, teammate, other_rep, teams):
    mine = SaleFactory(customer=CustomerFactory(owner=rep), assigned_to=rep)
    theirs = SaleFactory(customer=CustomerFactory(owner=teammate), assigned_to=teammate)
    SaleFactory(customer=CustomerFactory(owner=other_rep), assigned_to=other_rep)
    assert set(scoped_sales(manager)) == {mine, theirs}
    assert list(scoped_sales(manager, AnalyticsScope(rep_id=rep.pk))) == [mine]
    # Another team's scope never widens what the manager sees.
    assert not scoped_sales(manager, AnalyticsScope(team_id=teams["other"].pk)).exists()
    assert list(scoped_customers(manager, AnalyticsScope(rep_id=teammate.pk))) == [theirs.customer]


def test_of_owner_and_of_team(rep, teammate, other_rep, teams):
    deals = [SaleFactory(customer=CustomerFactory(owner=user), assigned_to=user)
             for user in (rep, teammate, other_rep)]  # fmt: skip
    assert list(of_owner(Sale.objects.all(), rep)) == [deals[0]]
    assert set(of_team(Sale.objects.all(), teams["mine"].pk)) == set(deals[:2])
    assert set(of_team(Sale.objects.all(), teams["other"].pk, field="customer__owner")) == {
        deals[2]
    }
