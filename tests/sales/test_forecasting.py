from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from crm.errors import PermissionDenied, ValidationFailed
from crm.models import Team
from crm.permissions.forecast import forecast_scopes
from sales.forecasting.probability import (
    deal_probability,
    probability_model,
    win_probability_expression,
)
from sales.forecasting.selectors import calibration, forecast, forecast_period, forecast_vs_actual
from sales.models import ForecastSnapshot, Sale, StageChange, StageSetting
from sales.services.forecast import forecast_snapshots_take
from sales.tasks import forecast_snapshots
from tests.factories import CustomerFactory, SaleFactory, StageChangeFactory

pytestmark = pytest.mark.django_db

TODAY = date(2026, 3, 10)
NOW = timezone.make_aware(datetime(2026, 3, 10, 12, 0))


def _deal(
    owner, status="NEW", amount="1000.00", *, engagement="MEDIUM", age_days=10, now=NOW, **fields
):
    """An open (or closed) deal of `owner` on a customer of the given engagement, created
    `age_days` before `now`, closing 5 days after it unless told otherwise."""
    fields.setdefault("expected_close_date", timezone.localdate(now) + timedelta(days=5))
    if status in Sale.CLOSED_STATUSES:
        fields.setdefault("closed_at", now)
    return SaleFactory(
        customer=CustomerFactory(owner=owner, engagement_level=engagement),
        assigned_to=owner,
        status=status,
        amount=Decimal(amount) if amount is not None else None,
        created_at=now - timedelta(days=age_days),
        **fields,
    )


def _probabilities(now=NOW) -> dict[str, Decimal]:
    annotated = Sale.objects.annotate(p=win_probability_expression(now))
    return dict(annotated.values_list("title", "p"))


def _usd(result) -> dict:
    (row,) = [row for row in result["currencies"] if row["currency"] == "USD"]
    return row


# Win probability ---------------------------------------------------------------------------


def test_stage_base_rates_come_from_the_stage_settings(rep):
    for status in Sale.OPEN_STATUSES:
        _deal(rep, status, title=status)
    assert _probabilities() == {
        "NEW": Decimal(10),
        "CONTACTED": Decimal(25),
        "PROPOSAL": Decimal(50),
        "NEGOTIATION": Decimal(75),
    }
    StageSetting.objects.filter(status="PROPOSAL").update(base_probability=60)
    assert _probabilities()["PROPOSAL"] == Decimal(60)


def test_deals_older_than_90_days_lose_a_fifth_of_their_probability(rep):
    _deal(rep, "PROPOSAL", title="89 days", age_days=89)
    _deal(rep, "PROPOSAL", title="91 days", age_days=91)
    probabilities = _probabilities()
    assert probabilities["89 days"] == Decimal(50)
    assert probabilities["91 days"] == Decimal(40)  # relative: 50 x 0.8, not 50 - 20


def test_engagement_raises_high_and_vip_and_lowers_low(rep):
    for level in ("LOW", "MEDIUM", "HIGH", "VIP"):
        _deal(rep, "PROPOSAL", title=level, engagement=level)
    _deal(rep, "PROPOSAL", title="old and low", engagement="LOW", age_days=120)
    assert _probabilities() == {
        "LOW": Decimal(40),
        "MEDIUM": Decimal(50),
        "HIGH": Decimal(60),
        "VIP": Decimal(60),
        "old and low": Decimal(32),
    }


def test_probability_is_capped_at_95(rep):
    StageSetting.objects.filter(status="NEGOTIATION").update(base_probability=80)
    _deal(rep, "NEGOTIATION", title="high", engagement="HIGH")  # 96 before the cap
    _deal(rep, "NEGOTIATION", title="medium")
    probabilities = _probabilities()
    assert probabilities["high"] == Decimal(95)
    assert probabilities["medium"] == Decimal(80)


def test_a_probability_set_by_hand_is_used_as_it_is(rep):
    _deal(rep, "NEW", title="by hand", probability=40, engagement="HIGH", age_days=200)
    _deal(rep, "NEGOTIATION", title="certain", probability=100, engagement="HIGH")
    probabilities = _probabilities()
    assert probabilities["by hand"] == Decimal(40)
    assert probabilities["certain"] == Decimal(100)


