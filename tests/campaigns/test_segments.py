from datetime import UTC, date, datetime, timedelta

import pytest
from django.utils import timezone

from campaigns.segments import criteria_clean, criteria_filter, segment_customers
from crm.errors import ValidationFailed
from customers.models import Customer
from leads.models import LeadScore
from tests.factories import CustomerFactory, TagFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(rep, teammate, other_rep, teams):
    """Six customers that differ in every field a segment can filter on."""
    today = timezone.localdate()
    vip, gold, silver = TagFactory(name="vip"), TagFactory(name="gold"), TagFactory(name="silver")
    made = {
        "ann": CustomerFactory(
            owner=rep,
            engagement_level="VIP",
            region="emea",
            lifecycle_stage="customer",
            industry="software",
            company_size=10,
            last_contact_date=today,
            tags=[vip, gold],
        ),
        "bob": CustomerFactory(
            owner=rep,
            engagement_level="HIGH",
            region="apac",
            lifecycle_stage="prospect",
            industry="finance",
            company_size=50,
            last_contact_date=today - timedelta(days=30),
            tags=[gold],
        ),
        "cy": CustomerFactory(
            owner=teammate,
            engagement_level="LOW",
            region="north_america",
            lifecycle_stage="lead",
            industry="retail",
            company_size=500,
            last_contact_date=today - timedelta(days=31),
            tags=[silver],
        ),
        "di": CustomerFactory(
            owner=teammate,
            engagement_level="MEDIUM",
            region="latam",
            lifecycle_stage="churned",
            industry="energy",
            company_size=None,
            last_contact_date=None,
        ),
        "ed": CustomerFactory(
            owner=other_rep,
            engagement_level="VIP",
            region="emea",
            lifecycle_stage="lead",
            industry="software",
            company_size=5000,
            last_contact_date=today - timedelta(days=365),
        ),
        "fay": CustomerFactory(
            owner=None,
            engagement_level="HIGH",
            region="",
            lifecycle_stage="lead",
            industry="",
            company_size=51,
            last_contact_date=today - timedelta(days=1),
        ),
    }
    for name, total, grade in [("ann", 90, "hot"), ("bob", 50, "warm"), ("cy", 49, "warm")]:
        LeadScore.objects.create(customer=made[name], total_score=total, grade=grade)
    LeadScore.objects.create(customer=made["ed"], total_score=0, grade="cold")
    made["tags"] = {"vip": vip, "gold": gold, "silver": silver}
    return made


def _names(people, user, criteria):
    by_pk = {c.pk: name for name, c in people.items() if isinstance(c, Customer)}
    queryset = segment_customers(user=user, criteria=criteria_clean(criteria))
    return sorted(by_pk[pk] for pk in queryset.values_list("pk", flat=True))


@pytest.mark.parametrize(
    "criteria, expected",
    [
        ({}, ["ann", "bob", "cy", "di", "ed", "fay"]),
        ({"engagement_level": ["VIP"]}, ["ann", "ed"]),
        ({"engagement_level": ["HIGH", "LOW"]}, ["bob", "cy", "fay"]),
        ({"engagement_level": "MEDIUM"}, ["di"]),
        ({"region": ["emea"]}, ["ann", "ed"]),
        ({"region": ["apac", "latam"]}, ["bob", "di"]),
        ({"lifecycle_stage": ["lead"]}, ["cy", "ed", "fay"]),
        ({"lifecycle_stage": ["churned", "customer"]}, ["ann", "di"]),
        ({"industry": ["software"]}, ["ann", "ed"]),
        ({"industry": ["finance", "retail"]}, ["bob", "cy"]),
        ({"grade": ["hot"]}, ["ann"]),
        ({"grade": ["warm", "cold"]}, ["bob", "cy", "ed"]),
        ({"score_min": 50}, ["ann", "bob"]),
        ({"score_max": 49}, ["cy", "ed"]),
        ({"score_min": 49, "score_max": 50}, ["bob", "cy"]),
        ({"score_min": 0}, ["ann", "bob", "cy", "ed"]),  # unscored leads match no score rule
        ({"score_min": 90, "score_max": 90}, ["ann"]),
        ({"company_size_min": 50}, ["bob", "cy", "ed", "fay"]),
        ({"company_size_max": 50}, ["ann", "bob"]),
        ({"company_size_min": 50, "company_size_max": 500}, ["bob", "cy", "fay"]),
        (
            {"engagement_level": ["VIP"], "region": ["emea"], "industry": ["software"]},
            ["ann", "ed"],
        ),
        ({"engagement_level": ["VIP"], "company_size_max": 100}, ["ann"]),
        ({"grade": ["warm"], "score_min": 50}, ["bob"]),
    ],
)
def test_each_criterion_filters(people, admin_user, criteria, expected):
    assert _names(people, admin_user, criteria) == expected


