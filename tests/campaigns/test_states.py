"""The campaign state machine: the buttons the campaign page shows are exactly the actions
the services accept, for every status."""

import re
from datetime import timedelta

import pytest
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from campaigns import services
from campaigns.models import CampaignRun, EmailCampaign
from campaigns.states import (
    Action,
    Move,
    Status,
    action_check,
    actions_allowed,
    campaign_actions,
    move_to,
)
from crm.errors import ValidationFailed

pytestmark = pytest.mark.django_db


class _Undo(Exception):
    pass


SERVICES = {
    Action.EDIT: lambda actor, c: services.campaign_save(actor=actor, data={}, campaign=c),
    Action.SCHEDULE: lambda actor, c: services.campaign_schedule(
        actor=actor, campaign=c, send_at=timezone.now() + timedelta(days=1)
    ),
    Action.SEND_NOW: lambda actor, c: services.campaign_send_now(actor=actor, campaign=c),
    Action.PAUSE: lambda actor, c: services.campaign_pause(actor=actor, campaign=c),
    Action.RESUME: lambda actor, c: services.campaign_resume(actor=actor, campaign=c),
    Action.CANCEL: lambda actor, c: services.campaign_cancel(actor=actor, campaign=c),
    Action.DELETE: lambda actor, c: services.campaign_delete(actor=actor, campaign=c),
}


def _accepted_by_services(campaign_id: int, actor) -> set[str]:
    """Each action tried on the campaign as it is, and undone."""
    accepted = set()
    for action, service in SERVICES.items():
        try:
            with transaction.atomic():
                service(actor, EmailCampaign.objects.get(pk=campaign_id))
                raise _Undo
        except _Undo:
            accepted.add(str(action))
        except ValidationFailed:
            pass
    return accepted


def _buttons(client, campaign_id: int) -> set[str]:
    body = client.get(reverse("campaigns:campaign_detail", args=[campaign_id])).content.decode()
    return set(re.findall(r'data-action="(\w+)"', body))


# (status, the status of its one run or None, the actions expected)
CASES = [
    (Status.DRAFT, None, {"edit", "schedule", "send", "cancel", "delete"}),
    (Status.SCHEDULED, None, {"edit", "schedule", "pause", "cancel", "delete"}),
    (Status.SENDING, CampaignRun.Status.SENDING, {"pause", "cancel"}),
    # Paused mid-send: no edit while half the run is out.
    (Status.PAUSED, CampaignRun.Status.PAUSED, {"resume", "cancel", "delete"}),
    # Paused while waiting for its schedule: nothing is under way, so it can be edited.
    (Status.PAUSED, None, {"edit", "resume", "cancel", "delete"}),
    (Status.SENT, CampaignRun.Status.SENT, {"delete"}),
    (Status.CANCELLED, CampaignRun.Status.CANCELLED, {"delete"}),
]


@pytest.mark.parametrize("status,run_status,expected", CASES)
def test_the_page_shows_exactly_the_actions_the_services_accept(
    manager_client, manager, campaign, status, run_status, expected
):
    EmailCampaign.objects.filter(pk=campaign.pk).update(status=status)
    if run_status:
        CampaignRun.objects.create(campaign=campaign, run_key="once", status=run_status)
    accepted = _accepted_by_services(campaign.pk, manager)
    assert accepted == expected
    assert _buttons(manager_client, campaign.pk) == accepted
    assert campaign_actions(EmailCampaign.objects.get(pk=campaign.pk)) == accepted


def test_every_status_is_covered():
    assert {status for status, _, _ in CASES} == set(Status.values)


def test_a_rep_reading_a_campaign_sees_no_buttons(rep_client, campaign, audience):
    run = CampaignRun.objects.create(campaign=campaign, run_key="once", status="sent")
    ann = audience["mine"][0]
    campaign.messages.create(run=run, customer=ann, email=ann.email, status="sent")
    assert _buttons(rep_client, campaign.pk) == set()


def test_a_refusal_names_the_reason(campaign):
    campaign.status = Status.SENT
    with pytest.raises(ValidationFailed, match="A sent campaign cannot be sent"):
        action_check(campaign, Action.SEND_NOW)


def test_a_move_outside_the_table_is_a_bug(campaign):
    campaign.status = Status.SENT
    with pytest.raises(AssertionError):
        move_to(campaign, Move.PAUSE, Status.PAUSED)
    campaign.status = Status.DRAFT
    move_to(campaign, Move.SEND_NOW, Status.SENDING)
    assert campaign.status == Status.SENDING


def test_a_send_under_way_forbids_only_editing():
    for status in Status.values:
        idle = actions_allowed(status, send_under_way=False)
        busy = actions_allowed(status, send_under_way=True)
        assert idle - busy <= {Action.EDIT}
