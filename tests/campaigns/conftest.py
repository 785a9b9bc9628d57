import pytest

from campaigns import sending
from campaigns.models import EmailCampaign, EmailMessage
from tests.factories import (
    CustomerFactory,
    CustomerSegmentFactory,
    EmailCampaignFactory,
    EmailTemplateFactory,
)


@pytest.fixture
def audience(rep, teammate, other_rep, teams):
    """Five customers of the manager's team (two of them in EMEA), one of another team."""
    mine = [
        CustomerFactory(owner=rep, name="Ann Archer", email="ann@a.example", region="emea"),
        CustomerFactory(
            owner=rep, name="Bob <b>Baker</b>", email="bob@b.example", company="B & Co"
        ),
        CustomerFactory(owner=teammate, name="Cy Cole", email="cy@c.example"),
        CustomerFactory(owner=teammate, name="Di Dunn", email="di@d.example"),
        CustomerFactory(owner=rep, name="Ed East", email="ed@e.example"),
    ]
    theirs = CustomerFactory(owner=other_rep, name="Zed Zane", email="zed@z.example")
    return {"mine": mine, "theirs": theirs}


@pytest.fixture
def campaign(manager, audience):
    """A draft campaign to everyone the manager may see."""
    return EmailCampaignFactory(
        created_by=manager,
        template=EmailTemplateFactory(created_by=manager),
        segment=CustomerSegmentFactory(created_by=manager, criteria={}),
        status=EmailCampaign.Status.DRAFT,
    )


@pytest.fixture
def sent(campaign, audience, settings):
    """The campaign sent (to the local outbox) to the manager's five customers."""
    settings.SENDGRID_API_KEY = ""
    campaign.status = EmailCampaign.Status.SENDING
    campaign.save()
    run = sending.run_start(campaign_id=campaign.pk, run_key="once")
    assert sending.run_send(run_id=run.pk) == "sent"
    messages = {m.email.split("@")[0]: m for m in EmailMessage.objects.select_related("customer")}
    assert set(messages) == {"ann", "bob", "cy", "di", "ed"}
    assert all(m.status == "sent" for m in messages.values())
    return messages
