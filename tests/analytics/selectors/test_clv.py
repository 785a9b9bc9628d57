"""analytics.selectors.clv: customer lifetime value, by hand."""

from decimal import Decimal

import pytest

from analytics.selectors import clv
from analytics.selectors.clv import (
    customers_with_clv,
    expected_lifespan_years,
    high_clv_customers,
    segment_clv,
)
from customers.models import Customer
from tests.analytics.selectors.helpers import (
    NOW,
    won_deal,
)
from tests.factories import CustomerFactory, SaleFactory

pytestmark = pytest.mark.django_db


def test_clv_with_no_data_is_empty(rep, teams):
    result = segment_clv(user=rep, now=NOW)
    assert (result["customers"], result["by_currency"]) == (0, [])
    assert result["lifespan_years"] == 3.0


def test_clv_of_one_customer_by_hand(rep, teams):
    customer = CustomerFactory(owner=rep)
    won_deal(customer, "1000", days_ago=730)  # first win two years ago
    won_deal(customer, "3000", days_ago=10)
    # average 2000 x (2 wins / 2 years = 1 a year) x 3 years = 6000
    (row,) = customers_with_clv(user=rep, lifespan_years=3.0, now=NOW)
    assert row.won_count == 2 and row.won_average == Decimal("2000")
    assert row.clv == pytest.approx(6000, rel=1e-3)


def test_one_recent_win_is_not_extrapolated_beyond_once_a_year(rep, teams):
    customer = CustomerFactory(owner=rep)
    won_deal(customer, "500", days_ago=5)
    (row,) = customers_with_clv(user=rep, lifespan_years=3.0, now=NOW)
    assert row.purchases_per_year == pytest.approx(1.0) and row.clv == pytest.approx(1500)


def test_a_customer_never_has_a_clv_below_what_it_paid(rep, teams):
    """A single purchase older than the lifespan keeps its value: the customer's lifespan
    is at least its own so far (and so the value does not decay by the second)."""
    old_buyer = CustomerFactory(owner=rep)
    won_deal(old_buyer, "1000", days_ago=4 * 365)
    (row,) = customers_with_clv(user=rep, lifespan_years=3.0, now=NOW)
    assert row.clv == pytest.approx(1000)
    (top,) = high_clv_customers(user=rep, lifespan_years=3.0, now=NOW)
    assert top.clv == pytest.approx(1000)


def test_deals_without_amount_or_not_won_do_not_count(rep, teams):
    customer = CustomerFactory(owner=rep)
    won_deal(customer, None, days_ago=100)
    SaleFactory(customer=customer, assigned_to=rep, status="NEW", amount=Decimal("9999"))
    (row,) = customers_with_clv(user=rep, lifespan_years=3.0, now=NOW)
    assert row.won_count == 0 and row.clv == 0


def test_lifespan_is_measured_from_enough_churned_customers(rep, teams, monkeypatch):
    monkeypatch.setattr(clv, "MIN_CHURNED_FOR_LIFESPAN", 2)
    for _ in range(2):
        customer = CustomerFactory(owner=rep, lifecycle_stage=Customer.LifecycleStage.CHURNED)
        won_deal(customer, "100", days_ago=0, created_days_ago=730)  # active 2 years
    years, source = expected_lifespan_years()
    assert years == pytest.approx(730 / 365.25, rel=1e-3) and "2 churned" in source


def test_lifespan_is_everyones_and_at_least_a_year(rep, other_rep, teams, monkeypatch):
    """Measured over all churned customers, so a customer's CLV is the same for every viewer;
    a short one counts as a year, so a buyer's CLV is never below one purchase."""
    monkeypatch.setattr(clv, "MIN_CHURNED_FOR_LIFESPAN", 2)
    for owner in (rep, other_rep):  # the rep sees only one of them
        customer = CustomerFactory(owner=owner, lifecycle_stage=Customer.LifecycleStage.CHURNED)
        won_deal(customer, "100", days_ago=0, created_days_ago=73)  # active a fifth of a year
    years, source = expected_lifespan_years()
    assert years == 1.0 and "2 churned" in source and "counted as a year" in source
    buyer = CustomerFactory(owner=rep)
    won_deal(buyer, "500", days_ago=5)
    rows = {c.pk: c for c in high_clv_customers(user=rep, now=NOW)}
    assert rows[buyer.pk].clv == pytest.approx(500)


