"""sales.forecasting.probability: win probabilities, in SQL and with their reasons."""

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from sales.forecasting.probability import (
    deal_probability,
    probability_model,
)
from sales.models import Sale, StageSetting
from sales.services.forecast import forecast_statistics_compute
from tests.factories import StageChangeFactory
from tests.sales.forecasting.helpers import (
    NOW,
    closed_history,
    make_deal,
    probabilities_in_sql,
)

pytestmark = pytest.mark.django_db


# Win probability --------------------------------------------------------------------------


def test_stage_base_rates_come_from_the_stage_settings(rep):
    for status in Sale.OPEN_STATUSES:
        make_deal(rep, status, title=status)
    assert probabilities_in_sql() == {
        "NEW": Decimal(10),
        "CONTACTED": Decimal(25),
        "PROPOSAL": Decimal(50),
        "NEGOTIATION": Decimal(75),
    }
    StageSetting.objects.filter(status="PROPOSAL").update(base_probability=60)
    assert probabilities_in_sql()["PROPOSAL"] == Decimal(60)


def test_deals_older_than_90_days_lose_a_fifth_of_their_probability(rep):
    make_deal(rep, "PROPOSAL", title="89 days", age_days=89)
    make_deal(rep, "PROPOSAL", title="91 days", age_days=91)
    probabilities = probabilities_in_sql()
    assert probabilities["89 days"] == Decimal(50)
    assert probabilities["91 days"] == Decimal(40)  # relative: 50 x 0.8, not 50 - 20


def test_engagement_raises_high_and_vip_and_lowers_low(rep):
    for level in ("LOW", "MEDIUM", "HIGH", "VIP"):
        make_deal(rep, "PROPOSAL", title=level, engagement=level)
    make_deal(rep, "PROPOSAL", title="old and low", engagement="LOW", age_days=120)
    assert probabilities_in_sql() == {
        "LOW": Decimal(40),
        "MEDIUM": Decimal(50),
        "HIGH": Decimal(60),
        "VIP": Decimal(60),
        "old and low": Decimal(32),
    }


def test_probability_is_capped_at_95(rep):
    StageSetting.objects.filter(status="NEGOTIATION").update(base_probability=80)
    make_deal(rep, "NEGOTIATION", title="high", engagement="HIGH")  # 96 before the cap
    make_deal(rep, "NEGOTIATION", title="medium")
    probabilities = probabilities_in_sql()
    assert probabilities["high"] == Decimal(95)
    assert probabilities["medium"] == Decimal(80)


def test_a_probability_set_by_hand_is_used_as_it_is(rep):
    make_deal(rep, "NEW", title="by hand", probability=40, engagement="HIGH", age_days=200)
    make_deal(rep, "NEGOTIATION", title="certain", probability=100, engagement="HIGH")
    probabilities = probabilities_in_sql()
    assert probabilities["by hand"] == Decimal(40)
    assert probabilities["certain"] == Decimal(100)


def test_probability_reasons_explain_the_number_the_database_computes(rep):
    StageSetting.objects.filter(status="NEGOTIATION").update(base_probability=80)
    plain = make_deal(rep, "PROPOSAL", title="plain")
    old_high = make_deal(rep, "NEGOTIATION", title="old high", engagement="HIGH", age_days=120)
    capped = make_deal(rep, "NEGOTIATION", title="capped", engagement="VIP")
    low = make_deal(rep, "CONTACTED", title="low", engagement="LOW")
    by_hand = make_deal(rep, "NEW", title="by hand", probability=40)
    won = make_deal(rep, "WON", title="won")

    assert deal_probability(plain, now=NOW)[1] == ["Stage base rate (Proposal) 50%"]
    assert deal_probability(old_high, now=NOW)[1] == [
        "Stage base rate (Negotiation) 80%",
        "Older than 90 days: ×0.8",
        "High engagement: ×1.2",
    ]
    assert deal_probability(capped, now=NOW)[1] == [
        "Stage base rate (Negotiation) 80%",
        "High engagement (VIP): ×1.2",
        "Capped at 95%",
    ]
    assert deal_probability(low, now=NOW)[1] == [
        "Stage base rate (Contacted) 25%",
        "Low engagement: ×0.8",
    ]
    assert deal_probability(by_hand, now=NOW)[1] == ["Set by hand: 40%"]
    assert deal_probability(won, now=NOW) == (None, [])

    in_sql = probabilities_in_sql()
    for sale in (plain, old_high, capped, low, by_hand):
        assert deal_probability(sale, now=NOW)[0] == in_sql[sale.title]
    assert in_sql["old high"] == Decimal("76.8")


def test_historical_stage_rates_take_over_at_200_closed_deals(rep, other_rep):
    for status in Sale.OPEN_STATUSES:
        make_deal(rep, status, title=status)
    closed_history(199, other_rep)
    forecast_statistics_compute()
    model = probability_model()
    assert not model.historical and model.closed_deals == 199 and model.computed_at
    assert probabilities_in_sql()["NEW"] == Decimal(10)
    assert probabilities_in_sql()["PROPOSAL"] == Decimal(50)

    make_deal(other_rep, "LOST", title="the 200th")
    StageChangeFactory(sale=Sale.objects.get(title="the 200th"), to_status="NEW")
    # Read as the last computation stored them: the 200th counts from the next one.
    assert not probability_model().historical
    forecast_statistics_compute()
    model = probability_model()
    assert model.historical and model.closed_deals == 200
    assert model.rates == {
        "NEW": Decimal("30.00"),  # 60 won of 200 that entered NEW
        "CONTACTED": Decimal(25),  # no closed deal entered it: the base rate stays
        "PROPOSAL": Decimal("60.00"),  # 60 of 100, the re-entry counted once
        "NEGOTIATION": Decimal(75),
    }
    probabilities = probabilities_in_sql()
    assert probabilities["NEW"] == Decimal(30)
    assert probabilities["PROPOSAL"] == Decimal(60)
    assert probabilities["CONTACTED"] == Decimal(25)
    (reason,) = deal_probability(Sale.objects.get(title="NEW"), now=NOW)[1]
    assert reason == "Historical stage-to-win rate (New) 30%"


def test_without_statistics_the_base_rates_are_used(rep, other_rep):
    closed_history(300, other_rep)  # enough history, but never computed
    model = probability_model()
    assert not model.historical and model.closed_deals == 0 and model.computed_at is None
    assert model.rates["NEW"] == Decimal(10)


def test_the_model_reads_two_small_tables_and_no_stage_history(rep, other_rep):
    closed_history(200, other_rep)
    forecast_statistics_compute()
    with CaptureQueriesContext(connection) as queries:
        model = probability_model()
    assert model.historical and len(queries) == 2  # stage settings, stored rates
    assert not [q for q in queries.captured_queries if "sales_stagechange" in q["sql"]]
    assert not [q for q in queries.captured_queries if "sales_sale" in q["sql"]]
