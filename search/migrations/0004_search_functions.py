"""PostgreSQL only: the functions that read the matching entries (search.postgres.FUNCTIONS),
each with the settings of its own query, and the index of the latest active entries that
crm_search_recent reads in order."""

from django.db import migrations

from search import postgres

RECENT = "search_entry_recent_idx"


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        postgres.functions_install(cursor)
        cursor.execute(
            f"CREATE INDEX IF NOT EXISTS {RECENT} ON search_searchentry "
            f"{postgres.GIN_INDEXES[RECENT]}"
        )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        postgres.functions_drop(cursor)
        cursor.execute(f"DROP INDEX IF EXISTS {RECENT}")


class Migration(migrations.Migration):
    dependencies = [("search", "0003_names_index")]

    operations = [migrations.RunPython(create, drop)]
