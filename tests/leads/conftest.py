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
