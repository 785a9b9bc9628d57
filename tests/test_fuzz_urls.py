"""Every URL pattern, walked from the resolver as each role, with hostile values in its path,
its query parameters and its forms: nothing answers 5xx (issue 14).

The patterns come from `get_resolver()`, so a new URL is fuzzed without editing this file.
An integer in a path is an id of the world built here (picked by the route's prefix, the
customer's when no prefix matches) or a hostile number; each page's forms and links say
which fields and query parameters to fill with hostile values.
"""

import re
from html.parser import HTMLParser
from urllib.parse import parse_qsl, quote, urlsplit

import pytest

from ai.models import TrainingRun
from tests.factories import (
    CustomerFactory,
    MarketingDocumentFactory,
    SaleFactory,
    TaskFactory,
)
from tests.url_walk import campaign_records, id_for, routes

pytestmark = pytest.mark.django_db

HOSTILE = [
    "\x00",
    "²",
    "abc",
    "-1",
    "99999999999999999999999",
    "9999-12-31T23",
    "0001-01-01T00",
    "1e999",
    "<script>alert(1)</script>",
    "' OR 1=1 --",
    "x" * 3000,
    "0000-01",
    "[]",
    "",
]
VALUES_PER_PAGE = 4  # hostile values tried per page and form (rotating through HOSTILE)
HOSTILE_IDS = ["0", "99999999999999999999999"]
# Known values of string path parameters, besides a hostile one.
STRING_PARAMETERS = {
    "status": ["NEW", "x"],
    "action": ["send", "pause", "x"],
    "kind": ["sale", "customer", "x"],
    "table": ["deals", "x"],
    "token": ["x"],
}
# The JSON API's own query parameters on every list (api.base): no page links to read them from.
API_PARAMETERS = {"fields", "updated_since", "cursor", "page_size"}
GENERIC_FIELDS = ["next", "customer", "q", "page", "id", "pk", "status", "sale", "owner"]
SKIPPED_NAMES = {"logout", "login"}  # they would end the session being fuzzed


ROUTES = [
    (route, name)
    for route, name in routes()
    if name.split(":")[-1] not in SKIPPED_NAMES and "^" not in route
]


class _Forms(HTMLParser):
    """The forms of a page (method, action, field names) and its links' query parameters."""

    def __init__(self):
        super().__init__()
        self.forms: list[dict] = []
        self.link_params: set[str] = set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.forms.append(
                {
                    "method": (attrs.get("method") or "get").lower(),
                    "action": attrs.get("action") or "",
                    "fields": set(),
                }
            )
        elif tag in ("input", "select", "textarea") and attrs.get("name") and self.forms:
            if attrs["name"] != "csrfmiddlewaretoken":
                self.forms[-1]["fields"].add(attrs["name"])
        elif tag == "a" and "?" in (attrs.get("href") or ""):
            self.link_params.update(key for key, _ in parse_qsl(urlsplit(attrs["href"]).query))


@pytest.fixture
def world(rep, manager, teams):
    """One of each record the URLs name, reachable by `rep` and `manager`."""
    customer = CustomerFactory(owner=rep)
    sale = SaleFactory(customer=customer, assigned_to=rep)
    task = TaskFactory(assigned_to=rep, sale=sale)
    training = TrainingRun.objects.create(started_by=manager)
    MarketingDocumentFactory(uploaded_by=manager)
    ids = {
        **campaign_records(rep=rep, manager=manager, customer=customer),
        "ai/runs/": training.pk,
        "ai/recommendations/deal/": sale.pk,
        "customers/": customer.pk,
        "sales/deals/": sale.pk,
        "sales/tasks/": task.pk,
        "sales/customers/": customer.pk,
        "leads/": customer.pk,
        "documents/panel/": sale.pk,
        "api/v1/deals/": sale.pk,
        "api/v1/tasks/": task.pk,
    }
    return {"ids": ids, "default": customer.pk}


