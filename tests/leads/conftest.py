import pytest

from crm.models import TeamMembership
from tests.factories import RepFactory, TeamFactory


@pytest.fixture
def team(db):
    """A team with a junior owner, two senior reps and one more junior rep."""
    owner, senior_a, senior_b, junior = (
        RepFactory(username=name) for name in ("owner", "senior_a", "senior_b", "junior")
    )
    team = TeamFactory(name="Leads team")
    for user, senior in ((owner, False), (senior_a, True), (senior_b, True), (junior, False)):
        TeamMembership.objects.create(team=team, user=user, is_senior=senior)
    return {"owner": owner, "senior_a": senior_a, "senior_b": senior_b, "junior": junior}


@pytest.fixture
def lead_emails(db):
    """The managers' lead email settings: the hot and warm templates chosen; call it with
    send_automatically=True for the emails to go without the rep."""
    from campaigns.models import LeadEmailSettings
    from tests.factories import EmailTemplateFactory

    def choose(*, send_automatically: bool = False) -> LeadEmailSettings:
        settings = LeadEmailSettings.current()
        settings.hot_template = EmailTemplateFactory(
            subject="A personal note for {{ company }}",
            text_body="Hi {{ first_name }}, {{ owner_name }} here: shall we talk this week?",
            html_body="<p>Hi {{ first_name }}, {{ owner_name }} here.</p>",
        )
        settings.warm_template = EmailTemplateFactory(
            subject="How others like {{ company }} did it",
            text_body="Hi {{ first_name }}, here is the case study we spoke about.",
            html_body="<p>Hi {{ first_name }}, here is the case study.</p>",
        )
        settings.send_automatically = send_automatically
        settings.save()
        return settings

    return choose
