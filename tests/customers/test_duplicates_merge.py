"""Merging two customers and undoing it (customers.duplicates.services)."""

from datetime import timedelta

import pytest
from django.apps import apps
from django.utils import timezone

from campaigns.models import CampaignRun, EmailMessage, Sequence, SequenceEnrollment
from crm.errors import PermissionDenied, ValidationFailed
from crm.models import AuditEvent
from customers.duplicates import relations, services
from customers.duplicates.relations import RELATIONS, Handling
from customers.models import Customer, CustomerMerge, DuplicatePair
from documents.models import DocumentAccess
from leads.models import LeadScore
from tests.customers.duplicates_helpers import pair_of, related_rows
from tests.factories import CustomerFactory, EmailCampaignFactory, SaleFactory, TagFactory

pytestmark = pytest.mark.django_db


def _row_ids(rows: dict[str, list]) -> dict[str, set[int]]:
    return {key: {row.pk for row in items} for key, items in rows.items()}


def test_every_relation_to_customer_is_handled_by_the_merge():
    """Walks Django's model graph: a new model pointing at Customer fails here until
    customers.duplicates.relations says what a merge does with its rows."""
    found = {relations.relation_key(r) for r in relations.customer_relations()}
    assert relations.unhandled_relations() == [], "add them to relations.RELATIONS"
    assert set(RELATIONS) == found, "RELATIONS names a relation that no longer exists"
    from customers.models import Customer as Model

    many = {f.name for f in Model._meta.many_to_many}
    assert many == set(relations.MANY_TO_MANY)


def test_the_builders_cover_every_moved_and_kept_relation(rep, teams):
    customer = CustomerFactory(owner=rep)
    built = set(related_rows(customer, actor=rep))
    wanted = {
        key
        for key, handling in RELATIONS.items()
        if handling != Handling.REBUILD and not key.startswith("customers.")
    }
    assert wanted <= built | {"customers.CustomerNote.customer"}, wanted - built


def test_a_merge_moves_every_kind_of_related_row(rep, teams):
    survivor = CustomerFactory(owner=rep, name="Ada Lovelace", phone="")
    other = CustomerFactory(owner=rep, name="Ada  Lovelace", phone="+44 20 7946 0000")
    mine = related_rows(survivor, actor=rep)
    theirs = related_rows(other, actor=rep)
    access = DocumentAccess.objects.get(document=theirs["documents.Document.customer"][0])
    pair = pair_of(survivor, other)
    merge = services.customers_merge(
        actor=rep, survivor_id=survivor.pk, other_id=other.pk, pair=pair
    )

    assert not Customer.objects.filter(pk=other.pk).exists()
    for key, rows in theirs.items():
        label, fk = key.rsplit(".", 1)
        model = apps.get_model(label)
        if RELATIONS[key] == Handling.MOVE:
            owners = set(
                model._base_manager.filter(pk__in=[r.pk for r in rows]).values_list(fk, flat=True)
            )
            assert owners == {survivor.pk}, key
            assert merge.moved[key] == [r.pk for r in rows], key
    # The survivor's own lead score stays (and is recomputed); the other's is kept aside.
    assert LeadScore.objects.filter(customer=survivor).count() == 1
    assert DocumentAccess.objects.get(pk=access.pk).document.customer_id == survivor.pk
    assert survivor.sales.count() == 2
    assert not DuplicatePair.objects.filter(pk=pair.pk).exists()
    survivor.refresh_from_db()
    assert survivor.phone == "+44 20 7946 0000"  # the survivor had none
    assert set(mine) <= set(RELATIONS)


def test_a_merge_and_an_undo_each_leave_one_audit_entry_with_both_snapshots(rep, teams):
    survivor = CustomerFactory(owner=rep, company="Acme")
    other = CustomerFactory(owner=rep, company="ACME Corporation")
    before = AuditEvent.objects.count()
    merge = services.customers_merge(
        actor=rep,
        survivor_id=survivor.pk,
        other_id=other.pk,
        choices={"company": other.pk},
    )
    assert AuditEvent.objects.count() == before + 1
    event = AuditEvent.objects.latest("id")
    assert event.verb == "merge" and event.actor == rep
    assert event.object_id == str(survivor.pk)
    assert event.changes["merged_customer"]["email"] == other.email
    assert event.changes["survivor_before"]["company"] == "Acme"
    assert event.changes["survivor_after"]["company"] == "ACME Corporation"

    services.customer_merge_undo(actor=rep, merge=merge)
    assert AuditEvent.objects.count() == before + 2
    event = AuditEvent.objects.latest("id")
    assert event.verb == "unmerge" and event.object_id == str(other.pk)


