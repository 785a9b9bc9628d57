"""Suppression now lives in customers (customers 0005): removed from the campaigns state
only; the table campaigns_suppression and its rows stay, owned by customers.Suppression."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0002_batches_by_id_range"),
        ("customers", "0005_suppression_from_campaigns"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="Suppression")],
            database_operations=[],
        ),
    ]
