import pytest

from campaigns.models import EmailCampaign
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
