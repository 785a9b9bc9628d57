"""Warnings at entry: creating a customer, an import's preview and the API name the likely
duplicates (not only the exact email), with a link to the existing record."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from customers.models import Customer
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def existing(rep):
    return CustomerFactory(
        owner=rep,
        name="Margaret Hamilton",
        email="margaret@apollo.example",
        phone="+1 617 555 0110",
        company="Apollo Guidance",
    )


NEW = {
    "name": "Margret Hamilton",
    "email": "mhamilton@gmail.com",
    "phone": "(617) 555-0110",
    "company": "",
    "source": "web",
    "lifecycle_stage": "lead",
    "engagement_level": "MEDIUM",
    "email_consent": "unknown",
}


def test_create_warns_with_a_link_then_creates_anyway(rep_client, rep, existing):
    response = rep_client.post(reverse("customers:create"), {**NEW, "owner": rep.pk})
    assert response.status_code == 200
    page = response.content.decode()
    assert "data-duplicate-warning" in page
    assert reverse("customers:detail", args=[existing.pk]) in page
    assert "same phone" in page
    assert Customer.objects.count() == 1
    response = rep_client.post(
        reverse("customers:create"), {**NEW, "owner": rep.pk, "confirm_duplicates": "1"}
    )
    assert response.status_code == 302
    assert Customer.objects.count() == 2


def test_create_without_a_likely_duplicate_saves_at_once(rep_client, rep, existing):
    data = {**NEW, "name": "Katherine Johnson", "email": "kj@nasa.example", "phone": ""}
    response = rep_client.post(reverse("customers:create"), {**data, "owner": rep.pk})
    assert response.status_code == 302


def test_a_match_out_of_sight_is_counted_not_named(other_rep_client, other_rep, existing):
    response = other_rep_client.post(reverse("customers:create"), {**NEW, "owner": other_rep.pk})
    page = response.content.decode()
    assert "data-duplicate-warning" in page
    assert existing.name not in page
    assert "customers you cannot see" in page


def test_import_preview_names_the_likely_duplicates(rep_client, existing):
    text = (
        "Name,Email,Phone\n"
        "Margret Hamilton,mhamilton@gmail.com,617.555.0110\n"
        "Katherine Johnson,kj@nasa.example,\n"
    )
    response = rep_client.post(
        reverse("customers:import_upload"),
        {"file": SimpleUploadedFile("people.csv", text.encode()), "duplicate_mode": "skip"},
    )
    page = rep_client.get(response.url).content.decode()
    assert "Likely duplicate of" in page
    assert reverse("customers:detail", args=[existing.pk]) in page
    assert page.count("data-preview-duplicates") == 2
    assert Customer.objects.count() == 1  # a preview saves nothing


def test_api_create_answers_the_likely_duplicates(rep_api, existing):
    response = rep_api.post("/api/v1/customers/", {**NEW}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["likely_duplicates_out_of_sight"] == 0
    [match] = body["likely_duplicates"]
    assert match["id"] == existing.pk and match["confidence"] >= 60
    assert match["url"].endswith(f"/api/v1/customers/{existing.pk}/")
    assert "same phone" in match["reasons"]


def test_api_counts_what_the_caller_cannot_see(other_rep_api, existing):
    response = other_rep_api.post("/api/v1/customers/", {**NEW}, format="json")
    assert response.status_code == 201
    assert response.json()["likely_duplicates"] == []
    assert response.json()["likely_duplicates_out_of_sight"] == 1
