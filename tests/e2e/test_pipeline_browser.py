"""The pipeline board in Chromium: drag and drop, the Won dialog, the keyboard move, a conflict.

Cards are dragged with Playwright's `locator.drag_to`, which drives Chromium's real HTML5
drag and drop (dragstart / dragover / drop with a DataTransfer), so board.js's own handlers
run; nothing is dispatched by hand. Every move goes through htmx: the document is tagged
before and must still carry the tag after (no full page load).
"""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from playwright.sync_api import Locator, Page, expect

from sales import services
from sales.models import Sale, StageChange
from tests.factories import CustomerFactory, SaleFactory, StageChangeFactory

pytestmark = pytest.mark.browser

MOVE_URL = "/sales/pipeline/move/"


def _mark_document(page: Page) -> None:
    """Tag the current document; a full page load would drop the tag."""
    page.evaluate("window.__e2eSamePage = true")


def _assert_same_document(page: Page) -> None:
    assert page.evaluate("window.__e2eSamePage === true"), "the page was reloaded (not htmx)"


def _open_board(page: Page) -> None:
    page.goto("/sales/pipeline/")
    page.wait_for_function("window.htmx !== undefined")
    expect(page.locator("h1")).to_have_text("Pipeline")
    _mark_document(page)


def _column(page: Page, status: str) -> Locator:
    return page.locator(f'#board section[data-column="{status}"]')


def _card(page: Page, sale: Sale) -> Locator:
    return page.locator(f'#board [data-sale="{sale.pk}"]')


def _count(page: Page, status: str) -> Locator:
    return page.locator(f'[data-totals="{status}"] [data-count]')


def _totals(page: Page, status: str) -> Locator:
    return page.locator(f'[data-totals="{status}"]')


def _is_move(response) -> bool:
    return MOVE_URL in response.url and response.request.method == "POST"


def _deal(rep, customer, title: str, amount: str, status=Sale.Status.NEW) -> Sale:
    sale = SaleFactory(
        customer=customer, assigned_to=rep, title=title, amount=Decimal(amount), status=status
    )
    StageChangeFactory(sale=sale, to_status=status, changed_by=rep)
    return sale


@pytest.fixture
def deals(rep):
    """Two NEW deals of the rep (1,000 and 3,000), nothing in the other columns."""
    customer = CustomerFactory(owner=rep, name="Initech", company="Initech")
    return {
        "small": _deal(rep, customer, "Initech pilot", "1000.00"),
        "large": _deal(rep, customer, "Initech rollout", "3000.00"),
    }


def test_dragging_a_card_to_another_column_moves_the_deal_and_updates_totals(
    page: Page, login, rep, deals
):
    small, large = deals["small"], deals["large"]
    login(rep)
    _open_board(page)
    expect(_column(page, "NEW").locator("[data-sale]")).to_have_count(2)
    expect(_count(page, "NEW")).to_have_text("2")
    expect(_totals(page, "NEW")).to_contain_text("USD 4,000")
    expect(_count(page, "CONTACTED")).to_have_text("0")
    expect(_totals(page, "CONTACTED")).to_contain_text("No value")

    with page.expect_response(_is_move) as response_info:
        _card(page, small).drag_to(_column(page, "CONTACTED"))
    assert response_info.value.status == 200

    expect(_column(page, "CONTACTED").locator(f'[data-sale="{small.pk}"]')).to_have_count(1)
    expect(_column(page, "NEW").locator(f'[data-sale="{small.pk}"]')).to_have_count(0)
    expect(_column(page, "NEW").locator(f'[data-sale="{large.pk}"]')).to_have_count(1)
    expect(_count(page, "NEW")).to_have_text("1")
    expect(_totals(page, "NEW")).to_contain_text("USD 3,000")
    expect(_totals(page, "NEW")).not_to_contain_text("4,000")
    expect(_count(page, "CONTACTED")).to_have_text("1")
    expect(_totals(page, "CONTACTED")).to_contain_text("USD 1,000")
    expect(page.locator("[data-board-message][role=status]")).to_contain_text(
        "“Initech pilot” moved to Contacted."
    )
    _assert_same_document(page)

    small.refresh_from_db()
    assert small.status == Sale.Status.CONTACTED
    assert StageChange.objects.filter(
        sale=small, from_status="NEW", to_status="CONTACTED", changed_by=rep
    ).exists()
    assert Sale.objects.get(pk=large.pk).status == Sale.Status.NEW