def test_probability_reasons_explain_the_number_the_database_computes(rep):
    StageSetting.objects.filter(status="NEGOTIATION").update(base_probability=80)
    plain = _deal(rep, "PROPOSAL", title="plain")
    old_high = _deal(rep, "NEGOTIATION", title="old high", engagement="HIGH", age_days=120)
    capped = _deal(rep, "NEGOTIATION", title="capped", engagement="VIP")
    low = _deal(rep, "CONTACTED", title="low", engagement="LOW")
    by_hand = _deal(rep, "NEW", title="by hand", probability=40)
    won = _deal(rep, "WON", title="won")

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

    in_sql = _probabilities()
    for sale in (plain, old_high, capped, low, by_hand):
        assert deal_probability(sale, now=NOW)[0] == in_sql[sale.title]
    assert in_sql["old high"] == Decimal("76.8")


def _closed_history(count: int, owner) -> None:
    """`count` closed deals: 60 won (entered NEW and PROPOSAL, one of them PROPOSAL twice),
    40 lost after PROPOSAL, the rest lost in NEW. NEW: 60 of `count` won; PROPOSAL: 60 of
    100; nobody entered CONTACTED or NEGOTIATION."""
    customer = CustomerFactory(owner=owner)
    kinds = ["won"] * 60 + ["lost_proposal"] * 40 + ["lost_new"] * (count - 100)
    sales = Sale.objects.bulk_create(
        Sale(
            title=f"closed {i}",
            customer=customer,
            assigned_to=owner,
            amount=Decimal(100),
            status=Sale.Status.WON if kind == "won" else Sale.Status.LOST,
            closed_at=NOW - timedelta(days=1),
        )
        for i, kind in enumerate(kinds)
    )
    changes = []
    for sale, kind in zip(sales, kinds, strict=True):
        stages = ["NEW"] if kind == "lost_new" else ["NEW", "PROPOSAL"]
        if sale.title == "closed 0":
            stages.append("PROPOSAL")  # re-entered: still one deal that entered PROPOSAL
        changes += [
            StageChange(sale=sale, to_status=stage, changed_at=NOW - timedelta(days=5))
            for stage in stages
        ]
        changes.append(
            StageChange(sale=sale, to_status=sale.status, changed_at=NOW - timedelta(days=1))
        )
    StageChange.objects.bulk_create(changes)


def test_historical_stage_rates_take_over_at_200_closed_deals(rep, other_rep):
    for status in Sale.OPEN_STATUSES:
        _deal(rep, status, title=status)
    _closed_history(199, other_rep)
    model = probability_model()
    assert not model.historical and model.closed_deals == 199
    assert _probabilities()["NEW"] == Decimal(10)
    assert _probabilities()["PROPOSAL"] == Decimal(50)

    _deal(other_rep, "LOST", title="the 200th")
    StageChangeFactory(sale=Sale.objects.get(title="the 200th"), to_status="NEW")
    model = probability_model()
    assert model.historical and model.closed_deals == 200
    assert model.rates == {
        "NEW": Decimal("30.00"),  # 60 won of 200 that entered NEW
        "CONTACTED": Decimal(25),  # no closed deal entered it: the base rate stays
        "PROPOSAL": Decimal("60.00"),  # 60 of 100, the re-entry counted once
        "NEGOTIATION": Decimal(75),
    }
    probabilities = _probabilities()
    assert probabilities["NEW"] == Decimal(30)
    assert probabilities["PROPOSAL"] == Decimal(60)
    assert probabilities["CONTACTED"] == Decimal(25)
    (reason,) = deal_probability(Sale.objects.get(title="NEW"), now=NOW)[1]
    assert reason == "Historical stage-to-win rate (New) 30%"


# The forecast ------------------------------------------------------------------------------


