from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from sales.models import Sale, SaleActivity, StageChange, Task
from sales.services.forecast import forecast_statistics_compute
from tests.factories import CustomerFactory, SaleActivityFactory, SaleFactory, TaskFactory
from tests.sales.forecasting.helpers import closed_history

pytestmark = pytest.mark.django_db


@pytest.fixture
def my_sale(rep, teams):
    return SaleFactory(customer=CustomerFactory(owner=rep), title="My deal", assigned_to=rep)


@pytest.fixture
def my_task(rep, my_sale):
    return TaskFactory(assigned_to=rep, sale=my_sale, customer=my_sale.customer, title="Call back")


# Refusals for every URL that takes an id ----------------------------------------------------


@pytest.mark.parametrize(
    "name,method",
    [
        ("detail", "get"),
        ("edit", "get"),
        ("edit", "post"),
        ("delete", "get"),
        ("delete", "post"),
        ("change_stage", "get"),
        ("change_stage", "post"),
        ("activity_add", "post"),
        ("task_add", "post"),
    ],
)
def test_other_rep_is_refused_on_deal_urls(other_rep_client, my_sale, name, method):
    url = reverse(f"sales:{name}", args=[my_sale.pk])
    data = {"to_status": "WON", "closed_on": "2026-01-01", "kind": "call", "text": "x"}
    response = getattr(other_rep_client, method)(url, data if method == "post" else None)
    assert response.status_code == 404
    my_sale.refresh_from_db()
    assert my_sale.status == "NEW"
    assert not SaleActivity.objects.exists()


def test_other_rep_cannot_toggle_my_task(other_rep_client, my_task):
    response = other_rep_client.post(reverse("sales:task_toggle", args=[my_task.pk]))
    assert response.status_code == 404
    my_task.refresh_from_db()
    assert my_task.completed_at is None


def test_other_rep_does_not_see_my_deals_or_tasks_in_lists(other_rep_client, my_task):
    assert b"My deal" not in other_rep_client.get(reverse("sales:list")).content
    assert b"Call back" not in other_rep_client.get(reverse("sales:my_tasks")).content


def test_manager_sees_team_deal(manager_client, my_sale):
    assert manager_client.get(reverse("sales:detail", args=[my_sale.pk])).status_code == 200


def test_unknown_deal_is_404(rep_client):
    assert rep_client.get("/sales/deals/999999/").status_code == 404


# List -------------------------------------------------------------------------------------------


def test_list_filters_and_totals(rep_client, rep):
    customer = CustomerFactory(owner=rep, name="Zed Corp")
    SaleFactory(customer=customer, title="Small", amount=Decimal("100"))
    SaleFactory(customer=customer, title="Big", amount=Decimal("9000"), status="WON")
    SaleFactory(customer=customer, title="Mid", amount=Decimal("500"), status="PROPOSAL")
    url = reverse("sales:list")

    response = rep_client.get(url, {"status": "open"})
    assert {s.title for s in response.context["page"].object_list} == {"Small", "Mid"}
    assert response.context["totals"]["by_currency"][0]["total_amount"] == Decimal("600")
    response = rep_client.get(url, {"amount_min": "400", "sort": "amount"})
    assert [s.title for s in response.context["page"].object_list] == ["Mid", "Big"]
    response = rep_client.get(url, {"q": "zed"})
    assert response.context["totals"]["count"] == 3


@pytest.mark.parametrize(
    "params",
    [
        {"page": "x"},
        {"sort": "customer__owner__password"},
        {"amount_min": "abc"},
        {"close_from": "2026-13-45"},
        {"status": "'; DELETE FROM sales_sale; --"},
        {"owner": "-1"},
    ],
)
def test_hostile_query_strings_never_break_the_deal_list(rep_client, my_sale, params):
    assert rep_client.get(reverse("sales:list"), params).status_code == 200
    assert Sale.objects.filter(pk=my_sale.pk).exists()


@pytest.mark.parametrize("role_client", ["rep_client", "manager_client", "admin_client_"])
def test_deal_list_query_count_is_fixed(request, role_client, rep, django_assert_max_num_queries):
    client = request.getfixturevalue(role_client)
    customer = CustomerFactory(owner=rep)
    SaleFactory.create_batch(30, customer=customer)
    with django_assert_max_num_queries(8):
        response = client.get(reverse("sales:list"), {"status": "open", "sort": "-amount"})
    assert response.status_code == 200


