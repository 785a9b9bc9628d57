import pytest

from customers.models import Customer
from integrations.models import Connection, SyncConflict, SyncLink, SyncRun
from integrations.services.connections import conflict_resolve
from integrations.services.runs import sync_run_execute, sync_start
from sales.models import Sale, StageChange

pytestmark = pytest.mark.django_db


def run_sync(connection) -> SyncRun:
    connection.refresh_from_db()
    run = sync_start(connection=connection)
    return sync_run_execute(run_id=run.pk)


def seed(fake, rep):
    fake.add_owner(rep.email, "Rita", "Rep")
    fake.add_owner("nobody@remote.example", "No", "Body")
    company = fake.put("companies", {"name": "Acme GmbH", "domain": "acme.example"})
    ann = fake.put(
        "contacts",
        {"email": "ann@acme.example", "firstname": "Ann", "lastname": "Lee", "phone": "+49 1"},
        associations={"companies": [company]},
    )
    bob = fake.put("contacts", {"email": "bob@b.example", "firstname": "Bob", "company": "Bee"})
    deal = fake.put(
        "deals",
        {"dealname": "Big deal", "amount": "1200.5", "dealstage": "contractsent",
         "closedate": "2027-03-01T00:00:00.000Z"},
        associations={"contacts": [ann]},
    )  # fmt: skip
    return ann, bob, deal


def test_first_import_brings_contacts_companies_deals_and_owners(
    hubspot_connection, fake_hubspot, rep
):
    ann, bob, deal = seed(fake_hubspot, rep)
    run = run_sync(hubspot_connection)
    assert run.status == SyncRun.Status.SUCCEEDED, run.error
    customer = Customer.objects.get(email="ann@acme.example")
    assert (customer.name, customer.company, customer.phone) == ("Ann Lee", "Acme GmbH", "+49 1")
    assert Customer.objects.get(email="bob@b.example").company == "Bee"
    sale = Sale.objects.get(title="Big deal")
    assert (sale.customer, sale.status, str(sale.amount)) == (customer, "NEGOTIATION", "1200.50")
    assert sale.expected_close_date.isoformat() == "2027-03-01"
    assert StageChange.objects.filter(sale=sale, to_status="NEGOTIATION").exists()
    assert run.progress_done == run.progress_total == 3
    hubspot_connection.refresh_from_db()
    assert [o["email"] for o in hubspot_connection.unmatched_owners] == ["nobody@remote.example"]
    assert run.counts["contacts"]["created"] == 2
    # Nothing local was new, so nothing went to HubSpot.
    assert fake_hubspot.calls("/batch/upsert") == fake_hubspot.calls("/batch/create") == 0


def test_change_on_each_side_arrives_without_echo(
    hubspot_connection, fake_hubspot, rep, admin_user
):
    ann, bob, deal = seed(fake_hubspot, rep)
    run_sync(hubspot_connection)
    # Remote change -> CRM
    fake_hubspot.touch("contacts", ann, {"phone": "+49 2"})
    run = run_sync(hubspot_connection)
    assert run.kind == SyncRun.Kind.INCREMENTAL
    assert Customer.objects.get(email="ann@acme.example").phone == "+49 2"
    assert fake_hubspot.calls("/batch/update") == 0  # the pulled change is not pushed back
    # CRM change -> remote
    from customers.services import customer_update

    customer = Customer.objects.get(email="bob@b.example")
    customer_update(actor=admin_user, customer=customer, data={"job_title": "CTO"})
    run = run_sync(hubspot_connection)
    assert fake_hubspot.get("contacts", bob).properties["jobtitle"] == "CTO"
    assert run.counts["contacts"]["updated"] == 1
    updates = fake_hubspot.calls("/batch/update")
    # Our own write comes back on the next pull and is skipped, not written locally again.
    before = Customer.objects.get(pk=customer.pk).updated_at
    run = run_sync(hubspot_connection)
    assert Customer.objects.get(pk=customer.pk).updated_at == before
    assert fake_hubspot.calls("/batch/update") == updates
    link = SyncLink.objects.get(connection=hubspot_connection, remote_id=str(bob))
    assert link.changed_by == SyncLink.Side.LOCAL