def test_tags_match_any_and_a_customer_with_two_of_them_counts_once(people, admin_user):
    tags = people["tags"]
    criteria = criteria_clean({"tags": [tags["vip"].pk, tags["gold"].pk]})
    queryset = segment_customers(user=admin_user, criteria=criteria)
    assert queryset.count() == 2  # ann has both tags, bob one
    assert sorted(queryset.values_list("pk", flat=True)) == sorted(
        [people["ann"].pk, people["bob"].pk]
    )
    assert _names(people, admin_user, {"tags": [tags["silver"].pk]}) == ["cy"]
    assert _names(people, admin_user, {"tags": tags["vip"].pk}) == ["ann"]


def test_owner_filters_by_owner_ids(people, admin_user, rep, teammate):
    assert _names(people, admin_user, {"owner": [rep.pk]}) == ["ann", "bob"]
    assert _names(people, admin_user, {"owner": [rep.pk, teammate.pk]}) == [
        "ann",
        "bob",
        "cy",
        "di",
    ]


def test_last_contact_within_days_includes_the_edge_day(people, admin_user):
    assert _names(people, admin_user, {"last_contact_within_days": 0}) == ["ann"]
    assert _names(people, admin_user, {"last_contact_within_days": 1}) == ["ann", "fay"]
    assert _names(people, admin_user, {"last_contact_within_days": 30}) == ["ann", "bob", "fay"]
    assert _names(people, admin_user, {"last_contact_within_days": 31}) == [
        "ann",
        "bob",
        "cy",
        "fay",
    ]


def test_last_contact_not_within_days_is_the_exact_complement_with_never_contacted(
    people, admin_user
):
    assert _names(people, admin_user, {"last_contact_not_within_days": 30}) == ["cy", "di", "ed"]
    assert _names(people, admin_user, {"last_contact_not_within_days": 31}) == ["di", "ed"]
    everyone = _names(people, admin_user, {})
    for days in (0, 1, 30, 31, 364, 365, 366):
        within = _names(people, admin_user, {"last_contact_within_days": days})
        outside = _names(people, admin_user, {"last_contact_not_within_days": days})
        assert sorted(within + outside) == everyone, days
        assert not set(within) & set(outside)


def test_days_count_from_the_local_date_not_the_utc_one(settings, admin_user, rep):
    settings.TIME_ZONE = "America/Los_Angeles"
    # 03:00 UTC on 10 March is still 9 March in Los Angeles.
    now = datetime(2026, 3, 10, 3, 0, tzinfo=UTC)
    yesterday = CustomerFactory(owner=rep, last_contact_date=date(2026, 3, 8))
    today = CustomerFactory(owner=rep, last_contact_date=date(2026, 3, 9))
    within_one_day = Customer.objects.filter(
        criteria_filter({"last_contact_within_days": 1}, now=now)
    )
    assert set(within_one_day) == {yesterday, today}
    not_today = Customer.objects.filter(
        criteria_filter({"last_contact_not_within_days": 0}, now=now)
    )
    assert set(not_today) == {yesterday}


