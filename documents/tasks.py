from celery import shared_task
from django.db import OperationalError

from documents.processing import document_process


@shared_task(
    name="documents.process_document",
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=5,
    ignore_result=True,
    time_limit=10 * 60,
    soft_time_limit=9 * 60,
)
def process_document(document_id: int) -> None:
    document_process(document_id=document_id)
