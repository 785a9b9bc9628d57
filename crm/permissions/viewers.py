"""Who sees a record: the visibility rule read the other way round, next to the rule itself.

`visible_customers(user)` answers "which customers does this user see"; the functions here
answer "which users see these customers" (admins aside: they see everything). The JSON API's
delta sync needs it: when a customer is reassigned or unshared, whoever saw it before and no
longer does is told to drop it (crm.models.Tombstone). tests/crm/test_permissions_viewers.py
checks both directions agree.
"""

from collections import defaultdict

from django.apps import apps


def _with_managers(direct: dict[int, set[int]]) -> dict[int, set[int]]:
    """Each record's users plus the managers of their teams (a manager sees their teams')."""
    TeamMembership = apps.get_model("crm", "TeamMembership")
    users = {user_id for ids in direct.values() for user_id in ids}
    managers: dict[int, set[int]] = defaultdict(set)
    for user_id, manager_id in TeamMembership.objects.filter(
        user_id__in=users, team__managers__isnull=False
    ).values_list("user_id", "team__managers"):
        managers[user_id].add(manager_id)
    return {
        pk: (ids | {manager for user_id in ids for manager in managers[user_id]}) - {None}
        for pk, ids in direct.items()
    }


def _customer_shares(customer_ids) -> dict[int, set[int]]:
    Customer = apps.get_model("customers", "Customer")
    shares: dict[int, set[int]] = defaultdict(set)
    for customer_id, user_id in Customer.shared_with.through.objects.filter(
        customer_id__in=customer_ids
    ).values_list("customer_id", "user_id"):
        shares[customer_id].add(user_id)
    return shares


def customer_viewer_ids(customer_ids) -> dict[int, set[int]]:
    """{customer id: ids of the non-admin users who see it}: its owner, the users it is
    shared with, and their managers."""
    Customer = apps.get_model("customers", "Customer")
    rows = list(Customer.objects.filter(pk__in=customer_ids).values_list("pk", "owner_id"))
    shares = _customer_shares([pk for pk, _ in rows])
    direct = {pk: ({owner_id} - {None}) | shares[pk] for pk, owner_id in rows}
    return _with_managers(direct)


def sale_viewer_ids(sale_ids) -> dict[int, set[int]]:
    """{deal id: ids of the non-admin users who see it}: its assignee, its customer's owner,
    the users the customer is shared with, and their managers."""
    Sale = apps.get_model("sales", "Sale")
    rows = list(
        Sale.objects.filter(pk__in=sale_ids).values_list(
            "pk", "assigned_to_id", "customer_id", "customer__owner_id"
        )
    )
    shares = _customer_shares({customer_id for _, _, customer_id, _ in rows})
    direct = {
        pk: ({assignee, owner} - {None}) | shares[customer_id]
        for pk, assignee, customer_id, owner in rows
    }
    return _with_managers(direct)


def task_viewer_ids(task_ids) -> dict[int, set[int]]:
    """{task id: ids of the non-admin users who see it}: its assignee and their managers,
    its creator, and whoever may change its deal (the deal's assignee, or the customer's
    owner when unassigned, with their managers)."""
    Task = apps.get_model("sales", "Task")
    rows = list(
        Task.objects.filter(pk__in=task_ids).values_list(
            "pk", "assigned_to_id", "created_by_id", "sale__assigned_to_id",
            "sale__customer__owner_id", "sale_id",
        )
    )  # fmt: skip
    managed = _with_managers(
        {
            pk: {assignee} | ({deal_assignee} if deal_assignee else {owner} if sale else set())
            for pk, assignee, _creator, deal_assignee, owner, sale in rows
        }
    )
    return {pk: (managed[pk] | {creator}) - {None} for pk, _a, creator, _d, _o, _s in rows}


def customer_task_ids(customer_ids) -> list[int]:
    Task = apps.get_model("sales", "Task")
    return list(Task.objects.filter(customer_id__in=customer_ids).values_list("pk", flat=True))


def customer_sale_ids(customer_ids) -> list[int]:
    """The deals on these customers (whose sight follows the customers')."""
    Sale = apps.get_model("sales", "Sale")
    return list(Sale.objects.filter(customer_id__in=customer_ids).values_list("pk", flat=True))
