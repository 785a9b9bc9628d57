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
    postgres.gin_indexes_create()


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    postgres.gin_indexes_drop()


class Migration(migrations.Migration):
    dependencies = [("search", "0001_initial")]

    operations = [migrations.RunPython(create, drop)]