@pytest.fixture
def forecast_fixture(rep, other_rep, teams):
    """Period "30" from TODAY: 2026-03-10 to 2026-04-08, both included."""
    _deal(rep, "PROPOSAL", "1000.00", expected_close_date=date(2026, 3, 15))  # 50: best case
    _deal(rep, "NEGOTIATION", "2000.00", engagement="HIGH",
          expected_close_date=date(2026, 3, 31))  # 90: commit  # fmt: skip
    _deal(rep, "NEW", "500.00", engagement="LOW", age_days=100,
          expected_close_date=date(2026, 4, 2))  # 6.4: pipeline  # fmt: skip
    _deal(rep, "CONTACTED", None, expected_close_date=date(2026, 4, 5))  # 25, no amount
    _deal(rep, "PROPOSAL", "333.33", probability=70,
          expected_close_date=date(2026, 4, 8))  # by hand: commit  # fmt: skip
    # Not in the forecast:
    _deal(rep, "PROPOSAL", "10000.00", expected_close_date=date(2026, 4, 9))  # after
    _deal(rep, "PROPOSAL", "10000.00", expected_close_date=date(2026, 3, 9))  # before
    _deal(rep, "PROPOSAL", "10000.00", expected_close_date=None)  # undated
    _deal(rep, "WON", "10000.00", expected_close_date=date(2026, 3, 20))  # closed
    _deal(other_rep, "PROPOSAL", "10000.00", expected_close_date=date(2026, 3, 20))
    # Another rep's deal on a customer `rep` owns: visible to rep, but not rep's forecast.
    SaleFactory(customer=CustomerFactory(owner=rep), assigned_to=other_rep, amount=10000,
                status="NEW", expected_close_date=date(2026, 3, 20))  # fmt: skip


def test_forecast_sums_match_the_hand_computed_fixture(rep, forecast_fixture):
    result = forecast(user=rep, scope="me", period="30", today=TODAY, now=NOW)
    assert result["period"].start == date(2026, 3, 10)
    assert result["period"].end == date(2026, 4, 8)
    assert result["undated_count"] == 1
    assert [row["currency"] for row in result["currencies"]] == ["USD"]
    usd = _usd(result)
    assert usd["deal_count"] == 5
    assert usd["pipeline_value"] == Decimal("3833.33")
    # 500 + 1800 + 32 + 0 + 233.331
    assert usd["weighted_value"] == Decimal("2565.33")
    categories = usd["categories"]
    assert (categories["commit"]["count"], categories["commit"]["value"]) == (2, Decimal("2333.33"))
    assert (categories["best_case"]["count"], categories["best_case"]["value"]) == (
        1,
        Decimal("1000.00"),
    )
    assert (categories["pipeline"]["count"], categories["pipeline"]["value"]) == (
        2,
        Decimal("500.00"),
    )
    weighted = {key: category["weighted"] for key, category in categories.items()}
    assert weighted == {
        "commit": Decimal("2033.33"),  # 1800 + 233.331
        "best_case": Decimal("500.00"),
        "pipeline": Decimal("32.00"),
    }
    assert usd["commit_value"] == Decimal("2333.33")
    assert usd["best_case_value"] == Decimal("1000.00")
    months = [
        (m["month"], m["deal_count"], m["pipeline_value"], m["weighted_value"])
        for m in usd["months"]
    ]
    assert months == [
        (date(2026, 3, 1), 2, Decimal("3000.00"), Decimal("2300.00")),
        (date(2026, 4, 1), 3, Decimal("833.33"), Decimal("265.33")),
    ]


def test_forecast_keeps_each_currency_apart(rep):
    _deal(rep, "PROPOSAL", "1000.00")
    _deal(rep, "NEGOTIATION", "400.00", currency="EUR")
    _deal(rep, "NEW", "100.00", currency="EUR")
    result = forecast(user=rep, scope="me", period="30", today=TODAY, now=NOW)
    rows = {row["currency"]: row for row in result["currencies"]}
    assert set(rows) == {"USD", "EUR"}
    assert (rows["USD"]["deal_count"], rows["USD"]["pipeline_value"]) == (1, Decimal("1000.00"))
    assert rows["USD"]["weighted_value"] == Decimal("500.00")
    assert (rows["EUR"]["deal_count"], rows["EUR"]["pipeline_value"]) == (2, Decimal("500.00"))
    assert rows["EUR"]["weighted_value"] == Decimal("310.00")  # 300 + 10
    assert [row["currency"] for row in result["currencies"]] == ["EUR", "USD"]  # most deals
    assert result["deal_count"] == 3


def test_periods_are_30_60_90_days_from_today_or_the_calendar_quarter():
    assert forecast_period("60", today=TODAY).end == date(2026, 5, 8)
    assert forecast_period(90, today=TODAY).end == date(2026, 6, 7)
    quarter = forecast_period("quarter", today=TODAY)
    assert (quarter.start, quarter.end) == (date(2026, 1, 1), date(2026, 3, 31))
    december = forecast_period("quarter", today=date(2026, 12, 31))
    assert (december.start, december.end) == (date(2026, 10, 1), date(2026, 12, 31))
    with pytest.raises(ValidationFailed):
        forecast_period("45", today=TODAY)


