"""The websocket (crm/consumers.py) end to end: who may connect, what each socket receives (the
visibility rule per connection), reconnecting with a last id."""

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone

from crm import consumers
from crm.models import Notification, RealtimeEvent
from crm.roles import REP_GROUP
from sales.models import Sale
from sales.services import sale_change_stage, sale_create, sale_delete, sale_update, task_create
from tests.crm.realtime.helpers import QUIET, call, next_event, open_socket, run, signed_in
from tests.factories import CustomerFactory, SaleFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def deal(rep, teams):
    return SaleFactory(customer=CustomerFactory(owner=rep), assigned_to=rep, title="North deal")


@pytest.fixture
def other_deal(other_rep, teams):
    return SaleFactory(
        customer=CustomerFactory(owner=other_rep), assigned_to=other_rep, title="South deal"
    )


def test_anonymous_socket_is_refused(teams):
    async def body():
        communicator, connected, code = await open_socket(None)
        assert not connected
        assert code == 4401

    run(body)


def test_socket_from_a_foreign_origin_is_refused(rep, teams):
    async def body():
        communicator, connected, _ = await open_socket(rep, origin=b"https://evil.example")
        assert not connected
        communicator, connected, _ = await open_socket(rep, origin=None)
        assert not connected

    run(body)


def test_fresh_socket_says_hello_with_the_last_event_id(rep, teams):
    event = RealtimeEvent.objects.create(topic="deal", payload={}, user_ids=[])

    async def body():
        communicator, connected, hello = await open_socket(rep)
        assert connected
        assert hello == {"type": "hello", "last_id": event.pk}
        await communicator.disconnect()

    run(body)


def test_move_reaches_those_who_see_the_deal_only(rep, teammate, manager, other_rep,
                                                  other_manager, admin_user, deal):  # fmt: skip
    """The rep's manager and an admin receive the rep's move; the other team's rep and
    manager, and the rep's teammate (who sees neither the deal nor its customer), do not."""

    async def body():
        sockets = {}
        for name, user in [("rep", rep), ("manager", manager), ("admin", admin_user),
                           ("teammate", teammate), ("other_rep", other_rep),
                           ("other_manager", other_manager)]:  # fmt: skip
            communicator, connected, _ = await open_socket(user)
            assert connected, name
            sockets[name] = communicator
        await call(sale_change_stage)(actor=rep, sale=deal, to_status=Sale.Status.CONTACTED)
        for name in ("rep", "manager", "admin"):
            event = await next_event(sockets[name], "deal")
            assert event["deal"] == deal.pk
            assert (event["action"], event["from"], event["to"]) == ("moved", "NEW", "CONTACTED")
            assert event["by"] == rep.pk
        for name in ("teammate", "other_rep", "other_manager"):
            assert await sockets[name].receive_nothing(timeout=QUIET), name
        for communicator in sockets.values():
            await communicator.disconnect()

    run(body)


def test_rep_socket_gets_nothing_about_another_teams_deal(rep, manager, other_manager, other_rep,
                                                          other_deal):  # fmt: skip
    async def body():
        rep_socket, _, _ = await open_socket(rep)
        manager_socket, _, _ = await open_socket(other_manager)
        await call(sale_change_stage)(
            actor=other_rep, sale=other_deal, to_status=Sale.Status.PROPOSAL
        )
        event = await next_event(manager_socket, "deal")
        assert event["deal"] == other_deal.pk
        assert await rep_socket.receive_nothing(timeout=QUIET)
        await rep_socket.disconnect()
        await manager_socket.disconnect()

    run(body)