def test_high_clv_customers_are_ordered(rep, teams):
    small, big = CustomerFactory(owner=rep), CustomerFactory(owner=rep)
    won_deal(small, "100", days_ago=400)
    won_deal(big, "10000", days_ago=400)
    assert [c.pk for c in high_clv_customers(user=rep, now=NOW)] == [big.pk, small.pk]


def test_high_clv_and_the_book_agree_with_the_per_customer_clv(rep, teams):
    """buyers_with_clv groups the won deals alone; its CLV must be customers_with_clv's."""
    customers = [CustomerFactory(owner=rep) for _ in range(4)]
    won_deal(customers[0], "1000", days_ago=730)
    won_deal(customers[0], "3000", days_ago=10)
    won_deal(customers[1], "500", days_ago=5)
    won_deal(customers[2], "8000", days_ago=200)
    won_deal(customers[2], None, days_ago=20)  # no amount: not a purchase
    # customers[3] never bought
    expected = {c.pk: c.clv for c in customers_with_clv(user=rep, lifespan_years=3.0,
                                                                  now=NOW)}  # fmt: skip
    top = high_clv_customers(user=rep, limit=2, lifespan_years=3.0, now=NOW)
    assert [c.pk for c in top] == [customers[2].pk, customers[0].pk]
    assert [c.clv for c in top] == pytest.approx([expected[c.pk] for c in top])
    assert top[1].won_count == 2 and top[1].won_average == Decimal("2000")
    book = segment_clv(user=rep, lifespan=(3.0, "given"), now=NOW)
    assert book["customers"] == 4
    (usd,) = book["by_currency"]
    assert usd["currency"] == "USD" and usd["buyers"] == 3
    assert usd["total"] == pytest.approx(sum(expected.values()))
    assert usd["average"] == pytest.approx(sum(expected.values()) / 3)  # per buyer
    subset = Customer.objects.filter(pk__in=[customers[1].pk, customers[3].pk])
    part = segment_clv(user=rep, customers=subset, lifespan=(3.0, "given"), now=NOW)
    assert part["customers"] == 2 and part["by_currency"][0]["buyers"] == 1
    assert part["by_currency"][0]["average"] == pytest.approx(expected[customers[1].pk])


def test_clv_never_adds_currencies(rep, teams):
    """A customer buying in USD and EUR has a CLV in each; the book has one per currency."""
    both, euro_only = CustomerFactory(owner=rep), CustomerFactory(owner=rep)
    won_deal(both, "1000", days_ago=400)
    won_deal(both, "900", days_ago=400, currency="EUR")
    won_deal(euro_only, "5000", days_ago=400, currency="EUR")
    top = high_clv_customers(user=rep, lifespan_years=3.0, now=NOW)
    # per currency: 3 years x (amount / 1.1 years since the first win)
    assert [(c.pk, c.currency) for c in top] == [
        (euro_only.pk, "EUR"), (both.pk, "EUR"), (both.pk, "USD")]  # fmt: skip
    years = 400 / 365.25
    assert [c.clv for c in top] == pytest.approx([5000 / years * 3, 900 / years * 3,
                                                   1000 / years * 3])  # fmt: skip
    (usd,) = customers_with_clv(user=rep, lifespan_years=3.0, now=NOW).filter(pk=both.pk)
    assert usd.won_count == 1 and usd.clv == pytest.approx(1000 / years * 3)
    book = segment_clv(user=rep, lifespan=(3.0, "given"), now=NOW)
    assert [(row["currency"], row["buyers"]) for row in book["by_currency"]] == [
        ("EUR", 2), ("USD", 1)]  # fmt: skip
    assert book["by_currency"][0]["total"] == pytest.approx(5900 / years * 3)


def test_a_segment_of_customers_without_wins_has_no_clv(rep, teams):
    CustomerFactory(owner=rep)
    book = segment_clv(user=rep, lifespan=(3.0, "given"), now=NOW)
    assert (book["customers"], book["by_currency"]) == (1, [])
