"""The fake HubSpot refuses what HubSpot refuses, through the official client."""

import json

import hubspot
import pytest

from tests.fakes.hubspot_server import FakeHubSpot


@pytest.fixture(scope="module")
def fake():
    with FakeHubSpot(access_token="pat-x", search_per_second=1000) as server:
        yield server


def client(fake, token="pat-x"):
    return hubspot.Client.create(access_token=token, host=fake.url)


def status_of(call) -> int:
    try:
        return call().status
    except Exception as error:  # the generated clients' ApiException
        return error.status


def test_limits_and_errors(fake):
    api = client(fake).crm.contacts
    too_many = {"inputs": [{"properties": {"email": f"x{i}@y.example"}} for i in range(101)]}
    assert status_of(lambda: api.batch_api.create(
        batch_input_simple_public_object_batch_input_for_create=too_many, _preload_content=False
    )) == 400  # fmt: skip
    assert status_of(lambda: api.search_api.do_search(
        public_object_search_request={"after": "10000", "limit": 100}, _preload_content=False
    )) == 400  # fmt: skip
    two_sorts = {"sorts": [{"propertyName": "email"}, {"propertyName": "hs_object_id"}]}
    assert status_of(lambda: api.search_api.do_search(
        public_object_search_request=two_sorts, _preload_content=False
    )) == 400  # fmt: skip
    assert status_of(lambda: client(fake, "wrong").crm.contacts.basic_api.get_page(
        _preload_content=False
    )) == 401  # fmt: skip
    fake.put("contacts", {"email": "dup@y.example"})
    try:
        api.batch_api.create(
            batch_input_simple_public_object_batch_input_for_create={
                "inputs": [{"properties": {"email": "DUP@y.example"}}]
            },
            _preload_content=False,
        )
    except Exception as error:
        assert error.status == 409
        assert "Existing ID" in json.loads(error.body)["message"]
    else:
        pytest.fail("a duplicate email was accepted")


def test_rate_limit_headers_and_429(fake):
    fake.reset()
    fake.rate_limit = 3
    api = client(fake).crm.contacts.basic_api
    first = api.get_page(_preload_content=False)
    assert first.headers["X-HubSpot-RateLimit-Max"] == "3"
    assert first.headers["X-HubSpot-RateLimit-Remaining"] == "2"
    api.get_page(_preload_content=False)
    api.get_page(_preload_content=False)
    assert status_of(lambda: api.get_page(_preload_content=False)) == 429
    fake.rate_limit = 190
