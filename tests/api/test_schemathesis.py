"""schemathesis against our own OpenAPI schema, in-process (WSGI), signed in as a rep with a
device token: every operation gets a bounded number of generated requests, valid and
invalid, and none may answer 5xx, an undocumented status or a body that breaks the schema
(issue 18).

The schema is built when the module is collected (no database then), by the generator that
serves /api/schema/; `test_the_served_schema_is_the_one_tested` checks they are the same.
(schemathesis' lazy `from_fixture` loader, which would fetch it per test, fails on pytest 9:
it sets `Node._nodeid`, which pytest 9 no longer has.)
"""

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.factories import CustomerFactory, SaleFactory, TaskFactory, device_token

EXAMPLES_PER_OPERATION = 25
# The coverage phase alone sent about 3,000 requests (every boundary of every field of every
# operation, ~100 s on the shared machine); the generated examples, valid and invalid, stay
# within the suite's budget.
CONFIG = SchemathesisConfig.from_dict({"phases": {"coverage": {"enabled": False}}})


def _served_schema() -> dict:
    return SchemaGenerator().get_schema(request=None, public=True)


def _loaded():
    import json

    from rest_framework.renderers import JSONRenderer

    document = json.loads(JSONRenderer().render(_served_schema()))
    loaded = schemathesis.openapi.from_dict(document, config=CONFIG)
    loaded.app = get_wsgi_application()
    return loaded, document


schema, SCHEMA_DOCUMENT = _loaded()


@pytest.fixture
def rep_token(rep, teams, settings):
    """A rep with a lead, a deal and a task, and the rep's device token. Like Django's test
    client, keep the test's database connection open across the WSGI requests (the handler
    closes it at the start and end of each one otherwise)."""
    settings.ALLOWED_HOSTS = ["*"]
    customer = CustomerFactory(owner=rep, lifecycle_stage="lead")
    sale = SaleFactory(customer=customer, assigned_to=rep)
    TaskFactory(assigned_to=rep, sale=sale)
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield device_token(rep, "schemathesis")
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.mark.django_db
@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_the_api_keeps_its_schema(case, rep_token):
    case.call_and_validate(
        headers={"Authorization": f"Token {rep_token}"},
        checks=[
            not_a_server_error,
            response_schema_conformance,
            status_code_conformance,
            content_type_conformance,
        ],
    )


@pytest.mark.django_db
def test_the_served_schema_is_the_one_tested(rep_client):
    served = rep_client.get("/api/schema/", {"format": "json"}).json()
    assert served == SCHEMA_DOCUMENT
