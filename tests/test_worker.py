"""A real Celery worker process against Redis and the test database (not eager mode)."""

import time

import pytest

from crm.celery import app
from crm.models import SchedulerHeartbeat
from crm.tasks import scheduler_heartbeat


@pytest.mark.worker
def test_real_worker_runs_a_task_and_health_sees_it(real_worker, client):
    name, _ = real_worker.worker(pool="solo")
    with real_worker.routed():
        scheduler_heartbeat.apply_async()
    deadline = time.monotonic() + 20
    while not SchedulerHeartbeat.objects.filter(name="beat").exists():
        assert time.monotonic() < deadline, "the worker never ran the task"
        time.sleep(0.2)

    health = client.get("/healthz").json()
    assert health["checks"]["worker"]["ok"] is True
    assert name in health["checks"]["worker"]["workers"]
    assert health["checks"]["scheduler"]["ok"] is True


@pytest.mark.worker
def test_real_worker_imports_a_csv_file(real_worker, django_user_model):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from customers import csv_import
    from customers.models import Customer, CustomerImport
    from customers.tasks import run_customer_import
    from search.models import SearchEntry
    from tests.factories import RepFactory

    # Prefork, as in docker-compose.yml: the child that runs the import writes its search
    # entries alongside it on a thread of its own (search.alongside), started after the fork.
    real_worker.worker()
    rep = RepFactory(username="importer")
    text = "name,email\n" + "".join(f"Person {i},p{i}@worker.example\n" for i in range(1500))
    customer_import = csv_import.customer_import_upload(
        actor=rep, uploaded_file=SimpleUploadedFile("w.csv", text.encode()), duplicate_mode="skip"
    )
    CustomerImport.objects.filter(pk=customer_import.pk).update(status=CustomerImport.Status.QUEUED)
    with real_worker.routed():
        run_customer_import.apply_async(args=[customer_import.pk])
    deadline = time.monotonic() + 60
    while CustomerImport.objects.get(pk=customer_import.pk).status == CustomerImport.Status.QUEUED:
        assert time.monotonic() < deadline, "the worker never finished the import"
        time.sleep(0.3)
    done = CustomerImport.objects.get(pk=customer_import.pk)
    assert (done.status, done.created_count, done.processed_rows) == ("done", 1500, 1500)
    imported = Customer.objects.filter(email__endswith="@worker.example")
    assert imported.count() == 1500
    assert SearchEntry.objects.filter(customer__in=imported, title="Person 1499").count() == 1
    assert SearchEntry.objects.filter(customer__in=imported).count() == 1500
    logs = "".join(log.read_text(errors="replace") for _, _, log in real_worker.processes)
    assert "alongside their import failed" not in logs  # not by tasks after commit


@pytest.mark.worker
def test_real_worker_rescores_a_lead(real_worker):
    from leads.models import LeadActivity, LeadScore
    from leads.tasks import rescore_leads
    from tests.factories import CustomerFactory

    real_worker.worker(pool="solo")
    lead = CustomerFactory(lifecycle_stage="lead", company_size=60, source="referral")
    LeadActivity.objects.create(customer=lead, activity_type="download", score_impact=5)
    with real_worker.routed():
        rescore_leads.apply_async(args=[[lead.pk]])
    deadline = time.monotonic() + 30
    while not LeadScore.objects.filter(customer=lead).exists():
        assert time.monotonic() < deadline, "the worker never rescored the lead"
        time.sleep(0.2)
    score = LeadScore.objects.get(customer=lead)
    assert (score.company_size_score, score.source_quality_score) == (15, 10)
    assert score.engagement_score == 5


@pytest.mark.worker
def test_real_worker_advances_a_deal_and_creates_its_stage_tasks(real_worker):
    from datetime import timedelta

    from django.utils import timezone

    from sales.models import Sale, SaleActivity, Task
    from sales.tasks import advance_deals
    from tests.factories import CustomerFactory, RepFactory, SaleFactory

    real_worker.worker(pool="solo")
    rep = RepFactory(username="worker_rep")
    sale = SaleFactory(customer=CustomerFactory(owner=rep), assigned_to=rep)
    Sale.objects.filter(pk=sale.pk).update(stage_entered_at=timezone.now() - timedelta(days=3))
    at = timezone.now() - timedelta(days=1)
    SaleActivity.objects.create(sale=sale, kind="call", text="Called", occurred_at=at)
    Sale.objects.filter(pk=sale.pk).update(last_activity_at=at)
    with real_worker.routed():
        advance_deals.apply_async(args=[[sale.pk]])
    deadline = time.monotonic() + 30
    while Sale.objects.get(pk=sale.pk).status != "CONTACTED":
        assert time.monotonic() < deadline, "the worker never advanced the deal"
        time.sleep(0.2)
    assert Task.objects.filter(sale=sale, automation_key="stage:CONTACTED").count() == 2


@pytest.mark.django_db(transaction=True)
def test_beat_schedule_is_stored_for_the_database_scheduler():
    from django_celery_beat.models import PeriodicTask
    from django_celery_beat.schedulers import DatabaseScheduler

    DatabaseScheduler(app=app, lazy=True).setup_schedule()
    task = PeriodicTask.objects.get(name="crm-scheduler-heartbeat")
    assert task.task == "crm.scheduler_heartbeat"
    assert task.enabled
    nightly = PeriodicTask.objects.get(name="leads-nightly-rescore")
    assert nightly.task == "leads.rescore_all"
    assert (nightly.crontab.hour, nightly.crontab.minute) == ("2", "15")