def test_dropping_a_card_on_won_asks_for_the_date_then_closes_the_deal(
    page: Page, login, rep, deals
):
    small = deals["small"]
    closed_on = timezone.localdate() - timedelta(days=3)
    login(rep)
    _open_board(page)
    dialog = page.locator("#close-dialog")
    expect(dialog).to_be_hidden()

    _card(page, small).drag_to(_column(page, "WON"))

    expect(dialog).to_be_visible()
    expect(dialog.locator("[data-close-deal]")).to_have_text("Close as won: Initech pilot")
    expect(dialog.locator("#lost-reason")).to_be_hidden()  # only asked for Lost
    assert not Sale.objects.get(pk=small.pk).is_closed  # nothing is sent before confirming
    dialog.locator("#close-on").fill(closed_on.isoformat())
    with page.expect_response(_is_move) as response_info:
        dialog.get_by_role("button", name="Move deal").click()
    assert response_info.value.status == 200

    expect(dialog).to_be_hidden()
    expect(_card(page, small)).to_have_count(0)  # closed deals leave the board
    expect(_count(page, "NEW")).to_have_text("1")
    expect(_totals(page, "NEW")).to_contain_text("USD 3,000")
    expect(page.locator("[data-board-message][role=status]")).to_contain_text(
        "“Initech pilot” moved to Won."
    )
    _assert_same_document(page)

    small.refresh_from_db()
    assert small.status == Sale.Status.WON
    assert timezone.localtime(small.closed_at).date() == closed_on
    assert small.lost_reason == ""
    assert StageChange.objects.filter(sale=small, to_status="WON", changed_by=rep).exists()


def test_the_move_to_menu_moves_a_card_with_the_keyboard(page: Page, login, rep, deals):
    small = deals["small"]
    login(rep)
    _open_board(page)
    card = _card(page, small)
    menu = card.get_by_label("Move “Initech pilot” to")

    menu.focus()
    expect(menu).to_be_focused()
    menu.select_option("PROPOSAL")
    page.keyboard.press("Tab")
    move_button = card.get_by_role("button", name="Move", exact=True)
    expect(move_button).to_be_focused()
    with page.expect_response(_is_move) as response_info:
        page.keyboard.press("Enter")
    assert response_info.value.status == 200

    expect(_column(page, "PROPOSAL").locator(f'[data-sale="{small.pk}"]')).to_have_count(1)
    expect(_column(page, "NEW").locator(f'[data-sale="{small.pk}"]')).to_have_count(0)
    expect(_count(page, "NEW")).to_have_text("1")
    expect(_count(page, "PROPOSAL")).to_have_text("1")
    expect(_totals(page, "PROPOSAL")).to_contain_text("USD 1,000")
    _assert_same_document(page)
    small.refresh_from_db()
    assert small.status == Sale.Status.PROPOSAL


def test_a_deal_moved_meanwhile_shows_the_conflict_and_refreshes_the_board(
    page: Page, login, rep, deals
):
    small = deals["small"]
    login(rep)
    _open_board(page)
    expect(_column(page, "NEW").locator(f'[data-sale="{small.pk}"]')).to_have_count(1)

    # Another tab moves the deal on; this board still shows it in NEW.
    services.sale_change_stage(actor=rep, sale=small, to_status=Sale.Status.PROPOSAL)

    with page.expect_response(_is_move) as response_info:
        _card(page, small).drag_to(_column(page, "CONTACTED"))
    assert response_info.value.status == 409

    alert = page.locator("[data-board-message][role=alert]")
    expect(alert).to_contain_text(
        re.compile(rf"moved to Proposal by {re.escape(rep.get_full_name())} meanwhile")
    )
    expect(alert).to_contain_text("the board has been refreshed")
    # Refreshed: the card is where the deal really is now, the totals with it.
    expect(_column(page, "PROPOSAL").locator(f'[data-sale="{small.pk}"]')).to_have_count(1)
    expect(_column(page, "NEW").locator(f'[data-sale="{small.pk}"]')).to_have_count(0)
    expect(_column(page, "CONTACTED").locator("[data-sale]")).to_have_count(0)
    expect(_count(page, "NEW")).to_have_text("1")
    expect(_count(page, "PROPOSAL")).to_have_text("1")
    _assert_same_document(page)

    small.refresh_from_db()
    assert small.status == Sale.Status.PROPOSAL  # the other tab's move stands
    assert not StageChange.objects.filter(sale=small, to_status="CONTACTED").exists()
