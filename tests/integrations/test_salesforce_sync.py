import pytest

from customers.models import Customer
from integrations.models import Connection, SyncLink, SyncRun
from integrations.services.connections import connection_create, connection_test
from integrations.services.runs import sync_run_execute, sync_start
from sales.models import Sale

pytestmark = pytest.mark.django_db


def run_sync(connection) -> SyncRun:
    connection.refresh_from_db()
    run = sync_run_execute(run_id=sync_start(connection=connection).pk)
    assert run.status == SyncRun.Status.SUCCEEDED, run.error
    return run


def seed(fake, rep):
    fake.put("User", {"Email": rep.email, "Name": "Rita Rep", "IsActive": True})
    fake.put("User", {"Email": "ghost@sf.example", "Name": "Ghost", "IsActive": True})
    account = fake.put("Account", {"Name": "Acme Corp"})
    contact = fake.put(
        "Contact",
        {"FirstName": "Cleo", "LastName": "Contact", "Email": "cleo@acme.example",
         "Phone": "+1 1", "AccountId": account},
    )  # fmt: skip
    lead = fake.put(
        "Lead", {"FirstName": "Lee", "LastName": "Lead", "Email": "lee@lead.example",
                 "Company": "Leadco"},
    )  # fmt: skip
    opportunity = fake.put(
        "Opportunity",
        {"Name": "Renewal", "Amount": 5000, "StageName": "Negotiation/Review",
         "CloseDate": "2027-02-01", "ContactId": contact},
    )  # fmt: skip
    return contact, lead, opportunity


def test_first_import_brings_leads_contacts_accounts_opportunities_and_users(
    salesforce_connection, fake_salesforce, rep
):
    contact, lead, opportunity = seed(fake_salesforce, rep)
    run = run_sync(salesforce_connection)
    cleo = Customer.objects.get(email="cleo@acme.example")
    assert (cleo.name, cleo.company, cleo.phone) == ("Cleo Contact", "Acme Corp", "+1 1")
    lee = Customer.objects.get(email="lee@lead.example")
    assert (lee.company, lee.lifecycle_stage) == ("Leadco", "lead")
    sale = Sale.objects.get(title="Renewal")
    assert (sale.customer, sale.status, str(sale.amount)) == (cleo, "NEGOTIATION", "5000.00")
    salesforce_connection.refresh_from_db()
    assert [o["email"] for o in salesforce_connection.unmatched_owners] == ["ghost@sf.example"]
    assert run.progress_total == 3
    assert fake_salesforce.calls("/composite/sobjects") == 0


def test_changes_deletions_and_new_records_both_ways(
    salesforce_connection, fake_salesforce, rep, admin_user
):
    contact, lead, opportunity = seed(fake_salesforce, rep)
    run_sync(salesforce_connection)
    fake_salesforce.put("Contact", {"Title": "VP Sales"}, id=contact)
    run_sync(salesforce_connection)
    cleo = Customer.objects.get(email="cleo@acme.example")
    assert cleo.job_title == "VP Sales"
    assert fake_salesforce.calls("/composite/sobjects") == 0  # no echo

    from customers.services import customer_create, customer_update

    customer_update(actor=admin_user, customer=cleo, data={"phone": "+1 2"})
    customer_create(actor=admin_user, data={"name": "Nia New", "email": "nia@new.example",
                                            "lifecycle_stage": "lead"})  # fmt: skip
    customer_create(actor=admin_user, data={"name": "Carl Customer", "email": "carl@c.example",
                                            "lifecycle_stage": "customer"})  # fmt: skip
    run_sync(salesforce_connection)
    assert fake_salesforce.get("Contact", contact).fields["Phone"] == "+1 2"
    leads = {r.fields.get("Email") for r in fake_salesforce.live("Lead")}
    contacts = {r.fields.get("Email") for r in fake_salesforce.live("Contact")}
    assert "nia@new.example" in leads and "nia@new.example" not in contacts
    assert "carl@c.example" in contacts and "carl@c.example" not in leads

    fake_salesforce.delete("Lead", lead)
    from sales.services import sale_delete

    sale_delete(actor=admin_user, sale=Sale.objects.get(title="Renewal"))
    run_sync(salesforce_connection)
    assert not Customer.objects.filter(email="lee@lead.example").exists()
    assert fake_salesforce.get("Opportunity", opportunity).deleted_at is not None
    assert SyncLink.objects.get(remote_id=opportunity).deleted_at is not None