def test_new_local_customer_and_deal_are_created_remotely(
    hubspot_connection, fake_hubspot, rep, admin_user
):
    seed(fake_hubspot, rep)
    run_sync(hubspot_connection)
    from customers.services import customer_create
    from sales.services import sale_create

    customer = customer_create(actor=admin_user, data={"name": "Cy New", "email": "cy@new.example"})
    sale_create(actor=admin_user, data={"title": "Fresh", "customer": customer, "amount": 10})
    run_sync(hubspot_connection)
    remote = next(
        r for r in fake_hubspot.live("contacts") if r.properties.get("email") == "cy@new.example"
    )
    assert (remote.properties["firstname"], remote.properties["lastname"]) == ("Cy", "New")
    deal = next(r for r in fake_hubspot.live("deals") if r.properties.get("dealname") == "Fresh")
    assert deal.associations["contacts"] == {remote.id}
    assert deal.properties["dealstage"] == "appointmentscheduled"


@pytest.mark.parametrize(
    ("policy", "expected_local", "expected_remote"),
    [
        (Connection.ConflictPolicy.CRM_WINS, "CRM title", "CRM title"),
        (Connection.ConflictPolicy.REMOTE_WINS, "Remote title", "Remote title"),
        (Connection.ConflictPolicy.NEWEST_WINS, "Remote title", "Remote title"),
    ],
)
def test_conflict_policies(
    hubspot_connection, fake_hubspot, rep, admin_user, policy, expected_local, expected_remote
):
    ann, _, _ = seed(fake_hubspot, rep)
    Connection.objects.filter(pk=hubspot_connection.pk).update(conflict_policy=policy)
    run_sync(hubspot_connection)
    from customers.services import customer_update

    customer = Customer.objects.get(email="ann@acme.example")
    customer_update(actor=admin_user, customer=customer, data={"job_title": "CRM title"})
    # The remote change is the newer one.
    fake_hubspot.touch("contacts", ann, {"jobtitle": "Remote title"})
    run_sync(hubspot_connection)
    assert Customer.objects.get(pk=customer.pk).job_title == expected_local
    assert fake_hubspot.get("contacts", ann).properties["jobtitle"] == expected_remote


def test_manual_policy_queues_the_conflict_until_a_person_settles_it(
    hubspot_connection, fake_hubspot, rep, admin_user
):
    ann, _, _ = seed(fake_hubspot, rep)
    Connection.objects.filter(pk=hubspot_connection.pk).update(conflict_policy="manual")
    run_sync(hubspot_connection)
    from customers.services import customer_update

    customer = Customer.objects.get(email="ann@acme.example")
    customer_update(
        actor=admin_user, customer=customer, data={"job_title": "CRM title", "phone": "+1"}
    )
    fake_hubspot.touch("contacts", ann, {"jobtitle": "Remote title"})
    run_sync(hubspot_connection)
    conflict = SyncConflict.objects.get(connection=hubspot_connection)
    assert (conflict.field, conflict.local_value, conflict.remote_value) == (
        "job_title",
        "CRM title",
        "Remote title",
    )
    # Held on both sides; the field without conflict (phone) went through.
    assert Customer.objects.get(pk=customer.pk).job_title == "CRM title"
    assert fake_hubspot.get("contacts", ann).properties["jobtitle"] == "Remote title"
    assert fake_hubspot.get("contacts", ann).properties["phone"] == "+1"
    conflict_resolve(actor=admin_user, conflict=conflict, keep="crm")
    run_sync(hubspot_connection)
    assert fake_hubspot.get("contacts", ann).properties["jobtitle"] == "CRM title"
    assert Customer.objects.get(pk=customer.pk).job_title == "CRM title"


def test_deletions_both_ways(hubspot_connection, fake_hubspot, rep, admin_user):
    ann, bob, deal = seed(fake_hubspot, rep)
    run_sync(hubspot_connection)
    fake_hubspot.archive("contacts", bob)
    run_sync(hubspot_connection)
    assert not Customer.objects.filter(email="bob@b.example").exists()
    from sales.services import sale_delete

    sale_delete(actor=admin_user, sale=Sale.objects.get(title="Big deal"))
    run_sync(hubspot_connection)
    assert fake_hubspot.get("deals", deal).archived_at is not None
    assert fake_hubspot.get("contacts", ann).archived_at is None


