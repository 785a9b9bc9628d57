import json

import pytest
from django.core import signing
from django.urls import reverse

from leads.models import LeadActivity
from leads.tracking import SALT, tracking_token_for
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def lead(db):
    return CustomerFactory(lifecycle_stage="lead")


def test_good_token_records_a_website_visit(client, lead):
    url = reverse("track", args=[tracking_token_for(lead.pk)])
    response = client.post(url, {"type": "website_visit", "page": "/pricing"})
    assert response.status_code == 201
    activity = LeadActivity.objects.get()
    assert (activity.customer, activity.activity_type) == (lead, "website_visit")
    assert activity.details == {"page": "/pricing"}
    assert activity.score_impact == 2


def test_json_body_works(client, lead):
    url = reverse("track", args=[tracking_token_for(lead.pk)])
    body = {"type": "form_submit", "details": {"form": "demo-request"}}
    response = client.post(url, json.dumps(body), content_type="application/json")
    assert response.status_code == 201
    assert LeadActivity.objects.get().details == {"form": "demo-request"}


def test_tampered_token_is_refused(client, lead):
    token = tracking_token_for(lead.pk)
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    response = client.post(reverse("track", args=[tampered]), {"type": "download"})
    assert response.status_code == 403
    assert response.json()["error"] == "Invalid or expired tracking token."
    assert not LeadActivity.objects.exists()


def test_token_for_another_salt_is_refused(client, lead):
    forged = signing.dumps({"c": lead.pk}, salt="something-else", compress=True)
    assert client.post(reverse("track", args=[forged]), {"type": "download"}).status_code == 403


def test_expired_token_is_refused(client, lead, settings):
    token = tracking_token_for(lead.pk)
    settings.TRACKING_TOKEN_MAX_AGE_SECONDS = -1
    assert client.post(reverse("track", args=[token]), {"type": "download"}).status_code == 403
    assert not LeadActivity.objects.exists()


def test_token_of_an_unknown_customer_is_a_400(client, lead):
    token = tracking_token_for(lead.pk)
    lead.delete()
    response = client.post(reverse("track", args=[token]), {"type": "download"})
    assert response.status_code == 400
    assert "Unknown customer" in response.json()["error"]


@pytest.mark.parametrize(
    "body,content_type",
    [
        ({"type": "telepathy"}, None),
        ({"type": "meeting_scheduled"}, None),  # not something a website may report
        ("{not json", "application/json"),
        ("[1, 2]", "application/json"),
        (json.dumps({"type": "download", "details": "x" * 10}), "application/json"),
    ],
)
def test_bad_input_is_a_400_with_a_json_error(client, lead, body, content_type):
    url = reverse("track", args=[tracking_token_for(lead.pk)])
    if content_type:
        response = client.post(url, body, content_type=content_type)
    else:
        response = client.post(url, body)
    assert response.status_code == 400
    assert "error" in response.json()
    assert not LeadActivity.objects.exists()


def test_open_pixel_records_a_visit_and_returns_a_gif(client, lead):
    response = client.get(reverse("track_pixel", args=[tracking_token_for(lead.pk)]))
    assert response.status_code == 200
    assert response["Content-Type"] == "image/gif"
    assert response.content.startswith(b"GIF89a")
    assert LeadActivity.objects.get().activity_type == "website_visit"


def test_open_pixel_with_a_bad_token_records_nothing(client, lead):
    response = client.get(reverse("track_pixel", args=["garbage"]))
    assert response.status_code == 200
    assert not LeadActivity.objects.exists()


def test_tokens_are_not_guessable(lead):
    other = CustomerFactory()
    token = tracking_token_for(lead.pk)
    assert len(token) > 30
    assert tracking_token_for(other.pk)[-20:] != token[-20:]
    assert signing.loads(token, salt=SALT) == {"c": lead.pk}


def _post_json(client, lead, raw: str):
    url = reverse("track", args=[tracking_token_for(lead.pk)])
    return client.post(url, raw, content_type="application/json")


def test_a_nul_character_in_details_is_dropped_not_a_500(client, lead):
    body = {
        "type": "form_submit",
        "details": {"form\u0000": "demo\u0000-request", "x": ["a\u0000"]},
    }
    response = _post_json(client, lead, json.dumps(body))
    assert response.status_code == 201
    assert LeadActivity.objects.get().details == {"form": "demo-request", "x": ["a"]}


@pytest.mark.parametrize(
    "raw",
    [
        json.dumps({"type": ["website_visit"]}),
        json.dumps({"type": {"a": 1}}),
        '{"type": "download", "details": ' + "[" * 5000 + "]" * 5000 + "}",
        '{"type": "download", "details": ' + '{"a":' * 30 + "1" + "}" * 30 + "}",
    ],
    ids=["type-list", "type-object", "nested-5000", "nested-30"],
)
def test_hostile_json_answers_400_with_a_json_error(client, lead, raw):
    response = _post_json(client, lead, raw)
    assert response.status_code == 400
    assert "error" in response.json()
    assert not LeadActivity.objects.exists()
