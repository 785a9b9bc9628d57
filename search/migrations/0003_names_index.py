"""PostgreSQL only: the names' own GIN index (search.postgres.NAMES_VECTOR), for databases
migrated before 0002 created it too. IF NOT EXISTS: a new database has it from 0002."""

from django.db import migrations

from search import postgres


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    definition = postgres.GIN_INDEXES["search_entry_names_idx"]
    schema_editor.execute(
        f"CREATE INDEX IF NOT EXISTS search_entry_names_idx ON search_searchentry {definition}"
    )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("DROP INDEX IF EXISTS search_entry_names_idx")


class Migration(migrations.Migration):
    dependencies = [("search", "0002_postgres_indexes")]

    operations = [migrations.RunPython(create, drop)]
