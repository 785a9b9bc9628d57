"""customers.email_gate: one rule for one customer and for a whole queryset."""

import pytest
from django.db.models.functions import Upper

from customers.email_gate import (
    EmailKind,
    Refusal,
    email_refusal,
    refusals_summary,
    with_email_refusal,
)
from customers.models import Customer, Suppression
from tests.factories import CustomerFactory, unreachable_customers

pytestmark = pytest.mark.django_db
KINDS = [EmailKind.MARKETING, EmailKind.ONE_TO_ONE]


@pytest.mark.parametrize("kind", KINDS)
def test_every_unreachable_address_is_refused_with_its_reason_for_every_kind(kind):
    for customer, refusal in unreachable_customers().values():
        assert email_refusal(customer, kind) == refusal, customer.email


@pytest.mark.parametrize(
    "reason, refusal",
    [("invalid", "invalid_address"), ("unsubscribe", "unsubscribed"), ("manual", "suppressed")],
)
def test_every_suppression_reason_refuses(reason, refusal):
    customer = CustomerFactory(email="x@y.example")
    Suppression.objects.create(email="x@y.example", reason=reason)
    assert email_refusal(customer, EmailKind.ONE_TO_ONE) == refusal


def test_suppression_matches_the_address_in_any_case():
    customer = CustomerFactory(email="mixed@case.example")
    Customer.objects.filter(pk=customer.pk).update(email=Upper("email"))
    Suppression.objects.create(email="mixed@case.example", reason="bounce")
    assert email_refusal(customer, EmailKind.MARKETING) == Refusal.BOUNCED


@pytest.mark.parametrize(
    "address, refusal",
    [
        ("", "no_address"),
        ("not-an-address", "invalid_address"),
        ("a b@c.example", "invalid_address"),
    ],
)
def test_missing_or_malformed_addresses_are_refused(address, refusal):
    customer = CustomerFactory()
    Customer.objects.filter(pk=customer.pk).update(email=address)
    for kind in KINDS:
        assert email_refusal(customer, kind) == refusal


def test_missing_consent_is_refused_for_marketing_only_when_the_setting_is_on(settings):
    unknown = CustomerFactory(email_consent="unknown")
    granted = CustomerFactory(email_consent="granted")
    settings.MARKETING_REQUIRES_CONSENT = True
    assert email_refusal(unknown, EmailKind.MARKETING) == Refusal.NO_CONSENT
    assert email_refusal(unknown, EmailKind.ONE_TO_ONE) is None
    assert email_refusal(granted, EmailKind.MARKETING) is None
    settings.MARKETING_REQUIRES_CONSENT = False
    assert email_refusal(unknown, EmailKind.MARKETING) is None
    withdrawn = CustomerFactory(email_consent="withdrawn")
    assert email_refusal(withdrawn, EmailKind.MARKETING) == Refusal.WITHDRAWN  # always


def test_the_queryset_annotation_is_the_same_rule_in_one_query(django_assert_num_queries):
    expected = {c.pk: r for c, r in unreachable_customers().values()}
    expected[CustomerFactory(email_consent="unknown").pk] = "no_consent"
    expected[CustomerFactory(email_consent="granted").pk] = None
    with django_assert_num_queries(1):
        found = dict(
            with_email_refusal(Customer.objects.all(), EmailKind.MARKETING).values_list(
                "pk", "email_refusal"
            )
        )
    assert found == expected
    for pk, refusal in expected.items():
        assert email_refusal(Customer.objects.get(pk=pk), EmailKind.MARKETING) == refusal


def test_an_unknown_kind_is_a_programming_error():
    with pytest.raises(ValueError):
        email_refusal(CustomerFactory(), "newsletter")


def test_refusals_are_summed_into_the_groups_a_sender_reads():
    total, groups = refusals_summary(
        {"no_consent": 270, "withdrawn": 10, "bounced": 20, "spam_report": 10, "invalid_address": 2}
    )
    assert total == 312
    assert groups == [("no consent", 280), ("suppressed", 30), ("invalid", 2)]
