"""The JSON API's customer list over 100k customers, as a phone calls it (issue 18)."""

from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from api.services import device_token_create
from bench import database
from bench.measure import PageRequest, measure_pages
from bench.registry import scenario

REQUESTS = 200
WARMUP = 12


def token_client(user) -> APIClient:
    """An API client with a fresh device token of `user` ("bench" device, replaced each run)."""
    _token, raw = device_token_create(actor=user, device_name="bench")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {raw}")
    return client


@scenario("api_customers_100k", targets={"p95_ms_max": 60, "queries_max": 9}, order=21)
def api_customers_100k() -> dict:
    """/api/v1/customers/ with a filter, pages of 50, as a rep and a manager (token auth)."""
    database.ensure_seeded_100k()
    users = get_user_model().objects.in_bulk(["nora", "alex"], field_name="username")
    manager, rep = token_client(users["nora"]), token_client(users["alex"])
    url = "/api/v1/customers/?page_size=50"
    mix = [
        PageRequest("alex", rep, url),
        PageRequest("alex", rep, f"{url}&lifecycle_stage=prospect"),
        PageRequest("alex", rep, f"{url}&region=emea&fields=mobile"),
        PageRequest("alex", rep, f"{url}&q=smith"),
        PageRequest("alex", rep, f"{url}&engagement_level=HIGH"),
        PageRequest("nora", manager, url),
        PageRequest("nora", manager, f"{url}&lifecycle_stage=customer"),
        PageRequest("nora", manager, f"{url}&industry=software&fields=mobile"),
        PageRequest("nora", manager, f"{url}&owner={users['alex'].pk}"),
        PageRequest("nora", manager, f"{url}&q=garcia"),
    ]
    return measure_pages(mix, requests=REQUESTS, warmup=WARMUP)
