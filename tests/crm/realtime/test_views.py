"""The bell, the notifications page, opening one, mark all read, the preferences; the live
board's columns. Each user sees their own notifications only."""

import pytest
from django.urls import reverse

from crm.models import Notification, NotificationPreference
from sales.models import Sale
from tests.factories import CustomerFactory, SaleFactory

Kind = Notification.Kind


def _note(user, text="Something happened", kind=Kind.TASK_ASSIGNED, link="/sales/tasks/", **kw):
    return Notification.objects.create(recipient=user, kind=kind, text=text, link=link, **kw)


def test_bell_counts_and_lists_my_unread_only(rep_client, rep, other_rep):
    _note(rep, "Mine one")
    _note(rep, "Mine two")
    _note(other_rep, "Not mine")
    answer = rep_client.get(reverse("notifications:bell"))
    body = answer.content.decode()
    assert answer.status_code == 200
    assert "data-bell-count>2<" in body
    assert "Mine two" in body and "Not mine" not in body


def test_mark_all_read_from_the_bell(rep_client, rep, other_rep):
    _note(rep)
    theirs = _note(other_rep)
    answer = rep_client.post(reverse("notifications:mark_all_read"), HTTP_HX_REQUEST="true")
    assert answer.status_code == 200
    assert not Notification.objects.filter(recipient=rep, read_at__isnull=True).exists()
    theirs.refresh_from_db()
    assert theirs.read_at is None


def test_opening_marks_read_and_follows_the_link(rep_client, rep):
    note = _note(rep, link="/sales/tasks/")
    answer = rep_client.get(reverse("notifications:open", args=[note.pk]))
    assert answer.status_code == 302 and answer["Location"] == "/sales/tasks/"
    note.refresh_from_db()
    assert note.read_at is not None


def test_another_reps_notification_is_refused(other_rep_client, rep):
    note = _note(rep)
    assert other_rep_client.get(reverse("notifications:open", args=[note.pk])).status_code == 404
    note.refresh_from_db()
    assert note.read_at is None
    page = other_rep_client.get(reverse("notifications:list"))
    assert note.text not in page.content.decode()


def test_a_link_elsewhere_is_not_followed(rep_client, rep):
    note = _note(rep, link="https://evil.example/")
    answer = rep_client.get(reverse("notifications:open", args=[note.pk]))
    assert answer["Location"] == reverse("notifications:list")


def test_page_filters_by_kind_and_state(rep_client, rep, django_assert_max_num_queries):
    _note(rep, "A task for you")
    _note(rep, "Price list for you", kind=Kind.DOCUMENT_SHARED)
    read = _note(rep, "An old task")
    Notification.objects.filter(pk=read.pk).update(read_at=read.created_at)
    for _ in range(40):
        _note(rep, "Filler", kind=Kind.DEAL_CHANGED)
    with django_assert_max_num_queries(8):
        page = rep_client.get(reverse("notifications:list"), {"kind": "task_assigned"})
    body = page.content.decode()
    assert "A task for you" in body and "An old task" in body and "Price list" not in body
    body = rep_client.get(
        reverse("notifications:list"), {"kind": "task_assigned", "state": "unread"}
    ).content.decode()
    assert "A task for you" in body and "An old task" not in body
    assert rep_client.get(reverse("notifications:list"), {"page": "2"}).status_code == 200
    assert rep_client.get(reverse("notifications:list"), {"kind": "nonsense"}).status_code == 200


def test_empty_page_says_what_comes_here(rep_client):
    body = rep_client.get(reverse("notifications:list")).content.decode()
    assert "No notifications" in body


def test_preferences_are_saved_per_kind(rep_client, rep):
    data = {kind: "in_app" for kind in Kind.values}
    data[Kind.DEAL_CHANGED] = "off"
    data[Kind.TASK_ASSIGNED] = "digest"
    answer = rep_client.post(reverse("notifications:preferences"), data)
    assert answer.status_code == 302
    saved = dict(NotificationPreference.objects.filter(user=rep).values_list("kind", "delivery"))
    assert saved[Kind.DEAL_CHANGED] == "off" and saved[Kind.TASK_ASSIGNED] == "digest"
    page = rep_client.get(reverse("notifications:preferences"))
    assert page.status_code == 200


def test_bad_preferences_answer_the_form_with_errors(rep_client, rep):
    answer = rep_client.post(reverse("notifications:preferences"), {"task_assigned": "loud"})
    assert answer.status_code == 422
    assert not NotificationPreference.objects.filter(user=rep).exists()


@pytest.fixture
def boards(rep, other_rep, teams):
    mine = SaleFactory(customer=CustomerFactory(owner=rep), assigned_to=rep, title="North deal")
    theirs = SaleFactory(
        customer=CustomerFactory(owner=other_rep), assigned_to=other_rep, title="South deal"
    )
    return mine, theirs


def test_live_board_columns_hold_only_what_the_user_sees(rep_client, boards):
    answer = rep_client.get(reverse("sales:pipeline_live"), {"statuses": "NEW,WON,bogus"})
    body = answer.content.decode()
    assert answer.status_code == 200
    assert 'id="column-NEW"' in body and 'hx-swap-oob="true"' in body
    assert "North deal" in body and "South deal" not in body
    assert 'id="column-WON"' not in body  # closed stages are not board columns


def test_live_board_without_columns_answers_nothing(rep_client, boards):
    answer = rep_client.get(reverse("sales:pipeline_live"))
    assert answer.status_code == 200 and answer.content.strip() == b""


def test_board_page_names_the_last_event_it_shows(rep_client, boards):
    body = rep_client.get(reverse("sales:pipeline")).content.decode()
    assert "data-realtime-since=" in body and "data-live-url=" in body
    assert Sale.objects.count() == 2


def test_a_page_over_wsgi_opens_no_socket_and_loads_its_bell_once(rep_client):
    body = rep_client.get(reverse("sales:pipeline")).content.decode()
    assert "data-realtime-url" not in body and "js/realtime.js" not in body
    assert 'hx-trigger="load"' in body


def test_with_a_websocket_service_every_page_opens_its_socket_there(rep_client, settings):
    settings.REALTIME_URL = "wss://live.example.com/ws/"
    body = rep_client.get(reverse("sales:pipeline")).content.decode()
    assert 'data-realtime-url="wss://live.example.com/ws/"' in body and "js/realtime.js" in body
