import pytest

from integrations.models import Connection
from integrations.services.connections import connection_create
from tests.fakes.hubspot_server import FakeHubSpot

HUBSPOT_TOKEN = "pat-na1-test-token-0123456789"


@pytest.fixture(scope="session")
def _hubspot_server():
    server = FakeHubSpot(access_token=HUBSPOT_TOKEN).start()
    yield server
    server.stop()


@pytest.fixture
def fake_hubspot(_hubspot_server, settings):
    """The fake HubSpot, empty, with the official client pointed at it."""
    _hubspot_server.reset()
    _hubspot_server.rate_limit = 190
    _hubspot_server.search_per_second = 5
    settings.HUBSPOT_API_URL = _hubspot_server.url
    settings.SYNC_SETTLE_SECONDS = 0
    settings.SYNC_RETRY_BASE_SECONDS = 0.01
    settings.SYNC_TIMEOUT_SECONDS = 5
    return _hubspot_server


@pytest.fixture
def hubspot_connection(admin_user, fake_hubspot):
    return connection_create(
        actor=admin_user,
        data={
            "name": "HubSpot",
            "provider": Connection.Provider.HUBSPOT,
            "auth_flow": Connection.AuthFlow.TOKEN,
            "conflict_policy": Connection.ConflictPolicy.NEWEST_WINS,
        },
        secrets={"access_token": HUBSPOT_TOKEN},
    )


@pytest.fixture(scope="session")
def _salesforce_server():
    from tests.fakes.salesforce_server import FakeSalesforce

    server = FakeSalesforce().start()
    yield server
    server.stop()


@pytest.fixture
def fake_salesforce(_salesforce_server, settings):
    """The fake Salesforce, empty, with simple-salesforce routed to it."""
    _salesforce_server.reset()
    settings.SALESFORCE_API_URL = _salesforce_server.url
    settings.SYNC_SETTLE_SECONDS = 0
    settings.SYNC_RETRY_BASE_SECONDS = 0.01
    settings.SYNC_TIMEOUT_SECONDS = 5
    return _salesforce_server


@pytest.fixture
def salesforce_connection(admin_user, fake_salesforce):
    return connection_create(
        actor=admin_user,
        data={
            "name": "Salesforce",
            "provider": Connection.Provider.SALESFORCE,
            "auth_flow": Connection.AuthFlow.CLIENT_CREDENTIALS,
            "domain": "acme.my",
            "conflict_policy": Connection.ConflictPolicy.NEWEST_WINS,
        },
        secrets={"consumer_key": "test-consumer-key", "consumer_secret": "test-consumer-secret"},
    )
