"""A stale dashboard refreshed by a real Celery worker, through the Redis cache both share."""

import time
import uuid
from decimal import Decimal

import pytest
from django.utils import timezone

from analytics.dashboard import DashboardFilters, executive_dashboard
from sales import services as sale_services
from tests.factories import CustomerFactory, ManagerFactory, RepFactory, SaleFactory, TeamFactory


@pytest.fixture
def real_worker_env():
    """Production settings: the worker caches in Redis, like the web servers."""
    return {
        "DJANGO_SETTINGS_MODULE": "crm.settings",
        "DEBUG": "false",
        "SECRET_KEY": f"dashboard-worker-test-{uuid.uuid4().hex}",
        "LOG_LEVEL": "WARNING",
    }


@pytest.fixture
def shared_cache(settings):
    """This process caches in the worker's Redis too (the tests use a local memory cache)."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": settings.REDIS_URL,
            "KEY_PREFIX": "",
        }
    }
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.mark.worker
def test_a_worker_refreshes_the_dashboard_a_deal_change_made_stale(real_worker, shared_cache):
    real_worker.worker(pool="solo")
    manager, rep = ManagerFactory(), RepFactory()
    TeamFactory(managers=[manager], members=[rep])
    deal = SaleFactory(customer=CustomerFactory(owner=rep), assigned_to=rep, amount=Decimal("70"))
    filters = DashboardFilters()
    assert executive_dashboard(user=manager, filters=filters)["revenue"]["windows"] == []
    sale_services.sale_change_stage(
        actor=rep, sale=deal, to_status="WON", closed_on=timezone.localdate()
    )
    with real_worker.routed():
        assert executive_dashboard(user=manager, filters=filters)["refreshing"]
    deadline = time.monotonic() + 30
    while (dashboard := executive_dashboard(user=manager, filters=filters))["refreshing"]:
        assert time.monotonic() < deadline, "the worker never refreshed the dashboard"
        time.sleep(0.2)
    assert dashboard["revenue"]["windows"][0]["last_30"] == Decimal("70")
