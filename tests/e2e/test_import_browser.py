"""The CSV import's mapping step in Chromium: changing a column redraws the preview of the
first rows under the new mapping (htmx), and nothing is imported until "Import"."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from playwright.sync_api import Page, expect

from customers import csv_import
from customers.models import Customer, CustomerImport

pytestmark = pytest.mark.browser

EXPORT = (
    "first_name,last_name,email,last_seen\n"
    "Shelley,Kerluke,shelley@k.example,2024-03-01T10:00:00Z\n"
    "Ada,Lovelace,ada@l.example,yesterday\n"
)


def test_changing_a_column_redraws_the_preview_without_importing(page: Page, login, rep, teams):
    customer_import = csv_import.customer_import_upload(
        actor=rep,
        uploaded_file=SimpleUploadedFile("contacts.csv", EXPORT.encode()),
        duplicate_mode="skip",
    )
    login(rep)
    page.goto(reverse("customers:import_mapping", args=[customer_import.pk]))
    page.wait_for_function("window.htmx !== undefined")
    preview = page.locator("[data-mapping-preview]")
    first_name = preview.locator('[data-preview-row="2"] td[data-field="name"]')
    expect(first_name).to_have_text("Shelley Kerluke")  # the suggested mapping joins both
    page.evaluate("window.__e2eSamePage = true")

    page.get_by_label("Name, then").first.select_option(label="— do not import —")

    expect(first_name).to_have_text("Shelley")
    refused = preview.locator('[data-preview-row="3"] td[data-field="last_contact_date"]')
    expect(refused).to_contain_text("yesterday")
    expect(preview.locator('[data-preview-row="3"]')).to_contain_text("Refused")
    assert page.evaluate("window.__e2eSamePage === true"), "the page was reloaded (not htmx)"
    customer_import.refresh_from_db()
    assert customer_import.status == CustomerImport.Status.MAPPING
    assert not Customer.objects.exists()