def test_the_username_password_flow_and_a_refused_sign_in(admin_user, fake_salesforce):
    connection = connection_create(
        actor=admin_user,
        data={"name": "SF password", "provider": "salesforce", "auth_flow": "password",
              "domain": "login"},
        secrets={"consumer_key": "test-consumer-key", "consumer_secret": "test-consumer-secret",
                 "username": "admin@example.com", "password": "secret",
                 "security_token": "TOKEN"},
    )  # fmt: skip
    assert connection_test(actor=admin_user, connection=connection)[0]
    wrong = connection_create(
        actor=admin_user,
        data={"name": "SF wrong", "provider": "salesforce", "auth_flow": "password",
              "domain": "login"},
        secrets={"consumer_key": "test-consumer-key", "consumer_secret": "test-consumer-secret",
                 "username": "admin@example.com", "password": "nope-secret-123"},
    )  # fmt: skip
    ok, message = connection_test(actor=admin_user, connection=wrong)
    assert not ok and "authentication failure" in message and "nope-secret-123" not in message


def test_5xx_is_retried_and_the_daily_api_usage_stops_a_run(
    salesforce_connection, fake_salesforce, rep
):
    seed(fake_salesforce, rep)
    fake_salesforce.fail_next(503, count=2)
    run_sync(salesforce_connection)
    assert Customer.objects.count() == 2
    fake_salesforce.used = int(fake_salesforce.daily_limit * 0.95)
    run = sync_run_execute(run_id=sync_start(connection=salesforce_connection).pk)
    assert run.status == SyncRun.Status.FAILED
    assert "API usage" in run.error


def test_sobject_collections_carry_200_records_a_call(
    salesforce_connection, fake_salesforce, admin_user
):
    Connection.objects.filter(pk=salesforce_connection.pk).update(push_existing=True)
    from customers.services import customers_sync_write

    customers_sync_write(
        actor=admin_user,
        creates=[{"name": f"P {i}", "email": f"p{i}@push.example", "lifecycle_stage": "customer"}
                 for i in range(450)],
        updates=[],
        via="test",
    )  # fmt: skip
    run_sync(salesforce_connection)
    assert len(fake_salesforce.live("Contact")) == 450
    assert fake_salesforce.calls("/composite/sobjects") == 3


def new_customers(admin_user, count: int, stage: str = "customer", prefix: str = "n"):
    from customers.services import customer_create

    return [
        customer_create(
            actor=admin_user,
            data={"name": f"New {i}", "email": f"{prefix}{i}@x.example", "lifecycle_stage": stage},
        )  # fmt: skip
        for i in range(count)
    ]


def test_creates_are_upserts_on_the_external_id_field(
    salesforce_connection, fake_salesforce, rep, admin_user
):
    """The answer to an accepted upsert is lost; the client sends it again and Salesforce
    finds the records by our key instead of making them twice."""
    seed(fake_salesforce, rep)
    run_sync(salesforce_connection)
    customers = new_customers(admin_user, 3)
    lead = new_customers(admin_user, 1, stage="lead", prefix="lead")[0]
    fake_salesforce.lose_answer_next("/composite/sobjects/Contact/CRM_Record_Id__c")
    run = run_sync(salesforce_connection)
    salesforce_connection.refresh_from_db()
    keys = sorted(r.fields.get("CRM_Record_Id__c") or "" for r in fake_salesforce.live("Contact"))
    assert keys == sorted(["", *(salesforce_connection.remote_key(c.pk) for c in customers)])
    assert fake_salesforce.calls("/composite/sobjects/Contact/CRM_Record_Id__c") == 2
    assert run.counts["Contact"]["created"] == 3
    (made,) = [r for r in fake_salesforce.live("Lead") if r.fields.get("Email") == lead.email]
    assert made.fields["Company"] == "[not provided]"  # Salesforce requires one
    assert salesforce_connection.cursors["id_fields"] == {"Lead": True, "Contact": True}
    # From now on the key is read with the rest (a SOQL naming a missing field would fail).
    links = SyncLink.objects.filter(local_id__in=[c.pk for c in customers], object_type="Contact")
    assert {link.remote_id for link in links} == {
        r.id for r in fake_salesforce.live("Contact") if r.fields.get("CRM_Record_Id__c")
    }
    run_sync(salesforce_connection)
    assert Customer.objects.count() == 2 + 4


