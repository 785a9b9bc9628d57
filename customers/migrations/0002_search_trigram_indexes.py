"""Trigram indexes so the list's "contains" search stays fast on PostgreSQL.

SQLite (the embedded demo) has no pg_trgm; there the search is a plain scan.
"""

from django.db import migrations

INDEXES = {
    "customer_name_trgm_idx": "name",
    "customer_email_trgm_idx": "email",
    "customer_company_trgm_idx": "company",
}


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for name, column in INDEXES.items():
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {name} ON customers_customer "
            f"USING gin (upper({column}) gin_trgm_ops)"
        )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("customers", "0001_initial")]

    operations = [migrations.RunPython(create, drop)]