# Checking criteria -----------------------------------------------------------------------


def _refused(criteria):
    with pytest.raises(ValidationFailed) as error:
        criteria_clean(criteria)
    return error.value


@pytest.mark.parametrize("criteria", [None, [], "region=emea", 3, [{"region": "emea"}]])
def test_criteria_must_be_an_object(criteria):
    assert _refused(criteria).message == "Segment criteria must be a JSON object."


def test_unknown_keys_are_named_never_ignored():
    error = _refused({"regoin": ["emea"], "region": ["emea"], "colour": "red"})
    assert error.message == "Unknown segment criteria: colour, regoin."


@pytest.mark.parametrize(
    "key, value, words",
    [
        ("engagement_level", ["high"], "Engagement level: unknown value(s) ['high']"),
        ("engagement_level", "SUPER", "Engagement level: unknown value(s) ['SUPER']"),
        ("region", ["emea", "mars"], "Region: unknown value(s) ['mars']"),
        ("region", [["emea"]], "Region: unknown value(s)"),
        ("region", [{"x": 1}], "Region: unknown value(s)"),
        ("region", [None], "Region: unknown value(s) [None]"),
        ("lifecycle_stage", ["won"], "Lifecycle stage: unknown value(s) ['won']"),
        ("industry", ["mining"], "Industry: unknown value(s) ['mining']"),
        ("grade", ["boiling"], "Lead grade: unknown value(s) ['boiling']"),
        ("score_min", "fifty", "Minimum lead score must be a whole number"),
        ("score_min", True, "Minimum lead score must be a whole number"),
        ("score_min", 1.5, "Minimum lead score must be a whole number"),
        ("score_min", "1.5", "Minimum lead score must be a whole number"),
        ("score_min", [50], "Minimum lead score must be a whole number"),
        ("score_min", {"gte": 50}, "Minimum lead score must be a whole number"),
        ("score_min", float("inf"), "Minimum lead score must be a whole number"),
        ("score_min", float("nan"), "Minimum lead score must be a whole number"),
        ("score_min", -1, "Minimum lead score must be between 0 and 100"),
        ("score_max", 101, "Maximum lead score must be between 0 and 100"),
        ("last_contact_within_days", -1, "Last contact within (days) must be between"),
        ("last_contact_within_days", 10**30, "Last contact within (days) must be between"),
        ("last_contact_not_within_days", False, "No contact within (days) must be a whole"),
        ("company_size_min", -5, "Minimum company size must be between 0"),
        ("company_size_max", "9" * 5000, "Maximum company size must be a whole number"),
        ("tags", ["a"], "Tags must be a whole number"),
        ("tags", [True], "Tags must be a whole number"),
        ("tags", [1.5], "Tags must be a whole number"),
        ("tags", [987654], "Tags: no tag with id [987654]"),
        ("tags", [-1], "Tags: no tag with id [-1]"),
        ("tags", [2**70], "Tags: no tag with id"),
        ("owner", [987654], "Owner: no user with id [987654]"),
        ("owner", ["x"], "Owner must be a whole number"),
        ("owner", [2**63], "Owner: no user with id"),
    ],
)
def test_bad_values_are_refused_naming_the_key(key, value, words):
    error = _refused({key: value})
    assert words in error.message
    assert error.field == key


def test_min_above_max_is_refused():
    error = _refused({"score_min": 60, "score_max": 50})
    assert error.message == "Minimum lead score is above maximum lead score."
    assert error.field == "score_min"
    error = _refused({"company_size_min": 100, "company_size_max": 99})
    assert error.field == "company_size_min"
    assert criteria_clean({"score_min": 50, "score_max": 50}) == {"score_min": 50, "score_max": 50}


