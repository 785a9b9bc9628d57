"""The duplicates pages: who may open them, the queue, merging, dismissing, undoing."""

import pytest
from django.urls import reverse

from customers.duplicates import services
from customers.duplicates.models import DuplicateJob, DuplicatePair
from customers.models import Customer, CustomerMerge
from tests.customers.duplicates_helpers import pair_of
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def team_pair(rep, teammate, teams):
    a = CustomerFactory(owner=rep, name="Ada Lovelace", phone="020 7946 0000")
    b = CustomerFactory(owner=teammate, name="Ada Lovelace", phone="")
    return pair_of(a, b, confidence=88)


@pytest.fixture
def other_team_pair(other_rep, teams):
    return pair_of(CustomerFactory(owner=other_rep), CustomerFactory(owner=other_rep))


@pytest.fixture
def merged(rep, team_pair, manager):
    return services.customers_merge(
        actor=manager,
        survivor_id=team_pair.customer_a_id,
        other_id=team_pair.customer_b_id,
        pair=team_pair,
    )


def _urls(pair, merge, job):
    return {
        "get": [
            reverse("customers:duplicates"),
            reverse("customers:duplicates_pair", args=[pair.pk]),
            reverse("customers:duplicates_merges"),
            reverse("customers:duplicates_undo", args=[merge.pk]),
            reverse("customers:duplicates_job", args=[job.pk]),
            reverse("customers:duplicates_bulk"),
        ],
        "post": [
            reverse("customers:duplicates_scan"),
            reverse("customers:duplicates_pair", args=[pair.pk]),
            reverse("customers:duplicates_dismiss", args=[pair.pk]),
            reverse("customers:duplicates_undo", args=[merge.pk]),
            reverse("customers:duplicates_bulk"),
        ],
    }


def test_every_duplicates_url_refuses_a_rep(client, rep, other_rep, teams, merged):
    pair = pair_of(CustomerFactory(owner=other_rep), CustomerFactory(owner=other_rep))
    job = DuplicateJob.objects.create(kind=DuplicateJob.Kind.SCAN, status="done")
    urls = _urls(pair, merged, job)
    for user in (rep, other_rep):
        client.force_login(user)
        for url in urls["get"]:
            assert client.get(url).status_code == 403, url
        for url in urls["post"]:
            assert client.post(url, {"min_confidence": 90}).status_code == 403, url
    assert DuplicatePair.objects.filter(pk=pair.pk, status="open").exists()
    assert CustomerMerge.objects.get(pk=merged.pk).undone_at is None


def test_another_teams_manager_gets_404_for_the_pair_and_the_merge(
    client, other_manager, team_pair, teams
):
    client.force_login(other_manager)
    assert client.get(reverse("customers:duplicates_pair", args=[team_pair.pk])).status_code == 404
    response = client.post(reverse("customers:duplicates_pair", args=[team_pair.pk]))
    assert response.status_code == 404
    response = client.post(reverse("customers:duplicates_dismiss", args=[team_pair.pk]))
    assert response.status_code == 404
    page = client.get(reverse("customers:duplicates"))
    assert page.status_code == 200 and not page.context["page"].object_list


def test_another_teams_manager_cannot_undo(client, other_manager, merged):
    client.force_login(other_manager)
    assert client.get(reverse("customers:duplicates_undo", args=[merged.pk])).status_code == 404
    assert client.post(reverse("customers:duplicates_undo", args=[merged.pk])).status_code == 404
    assert CustomerMerge.objects.get(pk=merged.pk).undone_at is None


def test_bulk_merge_is_for_admins_only(client, manager, team_pair):
    client.force_login(manager)
    assert client.get(reverse("customers:duplicates_bulk")).status_code == 403
    assert (
        client.post(reverse("customers:duplicates_bulk"), {"min_confidence": 50}).status_code == 403
    )


def test_the_queue_shows_the_teams_pairs_by_confidence(
    client, manager, team_pair, other_team_pair, rep, django_assert_max_num_queries
):
    low = pair_of(CustomerFactory(owner=rep), CustomerFactory(owner=rep), confidence=55)
    for _ in range(5):
        pair_of(CustomerFactory(owner=rep), CustomerFactory(owner=rep), confidence=60)
    client.force_login(manager)
    client.get(reverse("customers:duplicates"))  # warm the session and role caches
    with django_assert_max_num_queries(12):
        response = client.get(reverse("customers:duplicates"))
    pairs = list(response.context["page"].object_list)
    assert pairs[0] == team_pair and pairs[-1] == low
    assert other_team_pair not in pairs
    assert "same phone, names 90% alike" in response.content.decode()


def test_the_queue_filters_and_never_500s_on_bad_input(client, manager, team_pair):
    client.force_login(manager)
    response = client.get(reverse("customers:duplicates"), {"min_confidence": 95})
    assert not response.context["page"].object_list
    for query in ({"min_confidence": "abc"}, {"status": "nope"}, {"page": "-1"}):
        assert client.get(reverse("customers:duplicates"), query).status_code == 200