def test_quarter_forecast_includes_the_past_days_of_the_quarter(rep):
    _deal(rep, "PROPOSAL", "1000.00", expected_close_date=date(2026, 1, 5))
    _deal(rep, "PROPOSAL", "1000.00", expected_close_date=date(2026, 4, 1))
    result = forecast(user=rep, scope="me", period="quarter", today=TODAY, now=NOW)
    assert _usd(result)["deal_count"] == 1


# Visibility --------------------------------------------------------------------------------


def test_a_reps_forecast_never_includes_another_reps_deals(rep, other_rep, forecast_fixture):
    result = forecast(user=rep, scope="me", period="30", today=TODAY, now=NOW)
    assert _usd(result)["pipeline_value"] == Decimal("3833.33")  # no 10,000 deal of other_rep
    other = forecast(user=other_rep, scope="me", period="30", today=TODAY, now=NOW)
    assert _usd(other)["deal_count"] == 2
    for scope in ("all", "1", str(Team.objects.get(name="North").pk)):
        with pytest.raises(PermissionDenied):
            forecast(user=rep, scope=scope, period="30", today=TODAY)


def test_a_managers_forecast_covers_only_their_teams(
    manager, rep, teammate, other_rep, teams, admin_user
):
    _deal(rep, "PROPOSAL", "1000.00")
    _deal(teammate, "PROPOSAL", "2000.00")
    _deal(manager, "PROPOSAL", "4000.00")
    _deal(other_rep, "PROPOSAL", "8000.00")
    SaleFactory(assigned_to=None, amount=16000, status="PROPOSAL",
                expected_close_date=TODAY + timedelta(days=3))  # fmt: skip

    def pipeline(user, scope):
        result = forecast(user=user, scope=scope, period="30", today=TODAY, now=NOW)
        return _usd(result)["pipeline_value"] if result["currencies"] else Decimal(0)

    mine, other = teams["mine"].pk, teams["other"].pk
    assert pipeline(manager, mine) == Decimal("3000.00")
    assert pipeline(manager, "all") == Decimal("7000.00")  # the team and the manager's own
    assert pipeline(manager, "me") == Decimal("4000.00")
    with pytest.raises(PermissionDenied):
        pipeline(manager, other)
    assert pipeline(admin_user, other) == Decimal("8000.00")
    assert pipeline(admin_user, "all") == Decimal("31000.00")  # unassigned deals too
    assert [s.key for s in forecast_scopes(manager)] == ["me", str(mine), "all"]


# Snapshots ---------------------------------------------------------------------------------


def _snapshots() -> dict[tuple[str, str], ForecastSnapshot]:
    return {(s.scope_key, s.currency): s for s in ForecastSnapshot.objects.all()}


def test_snapshots_per_rep_team_and_everyone_with_their_numbers(rep, teammate, other_rep, teams):
    _deal(rep, "NEGOTIATION", "1000.00")  # 75: best case
    _deal(rep, "PROPOSAL", "2000.00", engagement="HIGH",
          expected_close_date=TODAY + timedelta(days=89))  # 60, last day  # fmt: skip
    _deal(rep, "PROPOSAL", "9999.00", expected_close_date=TODAY + timedelta(days=90))  # after
    _deal(other_rep, "NEGOTIATION", "400.00", engagement="HIGH", currency="EUR")  # 90: commit

    stored = forecast_snapshots_take(today=TODAY, now=NOW)

    snapshots = _snapshots()
    mine, other = teams["mine"].pk, teams["other"].pk
    assert set(snapshots) == {
        (f"rep:{rep.pk}", "USD"),
        (f"rep:{teammate.pk}", "USD"),  # no deals: a zero row
        (f"rep:{other_rep.pk}", "EUR"),
        (f"team:{mine}", "USD"),
        (f"team:{other}", "EUR"),
        ("all", "USD"),
        ("all", "EUR"),
    }
    assert stored == len(snapshots)
    rep_row = snapshots[(f"rep:{rep.pk}", "USD")]
    assert (rep_row.scope, rep_row.user_id, rep_row.team_id) == ("rep", rep.pk, None)
    assert (rep_row.taken_on, rep_row.period_start, rep_row.period_end) == (
        TODAY,
        TODAY,
        TODAY + timedelta(days=89),
    )
    assert rep_row.deal_count == 2
    assert rep_row.pipeline_value == Decimal("3000.00")
    assert rep_row.weighted_value == Decimal("1950.00")  # 750 + 1200
    assert rep_row.commit_value == Decimal("1000.00")
    assert rep_row.best_case_value == Decimal("2000.00")
    assert snapshots[(f"rep:{teammate.pk}", "USD")].deal_count == 0
    team_row = snapshots[(f"team:{mine}", "USD")]
    assert (team_row.scope, team_row.team_id, team_row.weighted_value) == (
        "team",
        mine,
        Decimal("1950.00"),
    )
    eur = snapshots[("all", "EUR")]
    assert (eur.deal_count, eur.weighted_value, eur.commit_value) == (
        1,
        Decimal("360.00"),
        Decimal("400.00"),
    )


