import pytest
from django.contrib.auth.models import Group

from crm.roles import ALL_GROUPS
from leads.models import ScoringRule
from leads.services import scoring_rules_reset_defaults
from sales.models import StageSetting
from sales.services import pipeline_settings_reset_defaults
from tests import clock
from tests.celery_processes import CeleryProcesses
from tests.factories import AdminFactory, ManagerFactory, RepFactory, TeamFactory


def pytest_configure(config):
    """CRM_TEST_CLOCK pins the clock (tests/clock.py): every process of the run (each xdist
    worker, which runs this hook too) travels there, with the live server's threads."""
    moment = clock.pinned_moment()
    if moment is not None:
        config._crm_clock = clock.travel(moment)


def pytest_report_header(config):
    moment = clock.pinned_moment()
    return f"clock: {clock.ENV}={moment.isoformat()}" if moment else None


@pytest.fixture(autouse=True)
def _pinned_clock():
    """At a pinned clock every test starts at the moment itself (and the clock ticks on), so
    a test sees the same date however long the run has taken."""
    moment = clock.pinned_moment()
    if moment is None:
        yield
        return
    traveller = clock.travel(moment)
    try:
        yield
    finally:
        traveller.stop()


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


MAILGUN_TEST_KEY = "key-test-mailgun"
MAILGUN_TEST_DOMAIN = "mg.example.com"
MAILGUN_TEST_SIGNING_KEY = "test-webhook-signing-key"


@pytest.fixture(scope="session")
def _mailgun_server():
    from tests.fakes.mailgun_server import FakeMailgun

    server = FakeMailgun(api_key=MAILGUN_TEST_KEY, domain=MAILGUN_TEST_DOMAIN).start()
    yield server
    server.stop()


@pytest.fixture
def fake_mailgun(_mailgun_server, settings):
    """The fake Mailgun, empty, with the official SDK pointed at it: Mailgun is configured
    (and, with no SendGrid key, the default provider)."""
    _mailgun_server.reset()
    settings.MAILGUN_API_KEY = MAILGUN_TEST_KEY
    settings.MAILGUN_DOMAIN = MAILGUN_TEST_DOMAIN
    settings.MAILGUN_API_URL = _mailgun_server.url
    settings.MAILGUN_TIMEOUT_SECONDS = 5
    settings.MAILGUN_WEBHOOK_SIGNING_KEY = MAILGUN_TEST_SIGNING_KEY
    return _mailgun_server


@pytest.fixture
def real_worker_env() -> dict[str, str]:
    """Environment for the Celery processes of `real_worker`, on top of the test's database,
    Redis and queue. A test module overrides it: e.g. MEDIA_ROOT shared with the worker, or
    DJANGO_SETTINGS_MODULE naming the settings the processes extend (crm.test_settings by
    default, whose eager mode applies to tasks the processes queue themselves)."""
    return {}


@pytest.fixture
def real_worker(transactional_db, tmp_path, real_worker_env) -> CeleryProcesses:
    """Real Celery processes against Redis and the test database, on a queue of their own:
    `real_worker.worker()` starts a worker and waits until it answers, `.beat()` starts beat,
    `with real_worker.routed():` sends what the test queues to them instead of running it
    eagerly. Every process is stopped, and the queue emptied, at teardown."""
    processes = CeleryProcesses(tmp_path, real_worker_env)
    try:
        yield processes
    finally:
        processes.stop_all()


# The JSON API (api/) ------------------------------------------------------------------------


class ApiClient:
    """rest_framework's APIClient signed in with a device token (or none)."""

    def __init__(self, user=None, token: str | None = None):
        from rest_framework.test import APIClient

        self.user = user
        self.token = token
        self.client = APIClient()
        if token:
            self.client.credentials(HTTP_AUTHORIZATION=f"Token {token}")

    def __getattr__(self, name):
        return getattr(self.client, name)


@pytest.fixture(autouse=True)
def _api_throttle(settings):
    """Throttling off unless a test turns it on (the locmem cache outlives each test)."""
    settings.API_THROTTLE_RATE = "100000/min"


@pytest.fixture
def api_as(teams):
    """api_as(user): an API client with a fresh device token of `user`."""
    from tests.factories import device_token

    def make(user, device_name: str = "Phone") -> ApiClient:
        return ApiClient(user, device_token(user, device_name))

    return make


@pytest.fixture
def rep_api(api_as, rep):
    return api_as(rep)


@pytest.fixture
def other_rep_api(api_as, other_rep):
    return api_as(other_rep)


@pytest.fixture
def manager_api(api_as, manager):
    return api_as(manager)


@pytest.fixture
def anonymous_api():
    return ApiClient()


@pytest.fixture
def lead_history(db):
    """Make a history of past leads (demo.lead_history) whose outcomes follow their profile
    and early behaviour, or are drawn at random with signal=False."""
    from demo.lead_history import lead_history_generate

    def make(leads: int = 2500, *, signal: bool = True, seed: int = 17, owner_ids=None):
        owners = owner_ids or [RepFactory(username=f"history_rep_{seed}").pk]
        return lead_history_generate(leads=leads, owner_ids=owners, seed=seed, signal=signal)

    return make
