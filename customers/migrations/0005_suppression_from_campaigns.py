"""Suppression moves from campaigns to customers (beside the email gate): state only, the
table keeps its name and its rows. campaigns 0003 removes it from the campaigns state after
this has added it here. New reasons: invalid and dropped (SendGrid's `dropped`)."""

import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("customers", "0004_lead_qualification_fields"),
        ("campaigns", "0002_batches_by_id_range"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="Suppression",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        ("email", models.CharField(max_length=254)),
                        (
                            "reason",
                            models.CharField(
                                choices=[
                                    ("unsubscribe", "Unsubscribed"),
                                    ("bounce", "Bounced"),
                                    ("spam", "Spam report"),
                                    ("invalid", "Invalid address"),
                                    ("dropped", "Dropped by the provider"),
                                    ("manual", "Added by hand"),
                                ],
                                max_length=12,
                            ),
                        ),
                        ("detail", models.CharField(blank=True, max_length=500)),
                        ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                    ],
                    options={
                        "db_table": "campaigns_suppression",
                        "ordering": ["-created_at"],
                        "constraints": [
                            models.UniqueConstraint(
                                fields=("email",), name="suppression_email_unique"
                            )
                        ],
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