def test_undo_restores_exactly_and_leaves_new_rows_on_the_survivor(rep, teammate, teams):
    tag_a, tag_b = TagFactory(name="vip"), TagFactory(name="partner")
    survivor = CustomerFactory(owner=rep, tags=[tag_a], notes="Prefers calls")
    other = CustomerFactory(
        owner=rep, tags=[tag_b], shared_with=[teammate], notes="Met at the fair", phone="123 4567"
    )
    theirs = _row_ids(related_rows(other, actor=rep))
    pair_of(survivor, other, status=DuplicatePair.Status.DISMISSED, confidence=70)
    third = CustomerFactory(owner=rep)
    pair_of(other, third, confidence=65)
    other_fields = Customer.objects.filter(pk=other.pk).values().get()
    survivor_fields = Customer.objects.filter(pk=survivor.pk).values().get()

    merge = services.customers_merge(actor=rep, survivor_id=survivor.pk, other_id=other.pk)
    survivor.refresh_from_db()
    assert survivor.notes == "Prefers calls\n\nMet at the fair"
    assert set(survivor.tags.values_list("name", flat=True)) == {"vip", "partner"}
    new_sale = SaleFactory(customer=survivor, assigned_to=rep)  # made after the merge

    restored = services.customer_merge_undo(actor=rep, merge=merge)

    assert restored.pk == other.pk
    now_fields = Customer.objects.filter(pk=other.pk).values().get()
    for name in ("updated_at",):
        now_fields.pop(name), other_fields.pop(name)
    assert now_fields == other_fields
    assert set(restored.tags.values_list("name", flat=True)) == {"partner"}
    assert list(restored.shared_with.all()) == [teammate]
    survivor.refresh_from_db()
    after = Customer.objects.filter(pk=survivor.pk).values().get()
    after.pop("updated_at"), survivor_fields.pop("updated_at")
    assert after == survivor_fields
    assert set(survivor.tags.values_list("name", flat=True)) == {"vip"}
    for key, ids in theirs.items():
        label, fk = key.rsplit(".", 1)
        model = apps.get_model(label)
        assert set(model._base_manager.filter(pk__in=ids).values_list(fk, flat=True)) == {
            other.pk
        }, key
    assert new_sale.__class__.objects.get(pk=new_sale.pk).customer_id == survivor.pk
    assert DuplicatePair.objects.get(customer_b=other).status == DuplicatePair.Status.DISMISSED
    assert DuplicatePair.objects.filter(customer_a=other, customer_b=third).exists()
    merge.refresh_from_db()
    assert merge.undone_at and merge.undone_by == rep
    with pytest.raises(ValidationFailed):
        services.customer_merge_undo(actor=rep, merge=merge)


def test_rows_that_cannot_share_the_survivor_come_back_on_undo(rep, teams):
    survivor, other = CustomerFactory(owner=rep), CustomerFactory(owner=rep)
    campaign = EmailCampaignFactory(created_by=rep)
    run = CampaignRun.objects.create(campaign=campaign, run_key="once")
    sequence = Sequence.objects.create(name="Welcome")
    messages = [
        EmailMessage.objects.create(campaign=campaign, run=run, customer=c, email=c.email)
        for c in (survivor, other)
    ]
    enrolments = [
        SequenceEnrollment.objects.create(sequence=sequence, customer=c) for c in (survivor, other)
    ]
    merge = services.customers_merge(actor=rep, survivor_id=survivor.pk, other_id=other.pk)
    assert EmailMessage.objects.get(pk=messages[1].pk).customer_id is None  # detached
    assert not SequenceEnrollment.objects.filter(pk=enrolments[1].pk).exists()  # kept aside
    services.customer_merge_undo(actor=rep, merge=merge)
    assert EmailMessage.objects.get(pk=messages[1].pk).customer_id == other.pk
    assert SequenceEnrollment.objects.get(pk=enrolments[1].pk).customer_id == other.pk


def test_a_merge_beyond_the_users_reach_is_refused(rep, other_rep, manager, teams):
    mine = CustomerFactory(owner=rep)
    theirs = CustomerFactory(owner=other_rep, shared_with=[rep])  # seen, not changeable
    for actor in (rep, manager):
        with pytest.raises(PermissionDenied):
            services.customers_merge(actor=actor, survivor_id=mine.pk, other_id=theirs.pk)
    assert Customer.objects.filter(pk__in=[mine.pk, theirs.pk]).count() == 2
    assert not CustomerMerge.objects.exists()


def test_a_manager_merges_within_the_team_and_an_admin_anywhere(
    rep, teammate, other_rep, manager, admin_user, teams
):
    a, b = CustomerFactory(owner=rep), CustomerFactory(owner=teammate)
    services.customers_merge(actor=manager, survivor_id=a.pk, other_id=b.pk)
    c = CustomerFactory(owner=other_rep)
    services.customers_merge(actor=admin_user, survivor_id=a.pk, other_id=c.pk)
    assert Customer.objects.filter(pk__in=[b.pk, c.pk]).count() == 0