def test_snapshots_are_taken_once_a_day_and_a_rerun_updates_them(rep, teams):
    deal = _deal(rep, "PROPOSAL", "1000.00")
    forecast_snapshots_take(today=TODAY, now=NOW)
    count = ForecastSnapshot.objects.count()
    Sale.objects.filter(pk=deal.pk).update(amount=Decimal("3000.00"))
    forecast_snapshots_take(today=TODAY, now=NOW)
    assert ForecastSnapshot.objects.count() == count
    row = ForecastSnapshot.objects.get(scope_key=f"rep:{rep.pk}")
    assert row.weighted_value == Decimal("1500.00")
    forecast_snapshots_take(today=TODAY + timedelta(days=7), now=NOW)
    assert ForecastSnapshot.objects.filter(scope_key=f"rep:{rep.pk}").count() == 2


def test_the_weekly_task_takes_todays_snapshots(rep, teams):
    _deal(rep, "PROPOSAL", "1000.00", now=timezone.now())
    forecast_snapshots()
    forecast_snapshots()
    row = ForecastSnapshot.objects.get(scope_key=f"rep:{rep.pk}")
    assert row.taken_on == timezone.localdate() and row.weighted_value == Decimal("500.00")
    entry = settings.CELERY_BEAT_SCHEDULE["sales-forecast-snapshots"]
    assert entry["task"] == "sales.forecast_snapshots"
    assert entry["schedule"].day_of_week == {1} and entry["schedule"].hour == {3}


# Forecast vs actual ------------------------------------------------------------------------


def _snapshot(key, taken_on, *, weighted, currency="USD", **fields):
    scope = "all" if key == "all" else key.split(":")[0]
    return ForecastSnapshot.objects.create(
        scope=scope, scope_key=key, taken_on=taken_on, period_start=taken_on,
        period_end=taken_on + timedelta(days=89), currency=currency,
        weighted_value=Decimal(weighted), **fields,
    )  # fmt: skip


def _won(owner, amount, closed_on, currency="USD"):
    closed_at = timezone.make_aware(datetime.combine(closed_on, datetime.min.time()))
    return _deal(owner, "WON", amount, currency=currency, closed_at=closed_at + timedelta(hours=9))


def test_forecast_vs_actual_compares_ended_periods_with_won_deals(rep, other_rep, teams):
    start = date(2025, 11, 3)  # period to 2026-01-31
    _snapshot(f"rep:{rep.pk}", start, weighted="5000.00", deal_count=4)
    _snapshot(f"rep:{rep.pk}", start, weighted="900.00", currency="EUR")
    _snapshot(f"rep:{rep.pk}", date(2026, 1, 5), weighted="7000.00")  # not over yet
    _snapshot(f"rep:{other_rep.pk}", start, weighted="1.00")
    _won(rep, "3000.00", date(2025, 11, 3))  # first day
    _won(rep, "1500.00", date(2026, 1, 31))  # last day
    _won(rep, "800.00", date(2026, 2, 1))  # after the period
    _won(rep, "600.00", date(2025, 12, 1), currency="EUR")
    _won(other_rep, "10000.00", date(2025, 12, 1))
    _deal(rep, "LOST", "10000.00", closed_at=NOW - timedelta(days=60))

    rows = forecast_vs_actual(user=rep, scope="me", today=TODAY)

    assert [(r["taken_on"], r["currency"]) for r in rows] == [(start, "EUR"), (start, "USD")]
    eur, usd = rows
    assert (usd["weighted_value"], usd["actual_value"], usd["won_count"]) == (
        Decimal("5000.00"),
        Decimal("4500.00"),
        2,
    )
    assert usd["difference"] == Decimal("-500.00") and usd["deal_count"] == 4
    assert (eur["actual_value"], eur["difference"]) == (Decimal("600.00"), Decimal("-300.00"))


