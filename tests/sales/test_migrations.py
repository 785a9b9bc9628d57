"""The stage-history backfill (sales 0005) on data written before it: each change's left_at
is the next change's time, and each deal's furthest stage covers its history and status."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

BEFORE = [("sales", "0004_won_customer_index")]
AFTER = [("sales", "0005_stage_history_columns")]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_backfill_of_left_at_and_furthest_stage():
    old = _migrate(BEFORE)
    try:
        User = old.get_model("auth", "User")
        Customer = old.get_model("customers", "Customer")
        Sale = old.get_model("sales", "Sale")
        StageChange = old.get_model("sales", "StageChange")
        owner = User.objects.create(username="backfill")
        customer = Customer.objects.create(name="C", email="c@example.com", owner=owner)
        start = timezone.now() - timedelta(days=10)
        # Went New -> Proposal -> Contacted: furthest is Proposal though it is back.
        back = Sale.objects.create(title="Back", customer=customer, status="CONTACTED")
        # No history at all (written before stage changes were kept): its status counts.
        bare = Sale.objects.create(title="Bare", customer=customer, status="NEGOTIATION")
        steps = [("NEW", 0), ("PROPOSAL", 2), ("CONTACTED", 5)]
        ids = [
            StageChange.objects.create(
                sale=back, to_status=status, changed_at=start + timedelta(days=day)
            ).pk
            for status, day in steps
        ]

        new = _migrate(AFTER)
        Sale = new.get_model("sales", "Sale")
        StageChange = new.get_model("sales", "StageChange")
        left = [StageChange.objects.get(pk=pk).left_at for pk in ids]
        assert left == [start + timedelta(days=2), start + timedelta(days=5), None]
        assert Sale.objects.get(pk=back.pk).furthest_stage_rank == 2
        assert Sale.objects.get(pk=bare.pk).furthest_stage_rank == 3
    finally:
        call_command("migrate", verbosity=0)
