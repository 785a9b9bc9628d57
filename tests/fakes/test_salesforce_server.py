"""The fake Salesforce refuses what Salesforce refuses, through simple-salesforce."""

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceError

from integrations.clients.salesforce import _RouteTo
from tests.fakes.salesforce_server import FakeSalesforce


@pytest.fixture(scope="module")
def fake():
    with FakeSalesforce() as server:
        yield server


@pytest.fixture
def sf(fake):
    fake.reset()
    session = requests.Session()
    session.mount("https://", _RouteTo(fake.url))
    return Salesforce(consumer_key=fake.consumer_key, consumer_secret=fake.consumer_secret,
                      domain="acme.my", session=session)  # fmt: skip


def upsert(sf, records, sobject="Contact", field="CRM_Record_Id__c", all_or_none=False):
    body = {"allOrNone": all_or_none,
            "records": [{"attributes": {"type": sobject}, **r} for r in records]}  # fmt: skip
    return sf.restful(f"composite/sobjects/{sobject}/{field}", method="PATCH", json=body)


def update(sf, sobject, record_id, **fields):
    record = {"attributes": {"type": sobject}, "Id": record_id, **fields}
    body = {"allOrNone": False, "records": [record]}
    return sf.restful("composite/sobjects", method="PATCH", json=body)


def codes(results):
    return [r["errors"][0]["statusCode"] if r["errors"] else None for r in results]


def test_upsert_on_an_external_id_field(fake, sf):
    first = upsert(sf, [{"CRM_Record_Id__c": "k-1", "LastName": "One"},
                        {"CRM_Record_Id__c": "k-2", "LastName": "Two"}])  # fmt: skip
    assert [r["created"] for r in first] == [True, True]
    again = upsert(sf, [{"CRM_Record_Id__c": "k-1", "LastName": "Uno"}])
    assert again[0] == {"id": first[0]["id"], "success": True, "errors": [], "created": False}
    assert fake.get("Contact", first[0]["id"]).fields["LastName"] == "Uno"
    assert len(fake.live("Contact")) == 2
    refused = upsert(sf, [{"CRM_Record_Id__c": "k-3"},  # a new Contact needs LastName
                          {"LastName": "No key"},
                          {"CRM_Record_Id__c": "k-4", "LastName": "Four"},
                          {"CRM_Record_Id__c": "k-4", "LastName": "Again"}])  # fmt: skip
    assert codes(refused) == [
        "REQUIRED_FIELD_MISSING", "MISSING_ARGUMENT", None, "DUPLICATE_EXTERNAL_ID",
    ]  # fmt: skip
    rolled_back = upsert(sf, [{"CRM_Record_Id__c": "k-5", "LastName": "Five"},
                              {"CRM_Record_Id__c": "k-6"}], all_or_none=True)  # fmt: skip
    assert codes(rolled_back) == ["ALL_OR_NONE_OPERATION_ROLLED_BACK", "REQUIRED_FIELD_MISSING"]
    assert len(fake.live("Contact")) == 3
    # A unique field's value on a second record, by a plain update.
    assert codes(update(sf, "Contact", first[1]["id"], CRM_Record_Id__c="K-1")) == [
        "DUPLICATE_VALUE"
    ]
    with pytest.raises(SalesforceError) as refused_field:
        upsert(sf, [{"Email": "x@y.example", "LastName": "X"}], field="Email")
    assert refused_field.value.status == 404
    described = {f["name"]: f for f in sf.Contact.describe()["fields"]}
    assert described["CRM_Record_Id__c"]["externalId"] and described["CRM_Record_Id__c"]["unique"]


def test_a_converted_lead_stays_read_only(fake, sf):
    lead = fake.put("Lead", {"FirstName": "Lee", "LastName": "Lead", "Email": "lee@x.example",
                             "Company": "Leadco"})  # fmt: skip
    contact = fake.convert_lead(lead)
    rows = sf.query(f"SELECT Id, IsConverted, ConvertedContactId FROM Lead WHERE Id = '{lead}'")
    assert rows["records"][0]["IsConverted"] is True
    assert rows["records"][0]["ConvertedContactId"] == contact
    assert fake.get("Contact", contact).fields["Email"] == "lee@x.example"
    assert codes(update(sf, "Lead", lead, Title="CEO")) == ["CANNOT_UPDATE_CONVERTED_LEAD"]


def test_merged_records_are_deleted_naming_their_master(fake, sf):
    keep = fake.put("Contact", {"LastName": "Keep"})
    gone = fake.put("Contact", {"LastName": "Gone"})
    fake.merge("Contact", keep, gone)
    live = sf.query(f"SELECT Id FROM Contact WHERE Id IN ('{keep}', '{gone}')")
    assert [r["Id"] for r in live["records"]] == [keep]
    every = sf.query_all(
        f"SELECT Id, MasterRecordId, IsDeleted FROM Contact WHERE Id IN ('{gone}')",
        include_deleted=True,
    )
    assert every["records"][0]["MasterRecordId"] == keep
    assert every["records"][0]["IsDeleted"] is True


def test_an_opportunitys_contact_is_its_primary_contact_role(fake, sf):
    one = fake.put("Contact", {"LastName": "One"})
    two = fake.put("Contact", {"LastName": "Two"})
    (made,) = sf.restful("composite/sobjects", method="POST", json={"allOrNone": False, "records": [
        {"attributes": {"type": "Opportunity"}, "Name": "O", "StageName": "Prospecting",
         "CloseDate": "2027-01-01", "ContactId": one},
    ]})  # fmt: skip
    opportunity = made["id"]
    assert fake.roles(opportunity) == {one: True}
    # ContactId is create-only; the primary role is what changes it.
    assert codes(update(sf, "Opportunity", opportunity, ContactId=two)) == [
        "INVALID_FIELD_FOR_INSERT_UPDATE"
    ]
    before = fake.get("Opportunity", opportunity).modstamp
    (role,) = sf.restful("composite/sobjects", method="POST", json={"allOrNone": False, "records": [
        {"attributes": {"type": "OpportunityContactRole"}, "OpportunityId": opportunity,
         "ContactId": two, "IsPrimary": True},
    ]})  # fmt: skip
    assert fake.roles(opportunity) == {one: False, two: True}
    rows = sf.query(f"SELECT Id, ContactId FROM Opportunity WHERE Id = '{opportunity}'")
    assert rows["records"][0]["ContactId"] == two
    assert fake.get("Opportunity", opportunity).modstamp > before
    assert codes(update(sf, "OpportunityContactRole", role["id"], OpportunityId=opportunity)) == [
        "INVALID_FIELD_FOR_INSERT_UPDATE"
    ]
    sf.restful("composite/sobjects", method="DELETE", params={"ids": role["id"]})
    assert fake.roles(opportunity) == {one: False}
    assert fake.get("Opportunity", opportunity).fields["ContactId"] is None
