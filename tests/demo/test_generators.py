from collections import Counter, defaultdict
from datetime import timedelta

import pytest
from django.db.models import Count
from django.utils import timezone

from customers.models import Customer, Tag
from demo.generators import dataset_generate
from demo.profiles import BENCH_1M, CYCLE_DAYS
from leads.models import Factor, LeadActivity, ScoringRule
from sales.models import Sale, SaleActivity, StageChange, Task
from tests.factories import RepFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def rep_ids():
    return [RepFactory().pk for _ in range(3)]


def _assert_derived_columns_right():
    """What sale_create, sale_change_stage and sale_activity_add would have kept."""
    changes = defaultdict(list)
    for change in StageChange.objects.order_by("changed_at", "id"):
        changes[change.sale_id].append(change)
    newest_activity = defaultdict(lambda: None)
    for sale_id, at in SaleActivity.objects.values_list("sale_id", "occurred_at"):
        if newest_activity[sale_id] is None or at > newest_activity[sale_id]:
            newest_activity[sale_id] = at
    sales = list(Sale.objects.all())
    assert sales
    for sale in sales:
        path = changes[sale.pk]
        assert path, sale.pk
        assert path[0].from_status == "" and path[0].to_status == "NEW"
        assert path[0].changed_at == sale.created_at
        for before, after in zip(path, path[1:], strict=False):
            assert after.from_status == before.to_status
            assert before.left_at == after.changed_at
        assert path[-1].to_status == sale.status
        assert path[-1].left_at is None
        assert path[-1].changed_by_id == sale.assigned_to_id
        assert sale.stage_entered_at == path[-1].changed_at
        assert sale.furthest_stage_rank == Sale.funnel_rank(c.to_status for c in path)
        if sale.status in Sale.CLOSED_STATUSES:
            assert sale.closed_at == path[-1].changed_at
        else:
            assert sale.closed_at is None
        assert (sale.lost_reason != "") == (sale.status == "LOST")
        assert sale.last_activity_at == newest_activity[sale.pk]


def test_the_demo_profile_keeps_the_derived_columns_right(rep_ids):
    generated = dataset_generate(customers=120, deals=300, rep_ids=rep_ids, seed=1, batch=70)
    _assert_derived_columns_right()
    assert SaleActivity.objects.exists() and Sale.objects.filter(last_activity_at=None).exists()
    assert generated.deals == Sale.objects.count() == 300
    assert generated.stage_changes == StageChange.objects.count()
    assert generated.deal_activities == SaleActivity.objects.count()
    assert generated.tasks == Task.objects.count() > 0
    # Tasks only on open deals, for the deal's rep, about the deal's customer.
    for task in Task.objects.select_related("sale"):
        assert task.sale.status in Sale.OPEN_STATUSES
        assert task.assigned_to_id == task.sale.assigned_to_id == task.created_by_id
        assert task.customer_id == task.sale.customer_id


def test_the_1m_profile_keeps_the_derived_columns_right_and_its_distributions(rep_ids):
    now = timezone.now()
    dataset_generate(
        customers=400, deals=3000, rep_ids=rep_ids, seed=7, profile=BENCH_1M, now=now, batch=1000
    )
    _assert_derived_columns_right()
    # No activities, tasks or lead activities in the 1M set; no tags either.
    assert not SaleActivity.objects.exists() and not Task.objects.exists()
    assert not LeadActivity.objects.exists()
    assert not Customer.tags.through.objects.exists()
    sales = list(Sale.objects.select_related("customer"))
    statuses = Counter(sale.status for sale in sales)
    assert 0.35 < sum(statuses[s] for s in Sale.OPEN_STATUSES) / len(sales) < 0.45
    assert 0.30 < statuses["WON"] / len(sales) < 0.40
    assert set(Counter(sale.currency for sale in sales)) == {"USD", "EUR", "GBP"}
    assert 0.005 < sum(sale.amount is None for sale in sales) / len(sales) < 0.04
    owners = sum(sale.assigned_to_id == sale.customer.owner_id for sale in sales) / len(sales)
    assert 0.8 < owners < 0.9  # 80 % the owner's, and a third of the other 19 % by chance
    assert any(sale.assigned_to_id is None for sale in sales)
    for sale in sales:
        if sale.closed_at is None:
            assert now - timedelta(days=200) <= sale.created_at <= now
        else:
            assert now - timedelta(days=730) <= sale.closed_at <= now
            cycle = sale.closed_at - sale.created_at
            assert timedelta(days=CYCLE_DAYS[0]) <= cycle <= timedelta(days=CYCLE_DAYS[1])
    customers = Customer.objects.all()
    never = customers.filter(last_contact_date=None).count() / customers.count()
    assert 0.04 < never < 0.17
    oldest = (now - timedelta(days=400)).date()
    assert not customers.filter(last_contact_date__lt=oldest).exists()


