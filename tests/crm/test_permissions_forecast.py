"""crm.permissions.forecast: whose deals a user may forecast."""

import pytest
from django.http import Http404

from crm.errors import PermissionDenied
from crm.permissions.forecast import ForecastScope, access_forecast_scope, forecast_scopes
from sales.models import ForecastSnapshot, Sale
from tests.factories import CustomerFactory, SaleFactory

pytestmark = pytest.mark.django_db


def test_each_role_gets_its_scopes(rep, manager, teammate, admin_user, teams):
    assert [scope.key for scope in forecast_scopes(rep)] == ["me"]
    mine, other = str(teams["mine"].pk), str(teams["other"].pk)
    assert [scope.key for scope in forecast_scopes(manager)] == ["me", mine, "all"]
    assert {scope.key for scope in forecast_scopes(admin_user)} == {"me", mine, other, "all"}
    everything = forecast_scopes(manager)[-1]
    assert everything.label == "All my teams"
    assert set(everything.user_ids) == {manager.pk, rep.pk, teammate.pk}
    assert everything.snapshot_keys == tuple(f"rep:{pk}" for pk in everything.user_ids)


def test_kinds_are_the_snapshot_scopes(rep, manager, teams):
    kinds = {scope.kind for scope in forecast_scopes(manager)}
    assert kinds == set(ForecastSnapshot.Scope.values)


def test_a_scope_out_of_reach_is_refused_as_not_found(rep, manager, teams):
    for user, key in ((rep, "all"), (rep, teams["mine"].pk), (manager, teams["other"].pk)):
        with pytest.raises(PermissionDenied) as refused:
            access_forecast_scope(user, key)
        assert isinstance(refused.value, Http404)
    scope = access_forecast_scope(manager, teams["mine"].pk)
    assert isinstance(scope, ForecastScope) and access_forecast_scope(manager, scope) == scope


def test_a_scope_counts_deals_by_their_owner(rep, teammate, other_rep, manager, teams):
    deals = {user.username: SaleFactory(customer=CustomerFactory(owner=user), assigned_to=user)
             for user in (rep, teammate, other_rep)}  # fmt: skip
    team = access_forecast_scope(manager, teams["mine"].pk)
    assert set(Sale.objects.filter(team.deals_q())) == {deals[rep.username],
                                                        deals[teammate.username]}  # fmt: skip
    me = access_forecast_scope(rep, "me")
    assert list(Sale.objects.filter(me.deals_q())) == [deals[rep.username]]
