"""Finding duplicates: each blocking rule, the scoring, "not a duplicate" remembered."""

import pytest

from customers.duplicates import matching, services
from customers.duplicates.models import DuplicateJob, DuplicatePair
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def _scan() -> DuplicateJob:
    job = DuplicateJob.objects.create(kind=DuplicateJob.Kind.SCAN)
    services.duplicate_scan_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == DuplicateJob.Status.DONE, job.error
    return job


def _pair(a, b) -> DuplicatePair | None:
    first, second = sorted([a.pk, b.pk])
    return DuplicatePair.objects.filter(customer_a=first, customer_b=second).first()


def _customer(**fields):
    fields.setdefault("phone", "")
    fields.setdefault("company", "")
    return CustomerFactory(**fields)


def test_same_normalized_email_gmail_dots_and_plus_tags(rep):
    a = _customer(owner=rep, name="Jane Doe", email="jane.doe@gmail.com")
    b = _customer(owner=rep, name="J. Doe", email="JaneDoe+crm@googlemail.com")
    _scan()
    pair = _pair(a, b)
    assert pair is not None and pair.confidence >= 90
    assert "same email" in pair.reasons


def test_same_phone_digits_in_other_formats(rep):
    a = _customer(
        owner=rep, name="Ravi Shankar", email="ravi@one.example", phone="+1 (415) 555-0142"
    )
    b = _customer(owner=rep, name="Ravi Shankr", email="rs@two.example", phone="415.555.0142")
    _scan()
    pair = _pair(a, b)
    assert pair is not None
    assert pair.reasons[0] == "same phone"
    assert any(reason.startswith("names ") and "alike" in reason for reason in pair.reasons)


def test_same_domain_and_similar_names(rep):
    a = _customer(owner=rep, name="Katarzyna Nowak", email="k.nowak@northwind.example")
    b = _customer(owner=rep, name="Katarzyna Nowak ", email="katarzyna@northwind.example")
    c = _customer(owner=rep, name="Tomasz Zielinski", email="tz@northwind.example")
    _scan()
    pair = _pair(a, b)
    assert pair is not None and "same email domain" in pair.reasons and "same name" in pair.reasons
    assert _pair(a, c) is None


def test_similar_company_names_and_names_despite_another_email(rep):
    a = _customer(owner=rep, name="Émile Zola", email="emile@acme.example", company="Acme Corp")
    b = _customer(
        owner=rep, name="emile zola", email="ez1840@gmail.com", company="ACME Corporation"
    )
    _scan()
    pair = _pair(a, b)
    assert pair is not None
    assert "same company" in pair.reasons and "same name" in pair.reasons


def test_strangers_sharing_a_phone_by_chance_are_not_a_pair(rep):
    a = _customer(
        owner=rep, name="Olu Adeyemi", email="o@a.example", phone="555 123 4567", company="Kestrel"
    )
    b = _customer(
        owner=rep, name="Marta Lind", email="m@b.example", phone="5551234567", company="Bluefin"
    )
    _scan()
    assert _pair(a, b) is None


def test_scoring_orders_stronger_evidence_first(rep):
    base = _customer(
        owner=rep,
        name="Henrik Larsson",
        email="henrik@volvo.example",
        phone="0701234567",
        company="Volvo",
    )
    phone_and_name = _customer(
        owner=rep,
        name="Henrik Larson",
        email="hl@else.example",
        phone="070 123 45 67",
        company="Volvo AB",
    )
    name_and_company = _customer(
        owner=rep, name="Henrik Larsen", email="h.larsen@gmail.com", company="Volvo"
    )
    _scan()
    strong, weaker = _pair(base, phone_and_name), _pair(base, name_and_company)
    assert strong and weaker
    assert strong.confidence > weaker.confidence
    assert strong.confidence >= 80


def test_not_a_duplicate_stays_dismissed_after_another_scan(rep, manager, teams):
    a = _customer(owner=rep, name="Li Wei", email="li.wei@gmail.com")
    b = _customer(owner=rep, name="Li Wei", email="liwei+news@gmail.com")
    _scan()
    pair = _pair(a, b)
    services.duplicate_pair_dismiss(actor=manager, pair=pair)
    _scan()
    pair.refresh_from_db()
    assert pair.status == DuplicatePair.Status.DISMISSED
    assert pair.dismissed_by == manager
    assert DuplicatePair.objects.count() == 1


def test_an_open_pair_no_longer_found_goes(rep):
    a = _customer(owner=rep, name="Ana Souza", email="ana@x.example", phone="11 5555 0001")
    b = _customer(owner=rep, name="Ana Sousa", email="as@y.example", phone="1155550001")
    _scan()
    assert _pair(a, b)
    b.phone = "999 0000 111"
    b.name = "Bruno Costa"
    b.save()
    job = _scan()
    assert _pair(a, b) is None
    assert job.pair_count == 0


def test_scan_progress_counts_its_steps(rep):
    job = _scan()
    assert job.steps_total == 2 + services.SCAN_PARTS + 1
    assert job.percent == 100


def test_a_second_scan_now_joins_the_one_queued(manager, teams, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks():
        first = services.duplicate_scan_start(actor=manager)
        second = services.duplicate_scan_start(actor=manager)
    assert first == second


def test_matches_for_a_new_customer_use_the_same_rules(rep):
    existing = _customer(
        owner=rep, name="Grace Hopper", email="grace@navy.example", phone="+1 202 555 0199"
    )
    found = matching.matches_for(
        {"name": "Grace Hoper", "email": "ghopper@gmail.com", "phone": "(202) 555-0199"}
    )
    assert [pk for pk, _, _ in found] == [existing.pk]
    assert "same phone" in found[0][2]
    assert matching.matches_for({"name": "Alan Turing", "email": "alan@x.example"}) == []


def test_numbered_names_are_different_records(rep):
    a = _customer(owner=rep, name="Corner Shop 12", email="shop12@chain.example", company="Chain")
    b = _customer(owner=rep, name="Corner Shop 13", email="shop13@chain.example", company="Chain")
    _scan()
    assert _pair(a, b) is None


def test_the_same_address_name_at_another_domain_counts(rep):
    a = _customer(
        owner=rep,
        name="Jake Camargo",
        email="jake.camargo@giannelli.example",
        company="Giannelli Corp",
    )
    b = _customer(
        owner=rep, name="Jake Camagro", email="jake.camargo@gmail.com", company="GIANNELLI CORP"
    )
    _scan()
    pair = _pair(a, b)
    assert pair is not None and "same email name" in pair.reasons


def test_the_nightly_scan_is_scheduled_with_beat(settings, django_capture_on_commit_callbacks):
    from crm.celery import app
    from customers.duplicates.tasks import duplicates_scan_nightly

    entry = settings.CELERY_BEAT_SCHEDULE["customers-duplicates-nightly-scan"]
    assert entry["task"] == duplicates_scan_nightly.name in app.tasks
    with django_capture_on_commit_callbacks(execute=False):
        duplicates_scan_nightly()
    job = DuplicateJob.objects.get()
    assert job.status == DuplicateJob.Status.QUEUED and job.started_by is None
