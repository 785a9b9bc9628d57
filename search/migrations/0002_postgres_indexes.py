"""PostgreSQL only: the unaccent wrapper, the text search configurations (search.postgres),
a GIN index on the weighted tsvector and a trigram GIN index on the unaccented names (the
typo fallback). SQLite (the embedded mode) scans `plain` instead."""

from django.db import migrations

from search import postgres


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        postgres.install(cursor)
    schema_editor.execute(
        "CREATE INDEX IF NOT EXISTS search_entry_vector_idx ON search_searchentry "
        "USING gin (vector)"
    )
    schema_editor.execute(
        "CREATE INDEX IF NOT EXISTS search_entry_names_trgm_idx ON search_searchentry "
        "USING gin (crm_unaccent(lower(names)) gin_trgm_ops) WHERE chunk = 0"
    )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("DROP INDEX IF EXISTS search_entry_vector_idx")
    schema_editor.execute("DROP INDEX IF EXISTS search_entry_names_trgm_idx")


class Migration(migrations.Migration):
    dependencies = [("search", "0001_initial")]

    operations = [migrations.RunPython(create, drop)]