def _paths(route: str, world: dict) -> list[str]:
    """The route filled in: with the world's ids, then with hostile ids and strings."""
    real_id = id_for(route, world["ids"], world["default"])

    def filled(int_value: str, string_value: str | None) -> str:
        def replace(match: re.Match) -> str:
            converter, name = match.group(1), match.group(2)
            if converter == "int":
                return int_value
            if string_value is not None:
                return quote(string_value, safe="")
            return STRING_PARAMETERS.get(name, ["x"])[0]

        return "/" + re.sub(r"<(\w+):(\w+)>", replace, route)

    if "<" not in route:
        return ["/" + route]
    paths = [filled(str(real_id), None)]
    paths += [filled(hostile, None) for hostile in HOSTILE_IDS]
    for name, values in STRING_PARAMETERS.items():
        if f":{name}>" in route:
            paths += [filled(str(real_id), value) for value in values[1:]]
    if ":str:" in route or "<str:" in route or "<slug:" in route or "<path:" in route:
        paths.append(filled(str(real_id), "%00²"))
    return paths


def _consume(response) -> int:
    if hasattr(response, "streaming_content"):
        b"".join(response.streaming_content)
    return response.status_code


def _fuzz(client, routes, world) -> list[str]:
    failures = []
    for index, (route, _name) in enumerate(routes):
        values = [HOSTILE[(index + k) % len(HOSTILE)] for k in range(VALUES_PER_PAGE)]
        for path in _paths(route, world):
            response = client.get(path)
            status = _consume(response)
            if status >= 500:
                failures.append(f"GET {path}: {status}")
                continue
            page = _Forms()
            if "html" in response.get("Content-Type", "") and status == 200:
                page.feed(response.content.decode(errors="replace"))
            query_fields = set(page.link_params) | {"page", "sort", "q", "next"} | API_PARAMETERS
            post_fields = set()
            for form in page.forms:
                target = form["action"].split("?")[0]
                if form["method"] == "get":
                    query_fields |= form["fields"]
                elif target in ("", path):
                    post_fields |= form["fields"]
            if status == 405 or not post_fields:
                post_fields |= set(GENERIC_FIELDS)
            for value in values:
                query = {field: value for field in query_fields}
                status = _consume(client.get(path, query))
                if status >= 500:
                    failures.append(f"GET {path}?{sorted(query_fields)}={value[:20]!r}: {status}")
                data = {field: value for field in post_fields}
                status = _consume(client.post(path, data))
                if status >= 500:
                    failures.append(f"POST {path} {sorted(post_fields)}={value[:20]!r}: {status}")
    return failures


APP_ROUTES = [(route, name) for route, name in ROUTES if not route.startswith("admin/")]
ADMIN_ROUTES = [
    (route, name)
    for route, name in ROUTES
    if route.startswith("admin/") and re.search(r"_(changelist|add|change|delete|history)$", name)
]


@pytest.mark.parametrize("role", ["anonymous", "rep", "manager", "admin"])
def test_no_url_answers_5xx_to_hostile_input(client, role, rep, manager, admin_user, world):
    client.raise_request_exception = False  # a 500 is recorded, and the walk goes on
    users = {"rep": rep, "manager": manager, "admin": admin_user}
    if role in users:
        client.force_login(users[role])
    failures = _fuzz(client, APP_ROUTES, world)
    assert not failures, "\n".join(failures[:40])


def test_no_admin_page_answers_5xx_to_hostile_input(client, admin_user, world):
    client.raise_request_exception = False
    client.force_login(admin_user)
    failures = _fuzz(client, ADMIN_ROUTES, world)
    assert not failures, "\n".join(failures[:40])


def test_the_walk_covers_every_app_url():
    """A sanity check of the walk itself: the app's named URLs are all there."""
    names = {name for _route, name in APP_ROUTES}
    for expected in ["customers:list", "sales:pipeline_column", "campaigns:sequence_detail",
                     "documents:panel", "analytics:export", "track"]:  # fmt: skip
        assert expected in names
    assert len(ADMIN_ROUTES) > 50