def test_without_the_external_id_field_creates_fail_with_the_fix_and_the_rest_syncs(
    salesforce_connection, fake_salesforce, rep, admin_user
):
    contact, _, _ = seed(fake_salesforce, rep)
    del fake_salesforce.custom_fields["Contact"]["CRM_Record_Id__c"]
    run_sync(salesforce_connection)
    (customer,) = new_customers(admin_user, 1)
    fake_salesforce.put("Contact", {"Title": "CFO"}, id=contact)
    run = run_sync(salesforce_connection)
    failure = run.failures.get()
    assert failure.local_id == customer.pk
    assert "Contact.CRM_Record_Id__c is missing" in failure.message
    assert "External ID and Unique" in failure.message
    assert Customer.objects.get(email="cleo@acme.example").job_title == "CFO"
    assert len(fake_salesforce.live("Contact")) == 1
    # Once the admin adds it, a retry sends the customer.
    from integrations.services.runs import sync_retry

    fake_salesforce.custom_fields["Contact"]["CRM_Record_Id__c"] = {"externalId": True,
                                                                    "unique": True}  # fmt: skip
    retry = sync_run_execute(run_id=sync_retry(actor=admin_user, run=run).pk)
    assert retry.status == SyncRun.Status.SUCCEEDED, retry.error
    assert customer.email in {r.fields.get("Email") for r in fake_salesforce.live("Contact")}


def test_a_converted_lead_moves_its_customer_to_the_contact(
    salesforce_connection, fake_salesforce, rep, admin_user
):
    from customers.services import customer_update

    _, lead, _ = seed(fake_salesforce, rep)
    run_sync(salesforce_connection)
    lee = Customer.objects.get(email="lee@lead.example")
    contact = fake_salesforce.convert_lead(lead)
    run = run_sync(salesforce_connection)
    assert run.failures.count() == 0
    link = SyncLink.objects.get(
        connection=salesforce_connection, local_model="customer", local_id=lee.pk
    )
    assert (link.object_type, link.remote_id) == ("Contact", contact)
    assert link.note == f"Followed the conversion of Lead {lead}"
    assert not SyncLink.objects.filter(remote_id=lead).exists()
    assert Customer.objects.filter(email="lee@lead.example").count() == 1
    assert Customer.objects.count() == 2
    lee.refresh_from_db()
    assert lee.lifecycle_stage == "prospect"  # no longer a lead in Salesforce
    # From here on the Contact and the customer sync; the dead Lead is left alone.
    fake_salesforce.put("Contact", {"Title": "Head of Ops"}, id=contact)
    run_sync(salesforce_connection)
    lee.refresh_from_db()
    assert lee.job_title == "Head of Ops"
    customer_update(actor=admin_user, customer=lee, data={"phone": "+44 9"})
    run = run_sync(salesforce_connection)
    assert run.failures.count() == 0
    assert fake_salesforce.get("Contact", contact).fields["Phone"] == "+44 9"
    assert "Phone" not in fake_salesforce.get("Lead", lead).fields


def test_a_lead_converted_into_a_contact_linked_elsewhere_leaves_both_customers(
    salesforce_connection, fake_salesforce, rep
):
    contact, lead, _ = seed(fake_salesforce, rep)
    run_sync(salesforce_connection)
    fake_salesforce.convert_lead(lead, contact_id=contact)
    run = run_sync(salesforce_connection)
    assert run.failures.count() == 0
    cleo = Customer.objects.get(email="cleo@acme.example")
    assert SyncLink.objects.get(remote_id=contact, deleted_at__isnull=True).local_id == cleo.pk
    dead = SyncLink.objects.get(remote_id=lead)
    assert dead.deleted_at is not None and "linked to another record" in dead.note
    assert Customer.objects.filter(email="lee@lead.example").exists()  # a duplicate pair now


def test_the_first_import_takes_a_converted_lead_from_its_contact_only(
    salesforce_connection, fake_salesforce, rep
):
    _, lead, _ = seed(fake_salesforce, rep)
    contact = fake_salesforce.convert_lead(lead)
    run = run_sync(salesforce_connection)
    assert run.failures.count() == 0
    lee = Customer.objects.get(email="lee@lead.example")
    link = SyncLink.objects.get(
        connection=salesforce_connection, local_model="customer", local_id=lee.pk
    )
    assert (link.object_type, link.remote_id) == ("Contact", contact)
    assert not SyncLink.objects.filter(remote_id=lead).exists()


def test_a_salesforce_merge_is_followed_not_taken_for_a_deletion(
    salesforce_connection, fake_salesforce, rep
):
    contact, _, opportunity = seed(fake_salesforce, rep)
    run_sync(salesforce_connection)
    cleo = Customer.objects.get(email="cleo@acme.example")
    survivor = fake_salesforce.put(
        "Contact", {"FirstName": "Cleo", "LastName": "Merged", "Email": "cleo.m@acme.example"}
    )
    fake_salesforce.merge("Contact", survivor, contact)
    run = run_sync(salesforce_connection)
    assert run.failures.count() == 0
    link = SyncLink.objects.get(
        connection=salesforce_connection, local_model="customer", local_id=cleo.pk
    )
    assert (link.remote_id, link.deleted_at) == (survivor, None)
    assert link.note == f"Followed the merge of {contact} into {survivor}"
    cleo.refresh_from_db()  # not deleted, and now the survivor's
    assert (cleo.email, cleo.name) == ("cleo.m@acme.example", "Cleo Merged")
    assert Customer.objects.count() == 2
    assert Sale.objects.get(title="Renewal").customer == cleo  # its opportunity moved too
    assert fake_salesforce.get("Opportunity", opportunity).fields["ContactId"] == survivor