def test_my_tasks_query_count_is_fixed(rep_client, rep, my_sale, django_assert_max_num_queries):
    now = timezone.now()
    for hours in range(-20, 20):
        TaskFactory(assigned_to=rep, sale=my_sale, due_at=now + timedelta(hours=hours * 7))
    with django_assert_max_num_queries(9):
        response = rep_client.get(reverse("sales:my_tasks"))
    assert response.status_code == 200


def test_my_tasks_shows_the_first_of_each_section_with_its_count(rep_client, rep, my_sale):
    now = timezone.now()
    for days in range(1, 31):
        TaskFactory(assigned_to=rep, sale=my_sale, title=f"Late {days:02d}",
                    due_at=now - timedelta(days=days))  # fmt: skip
    response = rep_client.get(reverse("sales:my_tasks"))
    page = response.content.decode()
    assert page.count("<td>Late ") == 25, "only the first rows of a long section"
    assert "Late 30" in page and "Late 05" not in page, "the oldest first"
    assert "30 · <a" in page and "?show=overdue" in page


def test_one_section_of_my_tasks_a_page_at_a_time(
    rep_client, rep, my_sale, django_assert_max_num_queries
):
    now = timezone.now()
    for days in range(1, 61):
        TaskFactory(assigned_to=rep, sale=my_sale, title=f"Late {days:02d}",
                    due_at=now - timedelta(days=days))  # fmt: skip
    TaskFactory(assigned_to=rep, sale=my_sale, title="Next week", due_at=now + timedelta(days=7))
    url = reverse("sales:my_tasks")
    with django_assert_max_num_queries(9):
        first = rep_client.get(url, {"show": "overdue"}).content.decode()
    assert first.count("<td>Late ") == 50 and "Next week" not in first
    assert "Page 1 of 2" in first and "show=overdue&amp;page=2" in first
    second = rep_client.get(url, {"show": "overdue", "page": "2"}).content.decode()
    assert second.count("<td>Late ") == 10 and "Late 01" in second
    # Garbage pages and sections fall back instead of failing.
    assert rep_client.get(url, {"show": "overdue", "page": "x"}).status_code == 200
    assert rep_client.get(url, {"show": "nonsense"}).status_code == 200


def test_another_reps_tasks_are_not_in_my_sections(rep_client, other_rep_client, rep, my_sale):
    TaskFactory(assigned_to=rep, sale=my_sale, title="Mine only",
                due_at=timezone.now() - timedelta(days=1))  # fmt: skip
    response = other_rep_client.get(reverse("sales:my_tasks"), {"show": "overdue"})
    assert b"Mine only" not in response.content


# Create, edit, stage --------------------------------------------------------------------------


def test_create_deal_from_customer_page(rep_client, rep, teams):
    customer = CustomerFactory(owner=rep)
    form_page = rep_client.get(reverse("sales:create"), {"customer": customer.pk})
    assert form_page.context["form"].initial["customer"] == customer.pk
    response = rep_client.post(
        reverse("sales:create"),
        {
            "title": "Pilot",
            "customer": customer.pk,
            "assigned_to": rep.pk,
            "amount": "12000.50",
            "currency": "eur",
            "status": "NEW",
        },
    )
    sale = Sale.objects.get(title="Pilot")
    assert response["Location"] == reverse("sales:detail", args=[sale.pk])
    assert sale.amount == Decimal("12000.50")
    assert sale.currency == "EUR"


def test_create_deal_with_bad_input(rep_client, rep, other_rep):
    foreign = CustomerFactory(owner=other_rep)
    response = rep_client.post(
        reverse("sales:create"),
        {
            "title": "",
            "customer": foreign.pk,
            "assigned_to": rep.pk,
            "amount": "-5",
            "currency": "euro",
            "status": "WON",
        },
    )
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert {"title", "customer", "amount", "currency", "status"} <= set(errors)
    assert not Sale.objects.exists()


def test_edit_deal(rep_client, rep, my_sale):
    response = rep_client.post(
        reverse("sales:edit", args=[my_sale.pk]),
        {
            "title": "Renamed",
            "customer": my_sale.customer_id,
            "assigned_to": rep.pk,
            "amount": "10",
            "currency": "USD",
        },
    )
    assert response.status_code == 302
    my_sale.refresh_from_db()
    assert my_sale.title == "Renamed"