def test_email_change_on_either_side_does_not_duplicate(
    hubspot_connection, fake_hubspot, rep, admin_user
):
    ann, bob, _ = seed(fake_hubspot, rep)
    run_sync(hubspot_connection)
    fake_hubspot.touch("contacts", ann, {"email": "ann.lee@acme.example"})
    run_sync(hubspot_connection)
    assert Customer.objects.filter(name="Ann Lee").count() == 1
    assert Customer.objects.get(name="Ann Lee").email == "ann.lee@acme.example"
    from customers.services import customer_update

    customer_update(actor=admin_user, customer=Customer.objects.get(email="bob@b.example"),
                    data={"email": "robert@b.example"})  # fmt: skip
    run_sync(hubspot_connection)
    assert fake_hubspot.get("contacts", bob).properties["email"] == "robert@b.example"
    assert len(fake_hubspot.live("contacts")) == 2
    assert Customer.objects.count() == 2


def test_a_hubspot_merge_is_followed(hubspot_connection, fake_hubspot, rep):
    ann, bob, _ = seed(fake_hubspot, rep)
    run_sync(hubspot_connection)
    survivor = fake_hubspot.put("contacts", {"email": "ann2@acme.example", "firstname": "Annie"})
    fake_hubspot.merge("contacts", survivor, ann)
    run = run_sync(hubspot_connection)
    assert run.status == SyncRun.Status.SUCCEEDED, run.error
    link = SyncLink.objects.get(connection=hubspot_connection, remote_id=str(survivor))
    customer = Customer.objects.get(pk=link.local_id)
    assert customer.email == "ann2@acme.example"
    assert Customer.objects.count() == 2
    assert not SyncLink.objects.filter(connection=hubspot_connection, remote_id=str(ann)).exists()


@pytest.mark.parametrize("push_existing", [False, True])
def test_existing_crm_records_go_to_hubspot_only_when_asked(
    admin_user, fake_hubspot, rep, push_existing
):
    from customers.services import customer_create
    from integrations.services.connections import connection_create
    from tests.integrations.conftest import HUBSPOT_TOKEN

    customer_create(actor=admin_user, data={"name": "Old Timer", "email": "old@crm.example"})
    # Also in HubSpot under the same email: the first sync links the two, no duplicate.
    ann, _, _ = seed(fake_hubspot, rep)
    same = customer_create(actor=admin_user, data={"name": "Ann L.", "email": "ANN@acme.example"})
    connection = connection_create(
        actor=admin_user,
        data={"name": "H", "provider": "hubspot", "auth_flow": "token",
              "push_existing": push_existing},
        secrets={"access_token": HUBSPOT_TOKEN},
    )  # fmt: skip
    run = run_sync(connection)
    assert run.status == SyncRun.Status.SUCCEEDED, run.error
    emails = {r.properties.get("email") for r in fake_hubspot.live("contacts")}
    assert ("old@crm.example" in emails) is push_existing
    link = SyncLink.objects.get(connection=connection, remote_id=str(ann))
    assert link.local_id == same.pk and link.note == "Linked by email"
    assert Customer.objects.filter(email__iexact="ann@acme.example").count() == 1
    # Unless the CRM wins, a first link takes HubSpot's values.
    assert Customer.objects.get(pk=same.pk).name == "Ann Lee"


def test_retry_pushes_the_records_that_failed_to_go_out(
    hubspot_connection, fake_hubspot, rep, admin_user
):
    from customers.services import customer_update
    from integrations.services.runs import sync_retry

    _, bob, _ = seed(fake_hubspot, rep)
    run_sync(hubspot_connection)
    customer = Customer.objects.get(email="bob@b.example")
    customer_update(actor=admin_user, customer=customer, data={"job_title": "Chief"})
    fake_hubspot.fail_next(400, path="/crm/v3/objects/contacts/batch/update")
    run = run_sync(hubspot_connection)
    failure = run.failures.get()
    assert (failure.direction, failure.local_id) == ("push", customer.pk)
    assert "jobtitle" not in fake_hubspot.get("contacts", bob).properties
    retry = sync_retry(actor=admin_user, run=run)
    sync_run_execute(run_id=retry.pk)
    assert fake_hubspot.get("contacts", bob).properties["jobtitle"] == "Chief"
    failure.refresh_from_db()
    assert failure.retried_at is not None


def new_customers(admin_user, count: int, prefix: str = "n") -> list[Customer]:
    from customers.services import customer_create

    return [
        customer_create(
            actor=admin_user, data={"name": f"New {i}", "email": f"{prefix}{i}@x.example"}
        )
        for i in range(count)
    ]


def keys_of(fake) -> list[str]:
    return fake.unique_values("contacts", "crm_record_id")


