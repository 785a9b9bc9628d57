"""PostgreSQL only: the one-row table saying the search index holds every record
(search.postgres.INTACT_TABLE). Unlogged like the entries: a crash that empties them empties
it, and search.services.search_index_recover then rebuilds the index. Also the search
functions as they are now (search.postgres.FUNCTIONS)."""

from django.db import migrations

from search import postgres


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        f"CREATE UNLOGGED TABLE IF NOT EXISTS {postgres.INTACT_TABLE} "
        "(intact boolean PRIMARY KEY CHECK (intact))"
    )
    schema_editor.execute(postgres.INTACT_MARK)  # the entries are as complete as they were
    with schema_editor.connection.cursor() as cursor:
        postgres.functions_install(cursor)  # crm_search_similar: the longest words typed


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP TABLE IF EXISTS {postgres.INTACT_TABLE}")


class Migration(migrations.Migration):
    dependencies = [("search", "0007_entries_unlogged")]

    operations = [migrations.RunPython(create, drop)]