def test_deal_created_edited_and_deleted_reach_the_board(rep, manager, deal):
    customer = deal.customer

    async def body():
        socket, _, _ = await open_socket(manager)
        created = await call(sale_create)(
            actor=rep, data={"title": "New one", "customer": customer, "amount": 10}
        )
        event = await next_event(socket, "deal")
        assert (event["deal"], event["action"], event["to"]) == (created.pk, "created", "NEW")
        await call(sale_update)(actor=rep, sale=created, data={"title": "Renamed"})
        event = await next_event(socket, "deal")
        assert (event["action"], event["title"]) == ("updated", "Renamed")
        await call(sale_delete)(actor=rep, sale=created)
        event = await next_event(socket, "deal")
        assert (event["deal"], event["action"], event["from"]) == (created.pk, "deleted", "NEW")
        await socket.disconnect()

    run(body)


def test_reassigned_deal_reaches_who_loses_it_too(rep, teammate, manager, deal):
    """Reassigning the rep's deal on the rep's customer to the teammate: both see it after,
    and the teammate, who did not see it before, now does."""

    async def body():
        teammate_socket, _, _ = await open_socket(teammate)
        await call(sale_update)(actor=manager, sale=deal, data={"assigned_to": teammate})
        event = await next_event(teammate_socket, "deal")
        assert (event["deal"], event["action"]) == (deal.pk, "updated")
        await teammate_socket.disconnect()

    run(body)


def test_notification_reaches_its_recipient_only(rep, teammate, manager, teams):
    async def body():
        rep_socket, _, _ = await open_socket(rep)
        teammate_socket, _, _ = await open_socket(teammate)
        manager_socket, _, _ = await open_socket(manager)
        await call(task_create)(actor=manager, data={"title": "Call ACME", "assigned_to": rep,
                                                     "due_at": timezone.now()})  # fmt: skip
        event = await next_event(rep_socket, "notification")
        assert event["kind"] == Notification.Kind.TASK_ASSIGNED
        assert "Call ACME" in event["text"]
        assert await teammate_socket.receive_nothing(timeout=QUIET)
        assert await manager_socket.receive_nothing(timeout=QUIET)
        for socket in (rep_socket, teammate_socket, manager_socket):
            await socket.disconnect()

    run(body)


def test_reconnect_with_last_id_gets_missed_events_once_in_order(rep, manager, deal, other_deal,
                                                                 other_rep):  # fmt: skip
    async def body():
        socket, _, hello = await open_socket(manager)
        last_id = hello["last_id"]
        await socket.disconnect()
        # Missed while away: three moves of the manager's team, one of another team.
        await call(sale_change_stage)(actor=rep, sale=deal, to_status=Sale.Status.CONTACTED)
        await call(sale_change_stage)(
            actor=other_rep, sale=other_deal, to_status=Sale.Status.CONTACTED
        )
        await call(sale_change_stage)(actor=rep, sale=deal, to_status=Sale.Status.PROPOSAL)
        await call(sale_change_stage)(actor=rep, sale=deal, to_status=Sale.Status.NEGOTIATION)
        socket, connected, hello = await open_socket(manager, last_id=last_id)
        assert connected and hello == {"type": "hello", "last_id": last_id}
        replayed = [await next_event(socket, "deal") for _ in range(3)]
        assert [event["to"] for event in replayed] == ["CONTACTED", "PROPOSAL", "NEGOTIATION"]
        assert [event["id"] for event in replayed] == sorted(event["id"] for event in replayed)
        assert {event["deal"] for event in replayed} == {deal.pk}
        assert await socket.receive_nothing(timeout=QUIET)  # once: nothing twice, nothing else
        # And live again after the replay.
        await call(sale_change_stage)(actor=rep, sale=deal, to_status=Sale.Status.PROPOSAL)
        live = await next_event(socket, "deal")
        assert live["id"] > replayed[-1]["id"]
        await socket.disconnect()

    run(body)


def test_reconnect_after_too_much_is_told_to_reload(rep, teams, settings):
    settings.REALTIME_REPLAY_LIMIT = 3
    RealtimeEvent.objects.bulk_create(
        RealtimeEvent(topic="deal", payload={}, user_ids=[rep.pk]) for _ in range(5)
    )

    async def body():
        socket, connected, message = await open_socket(rep, last_id=0)
        assert connected and message == {"type": "reset"}
        await socket.disconnect()

    run(body)