def test_change_stage_page_flow(rep_client, my_sale):
    url = reverse("sales:change_stage", args=[my_sale.pk])
    assert rep_client.get(url).status_code == 200
    response = rep_client.post(url, {"to_status": "PROPOSAL", "reason": "Deck sent"})
    assert response.status_code == 302
    detail = rep_client.get(reverse("sales:detail", args=[my_sale.pk])).content.decode()
    assert 'data-stage-change="PROPOSAL"' in detail


def test_lost_without_reason_shows_field_error(rep_client, my_sale):
    url = reverse("sales:change_stage", args=[my_sale.pk])
    response = rep_client.post(url, {"to_status": "LOST", "closed_on": "2026-01-02"})
    assert response.status_code == 200
    assert "lost_reason" in response.context["form"].errors
    my_sale.refresh_from_db()
    assert my_sale.status == "NEW"


def test_won_without_date_shows_field_error(rep_client, my_sale):
    url = reverse("sales:change_stage", args=[my_sale.pk])
    response = rep_client.post(url, {"to_status": "WON", "closed_on": ""})
    assert "closed_on" in response.context["form"].errors
    assert not StageChange.objects.filter(sale=my_sale).exists()


def test_delete_deal_with_confirmation(rep_client, my_sale):
    assert rep_client.get(reverse("sales:delete", args=[my_sale.pk])).status_code == 200
    assert Sale.objects.filter(pk=my_sale.pk).exists()
    rep_client.post(reverse("sales:delete", args=[my_sale.pk]))
    assert not Sale.objects.filter(pk=my_sale.pk).exists()