def test_a_merge_of_two_linked_records_ends_one_link_and_keeps_both_customers(
    salesforce_connection, fake_salesforce, rep
):
    contact, _, _ = seed(fake_salesforce, rep)
    other = fake_salesforce.put(
        "Contact", {"FirstName": "Cleo", "LastName": "Twin", "Email": "cleo2@acme.example"}
    )
    run_sync(salesforce_connection)
    fake_salesforce.merge("Contact", contact, other)
    run = run_sync(salesforce_connection)
    assert run.failures.count() == 0
    ended = SyncLink.objects.get(connection=salesforce_connection, remote_id=other)
    assert ended.deleted_at is not None and ended.note == f"Merged into {contact}, linked elsewhere"
    # Both customers stay: the CRM's duplicates queue merges them, with their history.
    assert (
        Customer.objects.filter(email__in=["cleo@acme.example", "cleo2@acme.example"]).count() == 2
    )


def opportunity_writes(fake) -> int:
    """Calls that write records (Opportunities, their contact roles, anything else)."""
    return sum(1 for method, path, _ in fake.requests
               if method != "GET" and "/composite/sobjects" in path)  # fmt: skip


def test_a_deal_moved_to_another_customer_moves_its_opportunitys_contact_role(
    salesforce_connection, fake_salesforce, rep, admin_user
):
    """Opportunity.ContactId is create-only, derived from the primary contact role: the move
    makes the new customer's Contact the primary role and deletes the old one's."""
    from sales.services import sale_update

    contact, _, opportunity = seed(fake_salesforce, rep)
    other = fake_salesforce.put("Contact", {"LastName": "Other", "Email": "o@acme.example"})
    run_sync(salesforce_connection)
    sale = Sale.objects.get(title="Renewal")
    others = Customer.objects.get(email="o@acme.example")
    sale_update(actor=admin_user, sale=sale, data={"customer": others, "amount": 6000})
    run = run_sync(salesforce_connection)
    assert run.failures.count() == 0 and run.counts["Opportunity"]["updated"] == 1
    assert fake_salesforce.roles(opportunity) == {other: True}
    record = fake_salesforce.get("Opportunity", opportunity)
    assert (record.fields["ContactId"], record.fields["Amount"]) == (other, "6000.00")
    link = SyncLink.objects.get(connection=salesforce_connection, remote_id=opportunity)
    assert link.synced_values["customer_id"] == str(others.pk)
    # And it stays so: the next sync pulls the Opportunity back and changes nothing.
    writes, updated_at = (
        opportunity_writes(fake_salesforce),
        Sale.objects.get(pk=sale.pk).updated_at,
    )
    run = run_sync(salesforce_connection)
    sale.refresh_from_db()
    assert (sale.customer_id, sale.updated_at) == (others.pk, updated_at)
    assert run.counts["Opportunity"]["updated"] == run.counts["Opportunity"]["created"] == 0
    assert opportunity_writes(fake_salesforce) == writes
    assert fake_salesforce.roles(opportunity) == {other: True}


def test_an_opportunity_given_another_primary_contact_in_salesforce_moves_its_deal(
    salesforce_connection, fake_salesforce, rep
):
    contact, _, opportunity = seed(fake_salesforce, rep)
    other = fake_salesforce.put("Contact", {"LastName": "Other", "Email": "o@acme.example"})
    run_sync(salesforce_connection)
    writes = opportunity_writes(fake_salesforce)
    role = {"OpportunityId": opportunity, "ContactId": other, "IsPrimary": True}
    fake_salesforce.put("OpportunityContactRole", role)  # a user adds Other, as primary
    assert fake_salesforce.roles(opportunity) == {contact: False, other: True}
    run = run_sync(salesforce_connection)
    sale = Sale.objects.get(title="Renewal")
    assert sale.customer.email == "o@acme.example"
    assert run.counts["Opportunity"]["updated"] == 1
    run = run_sync(salesforce_connection)
    assert Sale.objects.get(pk=sale.pk).customer.email == "o@acme.example"
    assert run.counts["Opportunity"]["updated"] == 0
    assert opportunity_writes(fake_salesforce) == writes  # nothing pushed back