def test_forecast_vs_actual_of_all_my_teams_adds_up_the_reps(manager, rep, teammate, teams):
    start = date(2025, 11, 3)
    _snapshot(f"rep:{rep.pk}", start, weighted="1000.00")
    _snapshot(f"rep:{teammate.pk}", start, weighted="2000.00")
    _snapshot(f"team:{teams['mine'].pk}", start, weighted="3000.00")
    _won(teammate, "2500.00", date(2025, 12, 24))
    (row,) = forecast_vs_actual(user=manager, scope="all", today=TODAY)
    assert (row["weighted_value"], row["actual_value"]) == (Decimal("3000.00"), Decimal("2500.00"))
    (team,) = forecast_vs_actual(user=manager, scope=teams["mine"].pk, today=TODAY)
    assert (team["weighted_value"], team["actual_value"]) == (
        Decimal("3000.00"),
        Decimal("2500.00"),
    )


def test_snapshot_then_actuals_end_to_end(rep, teams):
    taken = timezone.make_aware(datetime(2025, 11, 3, 3, 0))
    _deal(rep, "PROPOSAL", "2000.00", now=taken, expected_close_date=date(2025, 12, 1))
    forecast_snapshots_take(now=taken)
    _won(rep, "1200.00", date(2025, 12, 2))
    (row,) = forecast_vs_actual(user=rep, scope="me", today=TODAY)
    assert (row["weighted_value"], row["actual_value"], row["difference"]) == (
        Decimal("1000.00"),
        Decimal("1200.00"),
        Decimal("200.00"),
    )


# Calibration -------------------------------------------------------------------------------


def _history(sale, *stages, at=None):
    at = at or NOW - timedelta(days=30)
    for offset, stage in enumerate(stages):
        StageChangeFactory(sale=sale, to_status=stage, changed_at=at + timedelta(hours=offset))


def test_calibration_buckets_predictions_at_each_stage_entry(rep, other_rep):
    _history(_deal(rep, "WON"), "NEW", "CONTACTED", "PROPOSAL", "WON")  # 10, 25, 50
    _history(_deal(rep, "LOST"), "NEW", "CONTACTED", "LOST")  # 10, 25
    _history(_deal(rep, "LOST"), "NEW", "LOST")  # 10
    _history(_deal(rep, "WON", engagement="HIGH"), "NEGOTIATION", "WON")  # 90
    # Created 100 days before entering PROPOSAL: 50 x 0.8.
    _history(_deal(rep, "LOST", age_days=130), "PROPOSAL", "LOST")
    _history(_deal(rep, "PROPOSAL"), "NEW", "PROPOSAL")  # still open: no outcome yet
    _history(_deal(other_rep, "LOST"), "NEGOTIATION", "LOST")  # not rep's

    rows = calibration(user=rep, scope="me")

    table = [(r["bucket"], r["entries"], r["won"], r["predicted"], r["actual"]) for r in rows]
    assert table == [
        (10, 3, 1, Decimal("10.0"), Decimal("33.3")),
        (20, 2, 1, Decimal("25.0"), Decimal("50.0")),
        (40, 1, 0, Decimal("40.0"), Decimal("0.0")),
        (50, 1, 1, Decimal("50.0"), Decimal("100.0")),
        (90, 1, 1, Decimal("90.0"), Decimal("100.0")),
    ]
    assert rows[0]["bucket_end"] == 19


# The page ----------------------------------------------------------------------------------


URL = reverse("sales:forecast")


def test_page_shows_a_reps_own_forecast(rep_client, rep, other_rep):
    now, today = timezone.now(), timezone.localdate()
    _deal(rep, "PROPOSAL", "1000.00", now=now, expected_close_date=today + timedelta(days=2))
    _deal(rep, "NEGOTIATION", "2000.00", now=now, expected_close_date=today + timedelta(days=40))
    _deal(rep, "NEW", "500.00", now=now, expected_close_date=None)
    _deal(other_rep, "PROPOSAL", "9000.00", now=now, expected_close_date=today)
    response = rep_client.get(URL, {"period": "90"})
    assert response.status_code == 200
    assert response.context["scope"].key == "me"
    usd = _usd(response.context)
    assert (usd["deal_count"], usd["pipeline_value"]) == (2, Decimal("3000.00"))
    assert usd["weighted_value"] == Decimal("2000.00")  # 500 + 1500
    body = response.content.decode()
    assert 'data-forecast-chart="USD"' in body and 'id="forecast-chart-data"' in body
    assert "9,000.00" not in body
    assert "1 open deal of this scope has none" in body
    assert [key for key, _ in response.context["form"].fields["scope"].choices] == ["me"]