def test_creates_are_upserts_on_our_record_key(hubspot_connection, fake_hubspot, rep, admin_user):
    seed(fake_hubspot, rep)
    run_sync(hubspot_connection)
    customers = new_customers(admin_user, 3)
    run = run_sync(hubspot_connection)
    assert run.counts["contacts"]["created"] == 3
    # The first push made the unique property holding our keys, once per connection.
    made = fake_hubspot.properties["contacts"]["crm_record_id"]
    assert made["hasUniqueValue"] and made["type"] == "string"
    hubspot_connection.refresh_from_db()
    assert sorted(keys_of(fake_hubspot)) == sorted(
        hubspot_connection.remote_key(c.pk) for c in customers
    )
    assert hubspot_connection.cursors["id_fields"] == {"contacts": True}
    new_customers(admin_user, 1, prefix="later")
    run_sync(hubspot_connection)
    assert fake_hubspot.calls("/crm/v3/properties/") == 2  # one read, one create: not again


def test_a_create_batch_whose_answer_was_lost_is_not_duplicated(
    hubspot_connection, fake_hubspot, rep, admin_user
):
    """HubSpot took the batch, the answer never came back, the client sent it again."""
    seed(fake_hubspot, rep)
    run_sync(hubspot_connection)
    customers = new_customers(admin_user, 120)
    fake_hubspot.lose_answer_next("/crm/v3/objects/contacts/batch/upsert")
    run = run_sync(hubspot_connection)
    assert run.status == SyncRun.Status.SUCCEEDED, run.error
    assert fake_hubspot.calls("/batch/upsert") == 3  # 100 (answer lost), the same 100, 20
    assert len(fake_hubspot.live("contacts")) == 2 + 120
    assert len(set(keys_of(fake_hubspot))) == len(keys_of(fake_hubspot)) == 120
    links = SyncLink.objects.filter(
        connection=hubspot_connection,
        local_model="customer",
        local_id__in=[c.pk for c in customers],
    )
    assert links.count() == 120
    for link in links:
        record = fake_hubspot.get("contacts", int(link.remote_id))
        assert record.properties["crm_record_id"] == hubspot_connection.remote_key(link.local_id)


@pytest.mark.django_db(transaction=True)
def test_a_worker_taken_for_dead_after_hubspot_took_its_batch_duplicates_nothing(
    hubspot_connection, fake_hubspot, rep, admin_user
):
    """The first worker's upsert is accepted and its answer held back: it has written no
    ledger row when its lease lapses and a second worker resumes the run from the saved
    position, sending the batch again. The first then gets its answer and finds its lease
    taken: its page rolls back. Each customer has one remote record and one link."""
    import threading
    from datetime import timedelta

    from django.db import connection as db_connection
    from django.utils import timezone

    seed(fake_hubspot, rep)
    run_sync(hubspot_connection)
    new_customers(admin_user, 1, prefix="first")
    run_sync(hubspot_connection)  # the key property exists from here on
    customers = new_customers(admin_user, 150)
    fake_hubspot.hold_answer_next("/crm/v3/objects/contacts/batch/upsert")
    # Queued without the eager task sync_start's on_commit would run here and now.
    run = SyncRun.objects.create(connection=hubspot_connection, kind=SyncRun.Kind.INCREMENTAL)
    outcome = {}

    def first_worker():
        try:
            outcome["first"] = sync_run_execute(run_id=run.pk)
        finally:
            db_connection.close()

    thread = threading.Thread(target=first_worker)
    thread.start()
    try:
        assert fake_hubspot.held.wait(timeout=30), "the upsert never reached HubSpot"
        assert len(fake_hubspot.live("contacts")) == 3 + 100  # HubSpot has the first batch
        assert not SyncLink.objects.filter(
            local_model="customer", local_id__in=[c.pk for c in customers]
        ).exists()
        SyncRun.objects.filter(pk=run.pk).update(lease_until=timezone.now() - timedelta(seconds=1))
        second = sync_run_execute(run_id=run.pk)
        assert second.status == SyncRun.Status.SUCCEEDED, second.error
    finally:
        fake_hubspot.release()
        thread.join(timeout=30)
    assert outcome["first"] is None  # LeaseLost: the first worker's page rolled back
    assert len(fake_hubspot.live("contacts")) == 3 + 150
    assert len(set(keys_of(fake_hubspot))) == len(keys_of(fake_hubspot)) == 151
    links = SyncLink.objects.filter(local_model="customer", local_id__in=[c.pk for c in customers])
    assert links.count() == 150 and len({link.remote_id for link in links}) == 150


