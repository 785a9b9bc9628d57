"""The duplicates queue in Chromium: "Scan now" finds the pair, the review page merges it
with a field chosen from the other record, and the merge is undone after a confirmation."""

import pytest
from django.urls import reverse
from playwright.sync_api import Page, expect

from customers.models import Customer, CustomerMerge
from tests.factories import CustomerFactory

pytestmark = pytest.mark.browser


def test_scan_review_merge_and_undo(page: Page, login, manager, rep, teammate, teams):
    kept = CustomerFactory(
        owner=rep, name="Hedy Lamarr", email="hedy@films.example", phone="", company="MGM"
    )
    other = CustomerFactory(
        owner=teammate,
        name="Hedy Lamar",
        email="hedy.lamarr@gmail.com",
        phone="+1 310 555 0144",
        company="MGM Inc",
    )
    login(manager)
    page.goto(reverse("customers:duplicates"))
    expect(page.locator("[data-empty-queue]")).to_be_visible()

    page.locator("[data-scan-now]").click()
    expect(page.locator('[data-job="scan"]')).to_have_attribute("data-job-status", "done")
    row = page.locator("[data-duplicate-queue] tr[data-pair]")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Hedy Lamar")
    expect(row).to_contain_text("names")

    row.get_by_role("link", name="Review and merge").click()
    form = page.locator("[data-merge-form]")
    expect(form).to_contain_text("+1 310 555 0144")
    form.get_by_label(f"Keep #{kept.pk} {kept.name}").check()  # this record stays
    form.get_by_label("hedy.lamarr@gmail.com").check()  # with the other's email
    form.locator("[data-merge]").click()

    expect(page).to_have_url(reverse("customers:detail", args=[kept.pk]))
    expect(page.locator("body")).to_contain_text("was merged into this customer")
    assert not Customer.objects.filter(pk=other.pk).exists()
    kept.refresh_from_db()
    assert kept.email == "hedy.lamarr@gmail.com" and kept.phone == "+1 310 555 0144"

    page.goto(reverse("customers:duplicates_merges"))
    page.locator("[data-undo]").click()
    page.locator("[data-confirm-undo]").click()
    expect(page).to_have_url(reverse("customers:detail", args=[other.pk]))
    expect(page.locator("body")).to_contain_text("The merge is undone")
    kept.refresh_from_db()
    assert kept.email == "hedy@films.example"
    assert CustomerMerge.objects.get().undone_by == manager
