"""PostgreSQL only: the functions that read the matching entries (search.postgres.FUNCTIONS),
each with the settings of its own query."""

from django.db import migrations

from search import postgres


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        postgres.functions_install(cursor)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        postgres.functions_drop(cursor)


class Migration(migrations.Migration):
    dependencies = [("search", "0003_names_index")]

    operations = [migrations.RunPython(create, drop)]
