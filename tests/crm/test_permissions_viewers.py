"""crm.permissions.viewers reads the visibility rule the other way round: for every record,
exactly the non-admin users for whom visible_customers / visible_sales include it."""

import pytest
from django.contrib.auth import get_user_model

from crm.permissions import visible_customers, visible_sales
from crm.permissions.viewers import customer_viewer_ids, sale_viewer_ids
from crm.roles import is_admin
from tests.factories import CustomerFactory, SaleFactory

pytestmark = pytest.mark.django_db


def _fresh(user):
    return get_user_model().objects.get(pk=user.pk)  # no per-request caches


def test_viewers_agree_with_the_rule(rep, teammate, other_rep, manager, other_manager, teams):
    customers = [
        CustomerFactory(owner=rep),
        CustomerFactory(owner=other_rep, shared_with=[teammate]),
        CustomerFactory(owner=None, shared_with=[rep, other_rep]),
        CustomerFactory(owner=manager),
    ]
    sales = [
        SaleFactory(customer=customers[0], assigned_to=other_rep),
        SaleFactory(customer=customers[1], assigned_to=None),
        SaleFactory(customer=customers[3], assigned_to=teammate),
    ]
    people = [rep, teammate, other_rep, manager, other_manager]
    customer_viewers = customer_viewer_ids([c.pk for c in customers])
    sale_viewers = sale_viewer_ids([s.pk for s in sales])
    for person in people:
        assert not is_admin(person)
        sees = set(visible_customers(_fresh(person)).values_list("pk", flat=True))
        for customer in customers:
            assert (customer.pk in sees) == (person.pk in customer_viewers[customer.pk]), (
                person.username,
                customer.pk,
            )
        sees_deals = set(visible_sales(_fresh(person)).values_list("pk", flat=True))
        for sale in sales:
            assert (sale.pk in sees_deals) == (person.pk in sale_viewers[sale.pk]), (
                person.username,
                sale.pk,
            )


def test_task_viewers_agree_with_the_rule(rep, teammate, other_rep, manager, other_manager,
                                          teams):  # fmt: skip
    from crm.permissions import visible_tasks
    from crm.permissions.viewers import task_viewer_ids
    from tests.factories import TaskFactory

    deal = SaleFactory(customer=CustomerFactory(owner=other_rep), assigned_to=rep)
    unassigned = SaleFactory(customer=CustomerFactory(owner=teammate), assigned_to=None)
    tasks = [
        TaskFactory(assigned_to=other_rep, created_by=teammate, sale=deal),
        TaskFactory(assigned_to=other_rep, created_by=other_rep, sale=unassigned),
        TaskFactory(assigned_to=manager, created_by=manager),
    ]
    viewers = task_viewer_ids([t.pk for t in tasks])
    for person in [rep, teammate, other_rep, manager, other_manager]:
        sees = set(visible_tasks(_fresh(person)).values_list("pk", flat=True))
        for task in tasks:
            assert (task.pk in sees) == (person.pk in viewers[task.pk]), (person.username, task)