def test_a_rep_cannot_pick_a_team_or_everyone(rep_client, teams):
    assert rep_client.get(URL, {"scope": teams["mine"].pk}).status_code == 404
    assert rep_client.get(URL, {"scope": "all"}).status_code == 404


def test_a_manager_cannot_pick_a_team_they_do_not_manage(manager_client, teams, teammate):
    _deal(teammate, "PROPOSAL", "2000.00", now=timezone.now())
    assert manager_client.get(URL, {"scope": teams["other"].pk}).status_code == 404
    assert manager_client.get(URL, {"scope": "999999"}).status_code == 404
    response = manager_client.get(URL, {"scope": teams["mine"].pk, "period": "30"})
    assert response.status_code == 200
    assert _usd(response.context)["pipeline_value"] == Decimal("2000.00")


def test_another_teams_manager_cannot_see_the_team(client, other_manager, teams):
    client.force_login(other_manager)
    assert client.get(URL, {"scope": teams["mine"].pk}).status_code == 404
    assert client.get(URL, {"scope": teams["other"].pk}).status_code == 200


def test_admin_can_pick_every_team_and_everyone(admin_client_, teams):
    keys = [k for k, _ in admin_client_.get(URL).context["form"].fields["scope"].choices]
    assert keys == ["me", str(teams["mine"].pk), str(teams["other"].pk), "all"]
    assert admin_client_.get(URL, {"scope": "all"}).status_code == 200


def test_page_needs_a_login(client):
    response = client.get(URL)
    assert response.status_code == 302 and "login" in response["Location"]


def test_empty_filters_mean_the_defaults(rep_client):
    response = rep_client.get(URL, {"period": "", "scope": ""})
    assert response.status_code == 200
    assert (response.context["period"].key, response.context["scope"].key) == ("90", "me")


def test_an_unknown_period_falls_back_to_90_days_and_says_so(rep_client):
    response = rep_client.get(URL, {"period": "45"})
    assert response.status_code == 200
    assert response.context["period"].key == "90"
    assert response.context["form"].errors["period"]


def test_page_empty_states(rep_client):
    body = rep_client.get(URL).content.decode()
    assert "No open deals of this scope are expected to close in this period." in body
    assert "No past forecast to compare yet" in body
    assert "No won or lost deals with a stage history in this scope yet." in body


def test_htmx_request_gets_the_body_partial(rep_client):
    response = rep_client.get(URL, {"period": "60"}, headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert "<html" not in response.content.decode()
    assert [t.name for t in response.templates][0] == "sales/partials/_forecast_body.html"


def test_page_query_count_is_fixed(
    admin_client_, rep, teammate, other_rep, teams, manager, django_assert_max_num_queries
):
    """Historical rates in use (the most queries); more deals, snapshots and stage history
    do not add any."""
    _closed_history(200, other_rep)
    now, today = timezone.now(), timezone.localdate()
    for owner in (rep, teammate, other_rep):
        for status in Sale.OPEN_STATUSES:
            _deal(owner, status, now=now)
        _history(_deal(owner, "WON", now=now), "NEW", "PROPOSAL", "WON")
    forecast_snapshots_take(today=today - timedelta(days=120))
    # session + user, teams, stage settings, closed count, historical rates, forecast,
    # undated count, forecast vs actual, calibration
    for scope in ("all", str(teams["mine"].pk), "me"):
        with django_assert_max_num_queries(9):
            response = admin_client_.get(URL, {"scope": scope})
        assert response.status_code == 200 and response.context["model"].historical
        if scope != "me":  # the admin has no deals of their own
            assert response.context["history"] and response.context["calibration"]
    for owner in (rep, teammate, other_rep):
        for _ in range(5):
            _deal(owner, "PROPOSAL", now=now, expected_close_date=today + timedelta(days=40))
    with django_assert_max_num_queries(9):
        admin_client_.get(URL, {"scope": "all"})
    admin_client_.force_login(manager)  # + the manager's role and team members
    with django_assert_max_num_queries(11):
        assert admin_client_.get(URL, {"scope": "all"}).status_code == 200
