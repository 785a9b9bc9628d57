"""Delta sync: `updated_since` returns what changed, and `removed` what was deleted or went
out of reach (tombstones), so a phone holds only what it may."""

from datetime import timedelta

import pytest
from django.utils import timezone

from crm.models import Tombstone
from customers.models import Customer
from customers.services import customer_delete, customer_update
from sales.services import sale_delete, sale_update
from tests.factories import CustomerFactory, SaleFactory, TaskFactory

pytestmark = pytest.mark.django_db


def _sync(api, url, since, **params):
    response = api.get(url, {"updated_since": since.isoformat(), **params})
    assert response.status_code == 200, response.json()
    return response.json()


def test_only_changes_since_come_back(rep_api, rep):
    old = CustomerFactory(owner=rep, name="Old")
    Customer.objects.filter(pk=old.pk).update(updated_at=timezone.now() - timedelta(days=3))
    new = CustomerFactory(owner=rep, name="New")
    body = _sync(rep_api, "/api/v1/customers/", timezone.now() - timedelta(days=1))
    assert [row["id"] for row in body["results"]] == [new.pk]
    assert body["removed"] == []
    assert body["synced_at"]


def test_a_deleted_and_a_reassigned_customer_both_appear_as_removed(rep_api, rep, teammate,
                                                                     manager):  # fmt: skip
    since = timezone.now() - timedelta(seconds=1)
    deleted = CustomerFactory(owner=rep)
    deleted_id = deleted.pk
    reassigned = CustomerFactory(owner=rep)
    kept = CustomerFactory(owner=rep)
    customer_delete(actor=rep, customer=deleted)
    customer_update(actor=manager, customer=reassigned, data={"owner": teammate})
    body = _sync(rep_api, "/api/v1/customers/", since)
    assert sorted(body["removed"]) == sorted([deleted_id, reassigned.pk])
    assert [row["id"] for row in body["results"]] == [kept.pk]
    # The manager still sees the reassigned one (their team's): not removed for them.
    assert not Tombstone.objects.filter(user=manager, object_id=reassigned.pk).exists()
    assert Tombstone.objects.filter(user=manager, object_id=deleted_id).exists()


def test_unsharing_removes_for_the_one_who_lost_it(rep_api, rep, other_rep):
    since = timezone.now() - timedelta(seconds=1)
    customer = CustomerFactory(owner=other_rep, shared_with=[rep])
    deal = SaleFactory(customer=customer, assigned_to=other_rep)
    customer_update(actor=other_rep, customer=customer, data={}, shared_with=[])
    assert _sync(rep_api, "/api/v1/customers/", since)["removed"] == [customer.pk]
    assert _sync(rep_api, "/api/v1/deals/", since)["removed"] == [deal.pk]


def test_deleted_and_reassigned_deals_and_their_tasks(rep_api, rep, other_rep, admin_user):
    since = timezone.now() - timedelta(seconds=1)
    deal = SaleFactory(customer=CustomerFactory(owner=rep), assigned_to=rep)
    task = TaskFactory(assigned_to=rep, sale=deal)
    moved = SaleFactory(customer=CustomerFactory(owner=other_rep), assigned_to=rep)
    sale_delete(actor=rep, sale=deal)
    sale_update(actor=admin_user, sale=moved, data={"assigned_to": other_rep})
    assert sorted(_sync(rep_api, "/api/v1/deals/", since)["removed"]) == sorted([deal.pk, moved.pk])
    assert _sync(rep_api, "/api/v1/tasks/", since)["removed"] == [task.pk]


def test_removed_is_only_on_the_first_page_and_old_removals_are_not_repeated(rep_api, rep):
    gone = CustomerFactory(owner=rep)
    gone_id = gone.pk
    customer_delete(actor=rep, customer=gone)
    for _ in range(3):
        CustomerFactory(owner=rep)
    since = timezone.now() - timedelta(minutes=5)
    first = _sync(rep_api, "/api/v1/customers/", since, page_size=2)
    assert first["removed"] == [gone_id] and first["next"]
    second = rep_api.get(first["next"]).json()
    assert "removed" not in second and len(second["results"]) == 1
    later = _sync(rep_api, "/api/v1/customers/", timezone.now() + timedelta(seconds=1))
    assert later["removed"] == [] and later["results"] == []


def test_a_record_back_in_reach_is_not_removed(rep_api, rep, teammate, manager):
    since = timezone.now() - timedelta(seconds=1)
    customer = CustomerFactory(owner=rep)
    customer_update(actor=manager, customer=customer, data={"owner": teammate})
    customer_update(actor=manager, customer=customer, data={"owner": rep})
    body = _sync(rep_api, "/api/v1/customers/", since)
    assert body["removed"] == [] and [r["id"] for r in body["results"]] == [customer.pk]


def test_sync_queries_are_fixed(rep_api, rep, django_assert_max_num_queries):
    since = timezone.now() - timedelta(seconds=1)
    for _ in range(3):
        customer_delete(actor=rep, customer=CustomerFactory(owner=rep))
        CustomerFactory(owner=rep)
    with django_assert_max_num_queries(11):
        _sync(rep_api, "/api/v1/customers/", since)
    for _ in range(10):
        customer_delete(actor=rep, customer=CustomerFactory(owner=rep))
        CustomerFactory(owner=rep)
    with django_assert_max_num_queries(11):
        body = _sync(rep_api, "/api/v1/customers/", since)
    assert len(body["removed"]) == 13 and len(body["results"]) == 13


@pytest.mark.parametrize(
    "value", ["0114-10-24T22:31:46-16:44", "0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00"]
)
def test_odd_times_are_not_a_server_error(rep_api, value):
    assert rep_api.get("/api/v1/customers/", {"updated_since": value}).status_code in (200, 400)


def test_a_deletion_is_told_only_to_who_saw_it(rep, other_rep, api_as, admin_user):
    since = timezone.now() - timedelta(seconds=1)
    theirs = CustomerFactory(owner=other_rep)
    theirs_id = theirs.pk
    customer_delete(actor=other_rep, customer=theirs)
    assert _sync(api_as(rep), "/api/v1/customers/", since)["removed"] == []
    assert _sync(api_as(other_rep), "/api/v1/customers/", since)["removed"] == [theirs_id]
    assert _sync(api_as(admin_user), "/api/v1/customers/", since)["removed"] == [theirs_id]


def test_a_lead_that_left_the_lead_stage_is_removed_from_the_leads(rep_api, rep):
    since = timezone.now() - timedelta(seconds=1)
    converted = CustomerFactory(owner=rep, lifecycle_stage=Customer.LifecycleStage.LEAD)
    still_lead = CustomerFactory(owner=rep, lifecycle_stage=Customer.LifecycleStage.LEAD)
    customer_update(actor=rep, customer=converted,
                    data={"lifecycle_stage": Customer.LifecycleStage.CUSTOMER})  # fmt: skip
    body = _sync(rep_api, "/api/v1/leads/", since)
    assert body["removed"] == [converted.pk]
    assert [row["id"] for row in body["results"]] == [still_lead.pk]
    # As a customer it is still theirs: not removed from the customers.
    assert _sync(rep_api, "/api/v1/customers/", since)["removed"] == []