def test_undo_is_refused_after_the_window_and_to_someone_out_of_reach(
    rep, other_rep, teams, settings
):
    survivor, other = CustomerFactory(owner=rep), CustomerFactory(owner=rep)
    merge = services.customers_merge(actor=rep, survivor_id=survivor.pk, other_id=other.pk)
    with pytest.raises(PermissionDenied):
        services.customer_merge_undo(actor=other_rep, merge=merge)
    CustomerMerge.objects.filter(pk=merge.pk).update(
        merged_at=timezone.now() - timedelta(days=settings.DUPLICATE_UNDO_DAYS + 1)
    )
    with pytest.raises(ValidationFailed, match="days"):
        services.customer_merge_undo(actor=rep, merge=merge)


def test_default_choices_keep_the_survivors_values_but_fill_its_gaps(rep, teams):
    survivor = CustomerFactory(
        owner=rep, phone="", email_consent="granted", company="Acme", last_contact_date=None
    )
    other = CustomerFactory(
        owner=rep,
        phone="555 0100",
        email_consent="withdrawn",
        company="Acme Inc",
        last_contact_date=timezone.localdate(),
    )
    choices = services.merge_default_choices(survivor=survivor, other=other)
    assert choices["phone"] == other.pk
    assert choices["email_consent"] == other.pk  # the least permissive
    assert choices["company"] == survivor.pk
    assert choices["last_contact_date"] == other.pk
    assert "industry" not in choices  # the same on both


def test_bulk_merge_merges_the_pairs_above_the_confidence_keeping_the_older(
    admin_user, rep, teams, django_capture_on_commit_callbacks
):
    old, new = CustomerFactory(owner=rep), CustomerFactory(owner=rep)
    Customer.objects.filter(pk=new.pk).update(created_at=old.created_at - timedelta(days=9))
    high = pair_of(old, new, confidence=97)
    low_a, low_b = CustomerFactory(owner=rep), CustomerFactory(owner=rep)
    pair_of(low_a, low_b, confidence=70)
    with django_capture_on_commit_callbacks(execute=True):
        job = services.bulk_merge_start(actor=admin_user, min_confidence=90)
    job.refresh_from_db()
    assert job.status == "done" and job.merged_count == 1 and job.percent == 100
    assert not Customer.objects.filter(pk=old.pk).exists()  # the newer id, created earlier
    merge = CustomerMerge.objects.get()
    assert merge.survivor_id == new.pk and merge.confidence == high.confidence
    assert Customer.objects.filter(pk__in=[low_a.pk, low_b.pk]).count() == 2


def test_bulk_merge_is_for_admins(manager, teams):
    with pytest.raises(PermissionDenied):
        services.bulk_merge_start(actor=manager, min_confidence=90)


def test_chained_merges_undo_in_reverse_order(rep, teams):
    a, b, c = (CustomerFactory(owner=rep) for _ in range(3))
    sale = SaleFactory(customer=c, assigned_to=rep)
    first = services.customers_merge(actor=rep, survivor_id=b.pk, other_id=c.pk)
    second = services.customers_merge(actor=rep, survivor_id=a.pk, other_id=b.pk)
    assert CustomerMerge.objects.get(pk=first.pk).survivor_id == a.pk  # followed its survivor
    assert sale.__class__.objects.get(pk=sale.pk).customer_id == a.pk
    services.customer_merge_undo(actor=rep, merge=second)
    assert CustomerMerge.objects.get(pk=first.pk).survivor_id == b.pk
    assert sale.__class__.objects.get(pk=sale.pk).customer_id == b.pk
    services.customer_merge_undo(actor=rep, merge=first)
    assert sale.__class__.objects.get(pk=sale.pk).customer_id == c.pk
    assert Customer.objects.filter(pk__in=[a.pk, b.pk, c.pk]).count() == 3


def test_the_survivors_lead_score_is_recomputed_with_the_moved_activities(
    rep, teams, django_capture_on_commit_callbacks
):
    from leads.models import LeadActivity

    survivor = CustomerFactory(owner=rep, lifecycle_stage="lead")
    other = CustomerFactory(owner=rep, lifecycle_stage="lead")
    for kind in ("meeting_scheduled", "call_answered", "form_submit", "download"):
        LeadActivity.objects.create(customer=other, activity_type=kind, score_impact=10)
    with django_capture_on_commit_callbacks(execute=True):
        services.customers_merge(actor=rep, survivor_id=survivor.pk, other_id=other.pk)
    score = LeadScore.objects.get(customer=survivor)
    assert score.engagement_score > 0
    assert score.last_calculated is not None