def test_empty_values_are_dropped_and_good_ones_normalised(rep, teammate):
    tag = TagFactory(name="vip")
    cleaned = criteria_clean(
        {
            "region": [],
            "grade": None,
            "score_min": "",
            "industry": "",
            "engagement_level": ["VIP", "HIGH", "VIP"],
            "score_max": "80",
            "company_size_min": 10.0,
            "tags": [tag.pk, str(tag.pk)],
            "owner": teammate.pk,
            "lifecycle_stage": "lead",
        }
    )
    assert cleaned == {
        "engagement_level": ["HIGH", "VIP"],
        "score_max": 80,
        "company_size_min": 10,
        "tags": [tag.pk],
        "owner": [teammate.pk],
        "lifecycle_stage": ["lead"],
    }
    assert criteria_clean({}) == {}


def test_every_criterion_together_is_still_one_query(
    people, admin_user, manager, rep, django_assert_num_queries
):
    criteria = criteria_clean(
        {
            "engagement_level": ["VIP", "HIGH"],
            "region": ["emea", "apac"],
            "lifecycle_stage": ["customer", "prospect"],
            "industry": ["software", "finance"],
            "tags": [people["tags"]["vip"].pk, people["tags"]["gold"].pk],
            "score_min": 10,
            "score_max": 95,
            "grade": ["hot", "warm"],
            "last_contact_within_days": 60,
            "last_contact_not_within_days": 0,
            "company_size_min": 1,
            "company_size_max": 1000,
            "owner": [rep.pk],
        }
    )
    for user in (admin_user, manager, rep):
        queryset = segment_customers(user=user, criteria=criteria)  # team looked up here
        with django_assert_num_queries(1):
            assert queryset.count() == 1  # bob
        with django_assert_num_queries(1):
            assert list(queryset.values_list("pk", flat=True)) == [people["bob"].pk]


def test_count_is_one_query(people, admin_user, django_assert_num_queries):
    criteria = criteria_clean({"tags": [people["tags"]["gold"].pk], "grade": ["hot", "warm"]})
    queryset = segment_customers(user=admin_user, criteria=criteria)
    with django_assert_num_queries(1):
        assert queryset.count() == 2


# Visibility ------------------------------------------------------------------------------


def test_a_rep_gets_only_their_own_customers(people, rep, other_rep):
    assert _names(people, rep, {}) == ["ann", "bob"]
    assert _names(people, rep, {"region": ["emea"]}) == ["ann"]
    assert _names(people, other_rep, {"region": ["emea"]}) == ["ed"]


def test_a_rep_also_gets_customers_shared_with_them(people, rep):
    people["ed"].shared_with.add(rep)
    rep = type(rep).objects.get(pk=rep.pk)  # fresh: visibility is cached per user object
    assert _names(people, rep, {"region": ["emea"]}) == ["ann", "ed"]


def test_a_manager_gets_only_their_teams_customers(people, manager, other_manager):
    assert _names(people, manager, {}) == ["ann", "bob", "cy", "di"]
    assert _names(people, manager, {"engagement_level": ["VIP"]}) == ["ann"]
    assert _names(people, other_manager, {"engagement_level": ["VIP"]}) == ["ed"]


def test_owner_criteria_cannot_widen_what_a_user_sees(people, rep, other_rep):
    assert _names(people, rep, {"owner": [other_rep.pk]}) == []


def test_an_admin_gets_everyone(people, admin_user):
    assert len(_names(people, admin_user, {})) == 6


def test_email_consent_is_a_criterion_checked_like_the_others(rep, teams):
    granted = CustomerFactory(owner=rep, email_consent="granted")
    CustomerFactory(owner=rep, email_consent="unknown")
    withdrawn = CustomerFactory(owner=rep, email_consent="withdrawn")
    criteria = criteria_clean({"email_consent": ["withdrawn", "granted", "granted"]})
    assert criteria == {"email_consent": ["granted", "withdrawn"]}
    found = segment_customers(user=rep, criteria=criteria)
    assert set(found) == {granted, withdrawn}
    error = _refused({"email_consent": ["yes"]})
    assert error.message == "Email consent: unknown value(s) ['yes']."
    assert error.field == "email_consent"