def test_a_deal_we_created_whose_ledger_row_was_lost_is_linked_back_not_imported(
    hubspot_connection, fake_hubspot, rep, admin_user
):
    """A failed run leaves a deal in HubSpot unlinked; the next run pulls it before it
    pushes: our key on it links it to its deal, where a pull would have made a copy."""
    from sales.services import sale_create

    ann, _, _ = seed(fake_hubspot, rep)
    run_sync(hubspot_connection)
    customer = Customer.objects.get(email="ann@acme.example")
    sale = sale_create(actor=admin_user, data={"title": "Ours", "customer": customer,
                                               "amount": 10})  # fmt: skip
    hubspot_connection.refresh_from_db()
    remote = fake_hubspot.put(
        "deals",
        {"dealname": "Ours", "amount": "10.00", "dealstage": "appointmentscheduled",
         "crm_record_id": hubspot_connection.remote_key(sale.pk)},
        associations={"contacts": [ann]},
    )  # fmt: skip
    # Another CRM's key (a staging copy pushing to the same account) links nothing.
    fake_hubspot.put(
        "deals",
        {"dealname": "Theirs", "dealstage": "appointmentscheduled",
         "crm_record_id": f"0ther000-{sale.pk}"},
        associations={"contacts": [ann]},
    )  # fmt: skip
    run = run_sync(hubspot_connection)
    assert run.status == SyncRun.Status.SUCCEEDED, run.error
    link = SyncLink.objects.get(connection=hubspot_connection, remote_id=str(remote))
    assert (link.local_id, link.note) == (sale.pk, "Linked by our record key")
    assert Sale.objects.filter(title="Ours").count() == 1
    assert Sale.objects.filter(title="Theirs").count() == 1
    assert len(fake_hubspot.live("deals")) == 3  # and nothing pushed twice


def test_a_key_property_without_unique_values_stops_creates_with_a_reason(
    hubspot_connection, fake_hubspot, rep, admin_user
):
    seed(fake_hubspot, rep)
    fake_hubspot.properties["contacts"]["crm_record_id"] = {
        "name": "crm_record_id", "type": "string", "hasUniqueValue": False,
    }  # fmt: skip
    run_sync(hubspot_connection)
    (customer,) = new_customers(admin_user, 1)
    run = run_sync(hubspot_connection)
    failure = run.failures.get()
    assert failure.local_id == customer.pk
    assert "does not require unique values" in failure.message
    assert len(fake_hubspot.live("contacts")) == 2


def test_new_deals_are_associated_with_their_contacts_after_the_upsert(
    hubspot_connection, fake_hubspot, rep, admin_user
):
    from sales.services import sale_create

    ann, _, _ = seed(fake_hubspot, rep)
    run_sync(hubspot_connection)
    customer = Customer.objects.get(email="ann@acme.example")
    for i in range(3):
        sale_create(actor=admin_user, data={"title": f"D{i}", "customer": customer, "amount": 1})
    run_sync(hubspot_connection)
    made = [r for r in fake_hubspot.live("deals") if r.properties.get("dealname", "")[:1] == "D"]
    assert len(made) == 3 and all(r.associations["contacts"] == {ann} for r in made)
    assert fake_hubspot.calls("/batch/associate/default") == 1  # one call a batch


def test_a_deal_whose_association_failed_is_sent_again_onto_the_same_record(
    hubspot_connection, fake_hubspot, rep, admin_user
):
    from integrations.services.runs import sync_retry
    from sales.services import sale_create

    ann, _, _ = seed(fake_hubspot, rep)
    run_sync(hubspot_connection)
    customer = Customer.objects.get(email="ann@acme.example")
    sale = sale_create(actor=admin_user, data={"title": "Tied", "customer": customer,
                                               "amount": 5})  # fmt: skip
    fake_hubspot.fail_next(400, path="/crm/v4/associations/deals/contacts/batch/associate/default")
    run = run_sync(hubspot_connection)
    failure = run.failures.get()
    assert failure.local_id == sale.pk and "Not associated" in failure.message
    (made,) = [r for r in fake_hubspot.live("deals") if r.properties.get("dealname") == "Tied"]
    assert not made.associations.get("contacts")
    retry = sync_run_execute(run_id=sync_retry(actor=admin_user, run=run).pk)
    assert retry.status == SyncRun.Status.SUCCEEDED, retry.error
    (again,) = [r for r in fake_hubspot.live("deals") if r.properties.get("dealname") == "Tied"]
    assert again.id == made.id and again.associations["contacts"] == {ann}
    assert SyncLink.objects.get(local_model="sale", local_id=sale.pk).remote_id == str(made.id)


