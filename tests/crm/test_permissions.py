import pytest

from crm import permissions
from tests.factories import CustomerFactory, SaleFactory, TaskFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def records(rep, teammate, other_rep, teams):
    return {
        "mine": CustomerFactory(owner=rep),
        "teammates": CustomerFactory(owner=teammate),
        "others": CustomerFactory(owner=other_rep),
        "shared": CustomerFactory(owner=other_rep, shared_with=[rep, teammate]),
    }


def _names(queryset, records):
    ids = set(queryset.values_list("pk", flat=True))
    return {name for name, record in records.items() if record.pk in ids}


def test_rep_sees_own_and_shared_customers(rep, records):
    assert _names(permissions.visible_customers(rep), records) == {"mine", "shared"}


def test_shared_customer_is_not_editable_by_the_rep(rep, records):
    assert _names(permissions.editable_customers(rep), records) == {"mine"}


def test_manager_sees_the_team_and_nothing_else(manager, records):
    assert _names(permissions.visible_customers(manager), records) == {
        "mine",
        "teammates",
        "shared",
    }
    assert _names(permissions.editable_customers(manager), records) == {"mine", "teammates"}


def test_admin_sees_all(admin_user, records):
    assert _names(permissions.visible_customers(admin_user), records) == set(records)


def test_sharing_with_several_users_gives_no_duplicate_rows(rep, records):
    visible = permissions.visible_customers(rep)
    assert visible.count() == len(set(visible.values_list("pk", flat=True)))


def test_rep_sees_deals_assigned_to_them_or_on_visible_customers(rep, other_rep, records):
    assigned_on_foreign = SaleFactory(customer=records["others"], assigned_to=rep)
    on_my_customer = SaleFactory(customer=records["mine"], assigned_to=other_rep)
    foreign = SaleFactory(customer=records["others"], assigned_to=other_rep)
    visible = set(permissions.visible_sales(rep).values_list("pk", flat=True))
    assert assigned_on_foreign.pk in visible
    assert on_my_customer.pk in visible
    assert foreign.pk not in visible


def test_manager_sees_team_deals_only(manager, teammate, other_rep, records):
    team_deal = SaleFactory(customer=records["teammates"], assigned_to=teammate)
    foreign = SaleFactory(customer=records["others"], assigned_to=other_rep)
    visible = set(permissions.visible_sales(manager).values_list("pk", flat=True))
    assert team_deal.pk in visible
    assert foreign.pk not in visible


def test_tasks_follow_assignee(rep, teammate, other_rep, manager, teams):
    mine = TaskFactory(assigned_to=rep)
    teammates = TaskFactory(assigned_to=teammate)
    others = TaskFactory(assigned_to=other_rep)
    assert set(permissions.visible_tasks(rep)) == {mine}
    assert set(permissions.visible_tasks(manager)) == {mine, teammates}
    assert others not in permissions.visible_tasks(manager)


def test_assignable_users_by_role(rep, teammate, other_rep, manager, admin_user, teams):
    assert list(permissions.assignable_users(rep)) == [rep]
    assert set(permissions.assignable_users(manager)) == {manager, rep, teammate}
    assert other_rep in permissions.assignable_users(admin_user)
