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


def body_of(call):
    try:
        response = call()
    except Exception as error:  # the generated clients' ApiException
        return error.status, json.loads(error.body)
    return response.status, json.loads(response.data) if response.data else None


def test_upsert_by_a_unique_property_and_the_properties_api(fake):
    fake.reset()
    crm = client(fake).crm
    unique = {"name": "crm_key", "label": "CRM key", "type": "string", "fieldType": "text",
              "groupName": "contactinformation", "hasUniqueValue": True}  # fmt: skip

    def upsert(inputs):
        return body_of(lambda: crm.contacts.batch_api.upsert(
            batch_input_simple_public_object_batch_input_upsert={"inputs": inputs},
            _preload_content=False,
        ))  # fmt: skip

    def create_property(definition):
        return body_of(lambda: crm.properties.core_api.create(
            "contacts", property_create=definition, _preload_content=False
        ))  # fmt: skip

    # Only a property with unique values can key an upsert.
    status, answer = upsert([{"idProperty": "crm_key", "id": "k-1", "properties": {}}])
    assert status == 400 and "non-unique 0-1 property crm_key" in answer["message"]
    status, answer = body_of(lambda: crm.properties.core_api.get_by_name(
        "contacts", "crm_key", _preload_content=False))  # fmt: skip
    assert status == 404 and answer["category"] == "OBJECT_NOT_FOUND"
    assert create_property({**unique, "groupName": ""})[0] == 400
    assert create_property({**unique, "type": "enumeration"})[0] == 400
    assert create_property(unique)[0] == 201
    assert create_property(unique)[0] == 409
    assert body_of(lambda: crm.properties.core_api.get_by_name(
        "contacts", "crm_key", _preload_content=False))[1]["hasUniqueValue"] is True  # fmt: skip

    status, answer = upsert([
        {"idProperty": "crm_key", "id": "k-1", "objectWriteTraceId": "t1",
         "properties": {"email": "one@y.example"}},
        {"idProperty": "crm_key", "id": "k-2", "objectWriteTraceId": "t2",
         "properties": {"email": "two@y.example"}},
    ])  # fmt: skip
    assert status == 200
    made = {r["objectWriteTraceId"]: r for r in answer["results"]}
    assert [made["t1"]["new"], made["t2"]["new"]] == [True, True]
    # Sent again: the same records, updated, none made.
    status, answer = upsert([{"idProperty": "crm_key", "id": "k-1", "objectWriteTraceId": "t1",
                              "properties": {"firstname": "Uno"}}])  # fmt: skip
    assert answer["results"][0]["new"] is False
    assert answer["results"][0]["id"] == made["t1"]["id"]
    assert len(fake.live("contacts")) == 2
    assert fake.get("contacts", int(made["t1"]["id"])).properties["firstname"] == "Uno"
    # One id twice in a batch, a unique value onto a second record, an email taken: refused.
    twice = {"idProperty": "crm_key", "id": "k-3", "properties": {}}
    assert upsert([twice, twice])[0] == 400
    status, answer = body_of(lambda: crm.contacts.batch_api.update(
        batch_input_simple_public_object_batch_input={"inputs": [
            {"id": made["t2"]["id"], "properties": {"crm_key": "k-1"}}]},
        _preload_content=False,
    ))  # fmt: skip
    assert status == 400 and "already has that value" in answer["message"]
    status, answer = upsert([{"idProperty": "crm_key", "id": "k-9",
                              "properties": {"email": "ONE@y.example"}}])  # fmt: skip
    assert status == 409 and "Existing ID" in answer["message"]
    assert len(fake.live("contacts")) == 2


def test_a_lost_answer_leaves_the_write_done(fake):
    import urllib3

    fake.reset()
    api = client(fake).crm.contacts
    fake.lose_answer_next("/crm/v3/objects/contacts/batch/create")
    with pytest.raises(urllib3.exceptions.HTTPError):
        api.batch_api.create(
            batch_input_simple_public_object_batch_input_for_create={
                "inputs": [{"properties": {"email": "lost@y.example"}}]
            },
            _preload_content=False,
        )
    assert [r.properties["email"] for r in fake.live("contacts")] == ["lost@y.example"]


def test_association_archive_takes_the_v4_shape_and_answers_204(fake):
    fake.reset()
    batch = client(fake).crm.associations.v4.batch_api
    ann = fake.put("contacts", {"email": "ann@y.example"})
    bob = fake.put("contacts", {"email": "bob@y.example"})
    deal = fake.put("deals", {"dealname": "D"}, associations={"contacts": [ann, bob]})

    def archive(inputs, from_type="deals", to_type="contacts"):
        return body_of(lambda: batch.archive(
            from_type, to_type, batch_input_public_association_multi_archive={"inputs": inputs},
            _preload_content=False,
        ))  # fmt: skip

    # v3's shape (one `to` object, not a list), no `from`, no inputs, an unknown pair: 400.
    assert archive([{"from": {"id": str(deal)}, "to": {"id": str(ann)}}])[0] == 400
    assert archive([{"to": [{"id": str(ann)}]}])[0] == 400
    assert archive([])[0] == 400
    assert (
        archive([{"from": {"id": str(deal)}, "to": [{"id": str(ann)}]}], to_type="owners")[0] == 400
    )
    assert fake.get("deals", deal).associations["contacts"] == {ann, bob}
    assert archive([{"from": {"id": str(deal)}, "to": [{"id": str(ann)}]}]) == (204, None)
    assert fake.get("deals", deal).associations["contacts"] == {bob}
    assert deal not in fake.get("contacts", ann).associations["deals"]
    # Gone already: a no-op.
    assert archive([{"from": {"id": str(deal)}, "to": [{"id": str(ann)}]}])[0] == 204