def test_embedded_mode_polls_the_table_for_other_processes_events(rep, teams, settings):
    """Without Redis the worker's events reach a web process's sockets through the table: an
    event written without a push (as the worker process would) still arrives."""
    settings.REALTIME_POLL_SECONDS = 0.2

    async def body():
        socket, _, _ = await open_socket(rep)
        event = await call(RealtimeEvent.objects.create)(
            topic="notification", payload={"text": "from the worker"}, user_ids=[rep.pk]
        )
        message = await next_event(socket, "notification")
        assert (message["id"], message["text"]) == (event.pk, "from the worker")
        await socket.disconnect()

    run(body)


def test_campaign_progress_reaches_its_managers_only(manager, other_manager, rep, teams):
    from campaigns.models import EmailCampaign
    from campaigns.sending.notices import campaign_progress_push
    from tests.factories import EmailCampaignFactory

    campaign = EmailCampaignFactory(created_by=manager, status=EmailCampaign.Status.SENDING)

    async def body():
        mine, _, _ = await open_socket(manager)
        theirs, _, _ = await open_socket(other_manager)
        rep_socket, _, _ = await open_socket(rep)
        await call(campaign_progress_push)(campaign_id=campaign.pk)
        message = await mine.receive_json_from(timeout=5)
        assert message == {"type": "progress", "object": "campaign", "id": campaign.pk,
                           "status": "sending"}  # fmt: skip
        assert await theirs.receive_nothing(timeout=QUIET)
        assert await rep_socket.receive_nothing(timeout=QUIET)
        for socket in (mine, theirs, rep_socket):
            await socket.disconnect()

    run(body)


def test_import_progress_reaches_its_uploader_only(rep, teammate, teams):
    from customers.csv_import import _import_progress_push
    from customers.models import CustomerImport

    customer_import = CustomerImport.objects.create(
        uploaded_by=rep, filename="leads.csv", status=CustomerImport.Status.QUEUED
    )

    async def body():
        mine, _, _ = await open_socket(rep)
        theirs, _, _ = await open_socket(teammate)
        await call(_import_progress_push)(customer_import, after_commit=False)
        message = await mine.receive_json_from(timeout=5)
        assert (message["object"], message["id"], message["status"]) == (
            "import", customer_import.pk, "queued",
        )  # fmt: skip
        assert await theirs.receive_nothing(timeout=QUIET)
        await mine.disconnect()
        await theirs.disconnect()

    run(body)


def test_a_socket_closes_once_its_session_no_longer_signs_its_user_in(rep, manager, teams,
                                                                     monkeypatch):  # fmt: skip
    monkeypatch.setattr(consumers, "RECHECK_SECONDS", 0)  # every event checks
    client = signed_in(rep)

    async def body():
        socket, _, _ = await open_socket(client=client)
        await call(client.logout)()  # in another tab
        await call(task_create)(actor=manager, data={"title": "Call ACME", "assigned_to": rep,
                                                     "due_at": timezone.now()})  # fmt: skip
        closed = await socket.receive_output(timeout=5)
        assert closed == {"type": "websocket.close", "code": 4401}

    run(body)


def test_a_demoted_admin_stops_receiving_the_admins_events(admin_user, deal, monkeypatch):
    monkeypatch.setattr(consumers, "RECHECK_SECONDS", 0)

    async def body():
        socket, _, _ = await open_socket(admin_user)
        await call(sale_update)(actor=deal.assigned_to, sale=deal, data={"title": "Renamed"})
        assert (await next_event(socket, "deal"))["deal"] == deal.pk
        await call(demote)(admin_user)
        await call(sale_update)(actor=deal.assigned_to, sale=deal, data={"title": "Again"})
        assert await socket.receive_nothing(timeout=QUIET)
        await socket.disconnect()

    run(body)


def demote(user) -> None:
    user.is_superuser = False
    user.save(update_fields=["is_superuser"])
    user.groups.set([Group.objects.get_or_create(name=REP_GROUP)[0]])