def deal_writes(fake) -> int:
    """Calls that write a deal or its associations."""
    return sum(
        fake.calls(path)
        for path in (
            "/deals/batch/update",
            "/deals/batch/upsert",
            "/deals/contacts/batch/associate",
            "/deals/contacts/batch/archive",
        )
    )


def _big_deal_moved_to_bob(hubspot_connection, fake_hubspot, rep, admin_user):
    """Synced once, then "Big deal" moved in the CRM from Ann's customer to Bob's."""
    from sales.services import sale_update

    ann, bob, deal = seed(fake_hubspot, rep)
    run_sync(hubspot_connection)
    sale = Sale.objects.get(title="Big deal")
    bobs = Customer.objects.get(email="bob@b.example")
    sale_update(actor=admin_user, sale=sale, data={"customer": bobs})
    return ann, bob, deal, sale, bobs


def test_a_deal_moved_to_another_customer_moves_its_association_and_stays_moved(
    hubspot_connection, fake_hubspot, rep, admin_user
):
    ann, bob, deal, sale, bobs = _big_deal_moved_to_bob(
        hubspot_connection, fake_hubspot, rep, admin_user
    )
    run = run_sync(hubspot_connection)
    assert run.status == SyncRun.Status.SUCCEEDED, run.error
    assert run.counts["deals"]["updated"] == 1 and run.failures.count() == 0
    # HubSpot's deal now belongs to Bob's contact only, on both sides of the association.
    assert fake_hubspot.get("deals", deal).associations["contacts"] == {bob}
    assert deal not in fake_hubspot.get("contacts", ann).associations.get("deals", set())
    assert deal in fake_hubspot.get("contacts", bob).associations["deals"]
    link = SyncLink.objects.get(connection=hubspot_connection, remote_id=str(deal))
    assert link.synced_values["customer_id"] == str(bobs.pk)
    # The next sync pulls the deal (our own write) and finds nothing to do either way.
    writes, updated_at = deal_writes(fake_hubspot), Sale.objects.get(pk=sale.pk).updated_at
    run = run_sync(hubspot_connection)
    assert run.status == SyncRun.Status.SUCCEEDED, run.error
    sale.refresh_from_db()
    assert sale.customer_id == bobs.pk and sale.updated_at == updated_at
    assert run.counts["deals"]["updated"] == run.counts["deals"]["created"] == 0
    assert deal_writes(fake_hubspot) == writes
    assert fake_hubspot.get("deals", deal).associations["contacts"] == {bob}


def test_a_deal_moved_to_another_contact_in_hubspot_moves_to_that_customer(
    hubspot_connection, fake_hubspot, rep
):
    ann, bob, deal = seed(fake_hubspot, rep)
    run_sync(hubspot_connection)
    fake_hubspot.put("deals", {}, id=deal, associations={"contacts": [bob]})
    fake_hubspot.dissociate("deals", deal, "contacts", [ann])
    writes = deal_writes(fake_hubspot)
    run = run_sync(hubspot_connection)
    assert run.status == SyncRun.Status.SUCCEEDED, run.error
    sale = Sale.objects.get(title="Big deal")
    assert sale.customer.email == "bob@b.example"
    assert run.counts["deals"]["updated"] == 1
    assert deal_writes(fake_hubspot) == writes  # the pulled move is not pushed back
    assert fake_hubspot.get("deals", deal).associations["contacts"] == {bob}
    run = run_sync(hubspot_connection)
    assert Sale.objects.get(pk=sale.pk).customer.email == "bob@b.example"
    assert run.counts["deals"]["updated"] == 0 and deal_writes(fake_hubspot) == writes


