from celery import shared_task
from django.db import OperationalError

from search.services import (
    customers_entries_refresh,
    search_entries_refresh,
    search_index_recover,
)

_RETRIED = {
    "autoretry_for": (OperationalError,),
    "retry_backoff": True,
    "max_retries": 5,
    "ignore_result": True,
    "time_limit": 10 * 60,
    "soft_time_limit": 9 * 60,
}


@shared_task(name="search.index_records", **_RETRIED)
def index_records(model: str, ids: list[int]) -> None:
    search_entries_refresh(model=model, ids=ids)


@shared_task(name="search.index_customers", **_RETRIED)
def index_customers(ids: list[int]) -> None:
    """Customers and their deals (an import's)."""
    customers_entries_refresh(ids=ids)


@shared_task(name="search.recover_index", ignore_result=True, time_limit=30 * 60)
def recover_index() -> None:
    """Every few minutes (beat): the index rebuilt when PostgreSQL emptied it in a crash."""
    search_index_recover()
