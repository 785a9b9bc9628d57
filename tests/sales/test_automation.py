import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from sales import automation
from sales.models import AutomationRule, Sale, SaleActivity, StageChange
from sales.services import sale_activity_add, sale_change_stage
from tests.sales.helpers import deal_in_stage

pytestmark = pytest.mark.django_db

NOW = timezone.now()


def _deal(rep, status="NEW", entered_days_ago=20, **fields):
    return deal_in_stage(rep, now=NOW, status=status, entered_days_ago=entered_days_ago, **fields)


def _activity(sale, days_ago, kind="call"):
    at = NOW - timedelta(days=days_ago)
    SaleActivity.objects.create(sale=sale, kind=kind, text="x", occurred_at=at)
    Sale.objects.filter(pk=sale.pk).update(last_activity_at=at)


@pytest.mark.parametrize("days_ago,moves", [(6, True), (7.01, False), (8, False)])
def test_new_moves_to_contacted_after_an_activity_within_7_days(rep, teams, days_ago, moves):
    sale = _deal(rep)
    _activity(sale, days_ago)
    automation.deals_advance(now=NOW)
    sale.refresh_from_db()
    assert (sale.status == "CONTACTED") is moves
    if moves:
        change = sale.stage_changes.get(to_status="CONTACTED")
        assert change.is_automatic and "7 days" in change.reason and change.changed_by is None


def test_an_activity_from_before_the_stage_was_entered_does_not_count(rep, teams):
    sale = _deal(rep, entered_days_ago=2)
    _activity(sale, 5)  # logged before a person moved the deal (back) to NEW
    automation.deals_advance(now=NOW)
    sale.refresh_from_db()
    assert sale.status == "NEW"


def test_contacted_moves_to_proposal_when_a_proposal_is_attached(rep, teams):
    sale = _deal(rep, status="CONTACTED")
    automation.deals_advance(now=NOW)
    assert Sale.objects.get(pk=sale.pk).status == "CONTACTED"
    _activity(sale, 1, kind="proposal_sent")
    automation.deals_advance(now=NOW)
    assert Sale.objects.get(pk=sale.pk).status == "PROPOSAL"


_ANSWERED_SALE_IDS: list[int] = []


def only_answered_sales():
    from django.db.models import Q

    return Q(pk__in=_ANSWERED_SALE_IDS)


def test_an_answer_listed_in_the_reactions_file_is_used(rep, teams, monkeypatch):
    from crm import reactions

    sale = _deal(rep, status="CONTACTED")
    other = _deal(rep, status="CONTACTED")
    monkeypatch.setitem(
        reactions.ANSWERS,
        reactions.Question.DEALS_WITH_PROPOSAL,
        [f"{__name__}.only_answered_sales"],
    )
    monkeypatch.setattr(f"{__name__}._ANSWERED_SALE_IDS", [sale.pk])
    automation.deals_advance(now=NOW)
    assert Sale.objects.get(pk=sale.pk).status == "PROPOSAL"
    assert Sale.objects.get(pk=other.pk).status == "CONTACTED"


def test_proposal_moves_to_negotiation_when_the_customer_replied(rep, teams):
    sale = _deal(rep, status="PROPOSAL")
    _activity(sale, 1, kind="note")
    automation.deals_advance(now=NOW)
    assert Sale.objects.get(pk=sale.pk).status == "PROPOSAL"  # a note is not a reply
    _activity(sale, 1, kind="email")
    automation.deals_advance(now=NOW)
    assert Sale.objects.get(pk=sale.pk).status == "NEGOTIATION"


@pytest.mark.parametrize("quiet_days,closes", [(59, False), (61, True)])
def test_a_managers_rule_closes_quiet_negotiations_as_lost(rep, teams, quiet_days, closes):
    AutomationRule.objects.create(
        from_status="NEGOTIATION", condition="no_activity", days=60, to_status="LOST"
    )
    sale = _deal(rep, status="NEGOTIATION", entered_days_ago=90)
    _activity(sale, quiet_days)
    automation.deals_advance(now=NOW)
    sale.refresh_from_db()
    assert (sale.status == "LOST") is closes
    if closes:
        assert sale.closed_at is not None and "Rule" in sale.lost_reason


def test_a_manual_move_during_an_evaluation_wins(rep, teams, monkeypatch):
    sale = _deal(rep)
    _activity(sale, 1)
    real_filter = Sale.objects.select_for_update

    def person_moves_first():
        sale_change_stage(actor=rep, sale=sale, to_status="PROPOSAL")
        return real_filter()

    monkeypatch.setattr(Sale.objects, "select_for_update", person_moves_first)
    automation.deals_advance(now=NOW)
    monkeypatch.undo()
    sale.refresh_from_db()
    assert sale.status == "PROPOSAL"
    assert not StageChange.objects.filter(sale=sale, is_automatic=True).exists()


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_advances_move_the_deal_once(rep, teams):
    sale = _deal(rep)
    _activity(sale, 1)
    barrier = threading.Barrier(2)

    def evaluate():
        try:
            barrier.wait()
            automation.deals_advance(sale_ids=[sale.pk], now=NOW)
        finally:
            connection.close()

    threads = [threading.Thread(target=evaluate) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert StageChange.objects.filter(sale=sale, to_status="CONTACTED").count() == 1


def test_a_flag_rule_marks_quiet_negotiations_stale_without_moving_them(rep, teams):
    sale = _deal(rep, status="NEGOTIATION", entered_days_ago=40)  # limit 45 days
    _activity(sale, 31)  # default rule: NEGOTIATION quiet for 30 days -> stale
    assert list(Sale.objects.stale(now=NOW)) == [sale]
    automation.deals_advance(now=NOW)
    assert Sale.objects.get(pk=sale.pk).status == "NEGOTIATION"


def test_logging_an_activity_advances_the_deal_after_commit(
    rep, teams, django_capture_on_commit_callbacks
):
    sale = _deal(rep)
    with django_capture_on_commit_callbacks(execute=True):
        sale_activity_add(actor=rep, sale=sale, kind="call", text="Called")
    sale.refresh_from_db()
    assert sale.status == "CONTACTED" and sale.last_activity_at is not None