def test_log_activity_with_htmx(rep_client, my_sale):
    url = reverse("sales:activity_add", args=[my_sale.pk])
    response = rep_client.post(
        url, {"kind": "meeting", "text": "Demo done"}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 200
    assert b"Demo done" in response.content
    bad = rep_client.post(url, {"kind": "telepathy", "text": ""}, headers={"HX-Request": "true"})
    assert bad.status_code == 422
    assert SaleActivity.objects.count() == 1


def test_add_task_to_deal(rep_client, rep, my_sale):
    response = rep_client.post(
        reverse("sales:task_add", args=[my_sale.pk]),
        {
            "title": "Send contract",
            "assigned_to": rep.pk,
            "priority": "HIGH",
            "due_at": "2026-12-01T10:00",
        },
    )
    assert response.status_code == 302
    task = Task.objects.get(title="Send contract")
    assert (task.sale, task.customer, task.created_by) == (my_sale, my_sale.customer, rep)


def test_complete_task_with_one_click(rep_client, my_task):
    response = rep_client.post(
        reverse("sales:task_toggle", args=[my_task.pk]),
        {"done": "1"},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    assert b"task-done" in response.content
    my_task.refresh_from_db()
    assert my_task.completed_at is not None


def test_admin_pages_for_every_model(admin_client_, my_task):
    for model in ("sale", "saleactivity", "task", "stagechange"):
        assert admin_client_.get(reverse(f"admin:sales_{model}_changelist")).status_code == 200
    for model in ("customer", "tag", "customernote", "customerimport"):
        assert admin_client_.get(reverse(f"admin:customers_{model}_changelist")).status_code == 200
    for model in ("team", "auditevent", "teammembership"):
        assert admin_client_.get(reverse(f"admin:crm_{model}_changelist")).status_code == 200
    url = reverse("admin:sales_sale_change", args=[my_task.sale_id])
    assert admin_client_.get(url).status_code == 200


def test_detail_pages_query_counts_do_not_grow(
    rep_client, rep, my_sale, django_assert_max_num_queries
):
    for index in range(15):
        TaskFactory(assigned_to=rep, sale=my_sale, customer=my_sale.customer)
        TaskFactory(assigned_to=rep, customer=my_sale.customer)
        SaleActivityFactory(sale=my_sale, user=rep, text=f"Call {index}")
        SaleFactory(customer=my_sale.customer)
    # 17: the page now also reads the stage rates and rules for the probability and the stale flag.
    with django_assert_max_num_queries(17):
        assert rep_client.get(reverse("sales:detail", args=[my_sale.pk])).status_code == 200
    # Historical rates in force: read as the nightly statistics stored them, no more queries.
    closed_history(200, rep)
    forecast_statistics_compute()
    with django_assert_max_num_queries(17):
        response = rep_client.get(reverse("sales:detail", args=[my_sale.pk]))
    assert response.status_code == 200 and "Historical stage-to-win rate" in response.text
    with django_assert_max_num_queries(8):
        url = reverse("sales:customer_panel", args=[my_sale.customer_id])
        assert rep_client.get(url).status_code == 200
    with django_assert_max_num_queries(10):
        url = reverse("customers:detail", args=[my_sale.customer_id])
        assert rep_client.get(url).status_code == 200


@pytest.mark.parametrize(
    "target", ["https://evil.example/", "//evil.example/x", "abc", "sales:my_tasks", "javascript:x"]
)
def test_task_toggle_never_redirects_off_site_nor_to_a_non_path(rep_client, my_task, target):
    response = rep_client.post(
        reverse("sales:task_toggle", args=[my_task.pk]), {"done": "1", "next": target}
    )
    assert response["Location"] == reverse("sales:my_tasks")


def test_task_toggle_returns_to_a_local_next(rep_client, my_task):
    target = reverse("sales:detail", args=[my_task.sale_id])
    response = rep_client.post(
        reverse("sales:task_toggle", args=[my_task.pk]), {"done": "1", "next": target}
    )
    assert response["Location"] == target


def test_invalid_task_keeps_the_form_open_with_errors(rep_client, rep, my_sale):
    response = rep_client.post(
        reverse("sales:task_add", args=[my_sale.pk]),
        {"title": "Half-typed title", "assigned_to": rep.pk, "priority": "HIGH", "due_at": ""},
    )
    assert response.status_code == 422
    assert "due_at" in response.context["task_form"].errors
    body = response.content.decode()
    assert 'id="add-task" open' in body
    assert 'value="Half-typed title"' in body
    assert not Task.objects.filter(title="Half-typed title").exists()


def test_sorting_by_stage_follows_the_pipeline(rep_client, rep):
    customer = CustomerFactory(owner=rep)
    for status in ("WON", "CONTACTED", "NEW", "NEGOTIATION"):
        SaleFactory(customer=customer, status=status, title=status)
    response = rep_client.get(reverse("sales:list"), {"sort": "status"})
    titles = [sale.title for sale in response.context["page"].object_list]
    assert titles == ["NEW", "CONTACTED", "NEGOTIATION", "WON"]


def test_contradictory_filters_are_explained(rep_client, my_sale):
    response = rep_client.get(
        reverse("sales:list"), {"amount_min": "500", "amount_max": "10", "close_from": "2026-05-01",
                                "close_to": "2026-01-01"},
    )  # fmt: skip
    body = response.content.decode()
    assert "The maximum is below the minimum" in body
    assert "before “Closing from”" in body


def test_deal_form_does_not_list_every_customer(rep_client, rep):
    customers = CustomerFactory.create_batch(5, owner=rep)
    page = rep_client.get(reverse("sales:create")).content.decode()
    assert all(f'value="{c.pk}"' not in page for c in customers)
    chosen = rep_client.get(reverse("sales:create"), {"customer": customers[2].pk}).content
    assert f'value="{customers[2].pk}" selected'.encode() in chosen


def test_customer_options_search_only_visible_customers(rep_client, rep, other_rep):
    mine = CustomerFactory(owner=rep, name="Zephyr Mine")
    CustomerFactory(owner=other_rep, name="Zephyr Theirs")
    response = rep_client.get(reverse("customers:options"), {"customer_q": "zephyr"})
    body = response.content.decode()
    assert f'value="{mine.pk}"' in body
    assert "Theirs" not in body
    empty = rep_client.get(reverse("customers:options"), {"customer_q": "nothing-like-this"})
    assert "No customer matches" in empty.content.decode()


def test_filter_forms_keep_their_field_order(rep):
    """The close-date and amount fields are shared; each form still lists them in place."""
    from sales.forms import BoardFilterForm, SaleFilterForm

    ranges = ["close_from", "close_to", "amount_min", "amount_max"]
    assert list(SaleFilterForm({}, user=rep).fields) == ["q", "status", "owner", *ranges, "sort"]
    assert list(BoardFilterForm({}, user=rep).fields) == ["owner", "team", *ranges]


def test_currency_is_a_choice_of_iso_codes_not_free_text(rep_client, rep):
    customer = CustomerFactory(owner=rep)
    page = rep_client.get(reverse("sales:create")).content.decode()
    assert '<option value="EUR">EUR</option>' in page and 'maxlength="3"' not in page
    response = rep_client.post(
        reverse("sales:create"),
        {"title": "T", "customer": customer.pk, "assigned_to": rep.pk, "amount": "10",
         "currency": "dollars", "status": "NEW"},
    )  # fmt: skip
    assert "currency" in response.context["form"].errors
    assert not Sale.objects.exists()
