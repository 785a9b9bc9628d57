from celery import shared_task
from django.db import OperationalError

from search.services import search_entries_refresh


@shared_task(
    name="search.index_records",
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=5,
    ignore_result=True,
    time_limit=10 * 60,
    soft_time_limit=9 * 60,
)
def index_records(model: str, ids: list[int]) -> None:
    search_entries_refresh(model=model, ids=ids)
