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