def test_merge_through_the_page_with_field_choices(client, manager, team_pair):
    a, b = team_pair.customer_a, team_pair.customer_b
    b.company = "Analytical Engines Ltd"
    b.save()
    client.force_login(manager)
    page = client.get(reverse("customers:duplicates_pair", args=[team_pair.pk]))
    assert page.status_code == 200
    assert "Analytical Engines Ltd" in page.content.decode()
    response = client.post(
        reverse("customers:duplicates_pair", args=[team_pair.pk]),
        {
            "survivor": b.pk,
            "keep_email": str(a.pk),
            "keep_phone": str(a.pk),
            "keep_company": str(b.pk),
            "keep_owner": str(b.pk),
        },
    )
    assert response.status_code == 302
    assert response.url == reverse("customers:detail", args=[b.pk])
    assert not Customer.objects.filter(pk=a.pk).exists()
    b.refresh_from_db()
    assert b.email == a.email and b.phone == "020 7946 0000"
    assert b.company == "Analytical Engines Ltd"


def test_a_bad_merge_form_is_a_422_not_a_500(client, manager, team_pair):
    client.force_login(manager)
    response = client.post(
        reverse("customers:duplicates_pair", args=[team_pair.pk]), {"survivor": "999999"}
    )
    assert response.status_code == 422
    assert (
        Customer.objects.filter(pk__in=[team_pair.customer_a_id, team_pair.customer_b_id]).count()
        == 2
    )


def test_a_manager_who_sees_but_cannot_change_both_is_told(client, manager, rep, other_rep, teams):
    shared = CustomerFactory(owner=other_rep, shared_with=[rep])
    pair = pair_of(CustomerFactory(owner=rep), shared)
    client.force_login(manager)
    page = client.get(reverse("customers:duplicates_pair", args=[pair.pk]))
    assert "data-merge-refused" in page.content.decode()
    response = client.post(
        reverse("customers:duplicates_pair", args=[pair.pk]), {"survivor": pair.customer_a_id}
    )
    assert response.status_code == 422
    assert Customer.objects.filter(pk=shared.pk).exists()


def test_dismiss_and_reopen(client, manager, team_pair):
    client.force_login(manager)
    client.post(reverse("customers:duplicates_dismiss", args=[team_pair.pk]))
    team_pair.refresh_from_db()
    assert team_pair.status == "dismissed"
    response = client.get(reverse("customers:duplicates"), {"status": "dismissed"})
    assert team_pair in response.context["page"].object_list
    client.post(reverse("customers:duplicates_dismiss", args=[team_pair.pk]), {"action": "reopen"})
    team_pair.refresh_from_db()
    assert team_pair.status == "open"


def test_undo_through_the_page_after_a_confirmation(client, manager, merged):
    client.force_login(manager)
    assert merged.merged_name in client.get(reverse("customers:duplicates_merges")).content.decode()
    confirm = client.get(reverse("customers:duplicates_undo", args=[merged.pk]))
    assert "Yes, undo the merge" in confirm.content.decode()
    assert Customer.objects.filter(pk=merged.merged_customer_id).count() == 0
    response = client.post(reverse("customers:duplicates_undo", args=[merged.pk]))
    assert response.status_code == 302
    assert Customer.objects.filter(pk=merged.merged_customer_id).exists()
    again = client.post(reverse("customers:duplicates_undo", args=[merged.pk]))
    assert again.status_code == 422 and "undone already" in again.content.decode()


def test_scan_now_queues_one_scan_and_shows_progress(
    client, manager, teams, django_capture_on_commit_callbacks
):
    client.force_login(manager)
    with django_capture_on_commit_callbacks(execute=False):
        client.post(reverse("customers:duplicates_scan"))
        client.post(reverse("customers:duplicates_scan"))
    job = DuplicateJob.objects.get()
    assert job.status == "queued"
    page = client.get(reverse("customers:duplicates"))
    assert 'data-job-status="queued"' in page.content.decode()
    progress = client.get(reverse("customers:duplicates_job", args=[job.pk]))
    assert "<progress" in progress.content.decode()


def test_admin_starts_a_bulk_merge(client, admin_user, teams, django_capture_on_commit_callbacks):
    client.force_login(admin_user)
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(reverse("customers:duplicates_bulk"), {"min_confidence": 95})
    assert response.status_code == 302
    job = DuplicateJob.objects.get(kind="bulk_merge")
    assert job.min_confidence == 95 and job.started_by == admin_user
    assert (
        client.post(reverse("customers:duplicates_bulk"), {"min_confidence": 0}).status_code == 200
    )


def test_the_customer_page_links_its_possible_duplicates_for_managers(
    client, manager, rep, team_pair
):
    url = reverse("customers:detail", args=[team_pair.customer_a_id])
    client.force_login(manager)
    page = client.get(url).content.decode()
    assert "data-customer-duplicates" in page
    assert reverse("customers:duplicates_pair", args=[team_pair.pk]) in page
    client.force_login(rep)
    assert "data-customer-duplicates" not in client.get(url).content.decode()


def test_the_merges_page_pins_its_queries(
    client, manager, rep, teams, django_assert_max_num_queries
):
    for _ in range(6):
        a, b = CustomerFactory(owner=rep), CustomerFactory(owner=rep)
        services.customers_merge(actor=manager, survivor_id=a.pk, other_id=b.pk)
    client.force_login(manager)
    client.get(reverse("customers:duplicates_merges"))
    with django_assert_max_num_queries(10):
        response = client.get(reverse("customers:duplicates_merges"))
    assert len(response.context["rows"]) == 6
