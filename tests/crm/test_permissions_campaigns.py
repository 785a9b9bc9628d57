"""crm.permissions.campaigns: who sees which templates, segments, campaigns, recipients and
outbox messages."""

import pytest
from django.http import Http404

from campaigns.models import CampaignRun, EmailMessage, OutboxMessage
from crm.permissions import campaigns as perms
from tests.factories import (
    CustomerFactory,
    CustomerSegmentFactory,
    EmailCampaignFactory,
    EmailTemplateFactory,
    ManagerFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def authored(manager, other_manager, teams):
    """A template, a segment and a campaign by each manager, and by a co-manager of North."""
    co_manager = ManagerFactory(username="co_manager")
    teams["mine"].managers.add(co_manager)
    made = {}
    for name, author in (("mine", manager), ("co", co_manager), ("other", other_manager)):
        made[name] = {
            "template": EmailTemplateFactory(created_by=author),
            "segment": CustomerSegmentFactory(created_by=author),
            "campaign": EmailCampaignFactory(created_by=author),
        }
    return made


def _names(queryset, authored, kind):
    ids = set(queryset.values_list("pk", flat=True))
    return {name for name, records in authored.items() if records[kind].pk in ids}


@pytest.mark.parametrize("kind", ["template", "segment", "campaign"])
def test_a_manager_sees_what_their_management_circle_made(manager, authored, kind):
    finder = {
        "template": perms.visible_templates,
        "segment": perms.visible_segments,
        "campaign": perms.visible_campaigns,
    }[kind]
    assert _names(finder(manager), authored, kind) == {"mine", "co"}


def test_an_admin_sees_everything_and_a_rep_no_template_or_segment(admin_user, rep, authored):
    assert _names(perms.visible_campaigns(admin_user), authored, "campaign") == {
        "mine",
        "co",
        "other",
    }
    assert not perms.visible_templates(rep).exists()
    assert not perms.visible_segments(rep).exists()


def test_a_rep_reads_only_the_campaigns_that_mailed_their_customers(
    rep, other_rep, teammate, manager, authored
):
    campaign = authored["mine"]["campaign"]
    run = CampaignRun.objects.create(campaign=campaign, run_key="once", status="sent")
    mine = CustomerFactory(owner=rep)
    theirs = CustomerFactory(owner=other_rep)
    for customer in (mine, theirs):
        EmailMessage.objects.create(
            campaign=campaign, run=run, customer=customer, email=customer.email
        )
    assert list(perms.visible_campaigns(rep)) == [campaign]
    assert not perms.editable_campaigns(rep).exists()
    assert not perms.can_change_campaign(rep, campaign)
    assert perms.can_change_campaign(manager, campaign)
    messages = perms.visible_campaign_messages(rep, campaign.messages.all())
    assert [m.customer_id for m in messages] == [mine.pk]
    with pytest.raises(Http404):
        perms.access_campaign_by_id(rep, campaign.pk, for_change=True)
    assert perms.access_campaign_by_id(rep, campaign.pk) == campaign
    with pytest.raises(Http404):  # none of the teammate's customers was mailed
        perms.access_campaign_by_id(teammate, campaign.pk)


def test_access_helpers_answer_404_beyond_reach(manager, authored):
    other = authored["other"]
    for access, record in (
        (perms.access_template_by_id, other["template"]),
        (perms.access_segment_by_id, other["segment"]),
        (perms.access_campaign_by_id, other["campaign"]),
    ):
        with pytest.raises(Http404):
            access(manager, record.pk)
    assert perms.access_template_by_id(manager, authored["co"]["template"].pk)


def test_the_outbox_shows_a_manager_mail_to_their_customers_and_themselves(
    manager, admin_user, rep, other_rep, teams
):
    manager.email = "manager@example.com"
    manager.save()
    mine = CustomerFactory(owner=rep, email="mine@a.example")
    CustomerFactory(owner=other_rep, email="theirs@b.example")
    for to in ("mine@a.example", "theirs@b.example", "manager@example.com"):
        OutboxMessage.objects.create(to_email=to, from_email="crm@example.com", subject=to)
    visible = set(perms.visible_outbox_messages(manager).values_list("to_email", flat=True))
    assert visible == {mine.email, "manager@example.com"}
    assert perms.visible_outbox_messages(admin_user).count() == 3
    hidden = OutboxMessage.objects.get(to_email="theirs@b.example")
    with pytest.raises(Http404):
        perms.access_outbox_message_by_id(manager, hidden.pk)


def test_only_managers_and_admins_run_campaigns(rep, manager, admin_user):
    assert [perms.can_run_campaigns(u) for u in (rep, manager, admin_user)] == [
        False,
        True,
        True,
    ]