def test_a_deal_with_several_contacts_keeps_its_customer_while_that_one_is_among_them(
    hubspot_connection, fake_hubspot, rep, admin_user
):
    """The CRM's deal has one customer, HubSpot's deal any number of contacts: the pull
    keeps the agreed customer (or the CRM's current one) while its contact is associated,
    takes the oldest linked contact otherwise; a move in the CRM replaces only the old
    customer's contact, leaving the others HubSpot's users added."""
    from sales.services import sale_update

    ann, bob, deal = seed(fake_hubspot, rep)
    cy = fake_hubspot.put("contacts", {"email": "cy@c.example", "firstname": "Cy"})
    run_sync(hubspot_connection)
    sale = Sale.objects.get(title="Big deal")
    anns, bobs, cys = (Customer.objects.get(email=e) for e in
                       ("ann@acme.example", "bob@b.example", "cy@c.example"))  # fmt: skip
    # Cy (a newer contact than Bob) is added in HubSpot, then Ann removed.
    fake_hubspot.put("deals", {"amount": "1300"}, id=deal, associations={"contacts": [cy]})
    run_sync(hubspot_connection)
    assert Sale.objects.get(pk=sale.pk).customer_id == anns.pk
    fake_hubspot.put("deals", {}, id=deal, associations={"contacts": [bob]})
    fake_hubspot.dissociate("deals", deal, "contacts", [ann])
    run_sync(hubspot_connection)
    assert Sale.objects.get(pk=sale.pk).customer_id == bobs.pk  # the oldest of Bob and Cy
    # Moved in the CRM to Cy, associated already: Bob's contact goes, Cy's stays.
    sale_update(actor=admin_user, sale=Sale.objects.get(pk=sale.pk), data={"customer": cys})
    run = run_sync(hubspot_connection)
    assert run.failures.count() == 0
    assert fake_hubspot.get("deals", deal).associations["contacts"] == {cy}
    run = run_sync(hubspot_connection)
    assert Sale.objects.get(pk=sale.pk).customer_id == cys.pk
    assert run.counts["deals"]["updated"] == 0


def test_a_move_whose_old_association_could_not_be_removed_is_sent_again_not_reverted(
    hubspot_connection, fake_hubspot, rep, admin_user
):
    from integrations.services.runs import sync_retry

    ann, bob, deal, sale, bobs = _big_deal_moved_to_bob(
        hubspot_connection, fake_hubspot, rep, admin_user
    )
    fake_hubspot.fail_next(400, path="/crm/v4/associations/deals/contacts/batch/archive")
    run = run_sync(hubspot_connection)
    failure = run.failures.get()
    assert failure.local_id == sale.pk and "Not dissociated" in failure.message
    assert fake_hubspot.get("deals", deal).associations["contacts"] == {ann, bob}
    # Meanwhile the pull finds both contacts, the agreed one among them: no move back.
    fake_hubspot.touch("deals", deal, {"amount": "99"})
    run_sync(hubspot_connection)
    assert Sale.objects.get(pk=sale.pk).customer_id == bobs.pk
    retry = sync_run_execute(run_id=sync_retry(actor=admin_user, run=run).pk)
    assert retry.status == SyncRun.Status.SUCCEEDED, retry.error
    assert fake_hubspot.get("deals", deal).associations["contacts"] == {bob}
    link = SyncLink.objects.get(connection=hubspot_connection, remote_id=str(deal))
    assert link.synced_values["customer_id"] == str(bobs.pk)


def test_a_deal_moved_to_a_customer_hubspot_lacks_fails_and_is_not_moved_back(
    hubspot_connection, fake_hubspot, rep, admin_user
):
    from customers.services import customer_create
    from sales.services import sale_update

    ann, _, deal = seed(fake_hubspot, rep)
    run_sync(hubspot_connection)
    sale = Sale.objects.get(title="Big deal")
    dee = customer_create(actor=admin_user, data={"name": "Dee", "email": "dee@d.example"})
    sale_update(actor=admin_user, sale=sale, data={"customer": dee, "amount": 7})
    # HubSpot refuses Dee's contact: the deal's move cannot go out in this run.
    fake_hubspot.fail_next(400, path="/crm/v3/objects/contacts/batch/upsert")
    run = run_sync(hubspot_connection)
    failure = run.failures.get(object_type="deals")
    assert (
        failure.local_id == sale.pk and "new customer is not synced as a contact" in failure.message
    )
    assert fake_hubspot.get("deals", deal).properties["amount"] == "7.00"  # the rest went out
    assert fake_hubspot.get("deals", deal).associations["contacts"] == {ann}
    run_sync(hubspot_connection)
    assert Sale.objects.get(pk=sale.pk).customer_id == dee.pk