def test_sizes_are_respected_in_any_batch_size(rep_ids):
    generated = dataset_generate(customers=37, deals=53, rep_ids=rep_ids, seed=3, batch=10)
    assert Customer.objects.count() == len(generated.customer_ids) == 37
    assert Sale.objects.count() == 53
    assert set(Sale.objects.values_list("customer_id", flat=True)) <= set(generated.customer_ids)
    assert set(Customer.objects.values_list("owner_id", flat=True)) <= set(rep_ids)
    # Every deal has its history: one stage change at least, one per stage passed.
    assert StageChange.objects.values("sale").distinct().count() == 53

    dataset_generate(customers=0, deals=0, rep_ids=[], seed=3)
    assert Customer.objects.count() == 37 and Sale.objects.count() == 53


def test_the_same_seed_gives_the_same_data_whatever_the_batch(rep_ids):
    chosen = [Tag.objects.create(name=name) for name in ("a", "b", "c")]

    def generate(batch):
        generated = dataset_generate(
            customers=60, deals=80, rep_ids=rep_ids, seed=5, tags=chosen, batch=batch
        )
        customers = list(
            Customer.objects.filter(pk__in=generated.customer_ids)
            .order_by("pk")
            .values_list("name", "company", "region", "lifecycle_stage", "owner_id")
        )
        tags = list(
            Customer.objects.filter(pk__in=generated.customer_ids)
            .annotate(n=Count("tags"))
            .order_by("pk")
            .values_list("n", flat=True)
        )
        deals = list(
            Sale.objects.filter(customer__in=generated.customer_ids)
            .order_by("pk")
            .values_list("title", "amount", "status", "assigned_to_id", "furthest_stage_rank")
        )
        return customers, tags, deals

    first = generate(batch=100)
    assert first == generate(batch=7)
    assert any(first[1]) and first[2]


def test_leads_get_activities_worth_the_engagement_rules(rep_ids):
    generated = dataset_generate(customers=200, deals=0, rep_ids=rep_ids, seed=2)
    impacts = dict(
        ScoringRule.objects.filter(factor=Factor.ENGAGEMENT).values_list("key", "points")
    )
    activities = list(LeadActivity.objects.select_related("customer"))
    assert activities and generated.lead_activities == len(activities)
    assert set(generated.lead_ids) == set(Customer.objects.leads().values_list("pk", flat=True))
    for activity in activities:
        assert activity.customer.lifecycle_stage == "lead"
        assert activity.score_impact == impacts.get(activity.activity_type, 0)


def test_deals_need_reps_and_customers():
    with pytest.raises(ValueError, match="reps"):
        dataset_generate(customers=5, deals=5, rep_ids=[], seed=1)
    rep = RepFactory()
    with pytest.raises(ValueError, match="customers"):
        dataset_generate(customers=0, deals=5, rep_ids=[rep.pk], seed=1)


def test_the_demo_profile_has_every_status(rep_ids):
    dataset_generate(customers=50, deals=200, rep_ids=rep_ids, seed=11)
    assert set(Sale.objects.values_list("status", flat=True)) == set(Sale.Status.values)


def test_most_demo_customers_consented_on_a_form_and_some_never_said(rep_ids):
    from customers.email_gate import EmailKind, with_email_refusal

    dataset_generate(customers=400, deals=0, rep_ids=rep_ids, seed=4)
    states = Counter(Customer.objects.values_list("email_consent", flat=True))
    assert set(states) == {"granted", "unknown"}
    assert 0.7 < states["granted"] / 400 < 0.9
    granted = Customer.objects.filter(email_consent="granted")
    assert not granted.exclude(email_consent_source="form").exists()
    assert not granted.filter(email_consent_at__isnull=True).exists()
    # With MARKETING_REQUIRES_CONSENT the gate lets the consenting ones through only.
    refused = with_email_refusal(Customer.objects.all(), EmailKind.MARKETING).exclude(
        email_refusal=None
    )
    assert refused.count() == states["unknown"]


def test_every_generated_email_and_website_passes_djangos_validators(rep_ids):
    """Names keep their letters (Müller), addresses are ASCII: Django's EmailValidator
    refuses a non-ASCII local part (hugo.müller.3@...), so the forms would refuse to save
    a demo customer unchanged."""
    from django.core.validators import EmailValidator, URLValidator

    dataset_generate(customers=300, deals=0, rep_ids=rep_ids, seed=3)
    assert Customer.objects.filter(name__contains="Müller").exists()
    validate_email, validate_url = EmailValidator(), URLValidator()
    for email, website in Customer.objects.values_list("email", "website"):
        validate_email(email)
        validate_url(website)
    assert Customer.objects.filter(email__contains=".muller.").exists()
