import pytest
from django.contrib.auth.models import Group

from crm.roles import ALL_GROUPS
from leads.models import ScoringRule
from leads.services import scoring_rules_reset_defaults
from sales.models import StageSetting
from sales.services import pipeline_settings_reset_defaults
from tests.factories import AdminFactory, ManagerFactory, RepFactory, TeamFactory


@pytest.fixture(autouse=True)
def _migration_data(request, django_db_blocker):
    """The role groups and default scoring rules come from data migrations, and a
    transactional test ends by flushing the database; make sure they exist before every
    test that uses the database."""
    uses_db = request.node.get_closest_marker("django_db") or {
        "db",
        "transactional_db",
        "live_server",
    } & set(request.fixturenames)
    if uses_db:
        with django_db_blocker.unblock():
            if Group.objects.filter(name__in=ALL_GROUPS).count() != len(ALL_GROUPS):
                for name in ALL_GROUPS:
                    Group.objects.get_or_create(name=name)
            if not ScoringRule.objects.exists():
                scoring_rules_reset_defaults()
            if not StageSetting.objects.exists():
                pipeline_settings_reset_defaults()


@pytest.fixture
def rep(db):
    return RepFactory(username="rep")


@pytest.fixture
def other_rep(db):
    """A rep of another team: must never see `rep`'s records."""
    return RepFactory(username="other_rep")


@pytest.fixture
def teammate(db):
    return RepFactory(username="teammate")


@pytest.fixture
def manager(db):
    return ManagerFactory(username="manager")


@pytest.fixture
def other_manager(db):
    return ManagerFactory(username="other_manager")


@pytest.fixture
def admin_user(db):
    return AdminFactory(username="boss")


@pytest.fixture
def teams(rep, teammate, other_rep, manager, other_manager):
    """`manager` runs the team of `rep` and `teammate`; `other_manager` that of `other_rep`."""
    return {
        "mine": TeamFactory(name="North", managers=[manager], members=[rep, teammate]),
        "other": TeamFactory(name="South", managers=[other_manager], members=[other_rep]),
    }


def _logged_in(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def rep_client(client, rep, teams):
    return _logged_in(client, rep)


@pytest.fixture
def other_rep_client(client, other_rep, teams):
    return _logged_in(client, other_rep)


@pytest.fixture
def manager_client(client, manager, teams):
    return _logged_in(client, manager)


@pytest.fixture
def admin_client_(client, admin_user, teams):
    return _logged_in(client, admin_user)


@pytest.fixture(scope="session")
def _sendgrid_server():
    from tests.fakes.sendgrid_server import FakeSendGrid

    server = FakeSendGrid().start()
    yield server
    server.stop()


@pytest.fixture
def fake_sendgrid(_sendgrid_server, settings):
    """The fake SendGrid, empty, with the real client pointed at it."""
    _sendgrid_server.reset()
    settings.SENDGRID_API_KEY = "SG.test-key"
    settings.SENDGRID_API_HOST = _sendgrid_server.url
    settings.SENDGRID_TIMEOUT_SECONDS = 5
    return _sendgrid_server
