"""PostgreSQL only: the entries in an unlogged table (search.models says why). It rewrites
the table and its indexes under an exclusive lock, about 6 s per 200,000 entries (30 s for a
million): every search and every change to an indexed record waits meanwhile, so run it when
the CRM is quiet. The lock is waited for ten seconds at most, then the migration fails, to be
run again, rather than every request waiting behind it."""

from django.db import migrations


def unlogged(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("SET LOCAL lock_timeout = '10s'")
        schema_editor.execute("ALTER TABLE search_searchentry SET UNLOGGED")


def logged(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("SET LOCAL lock_timeout = '10s'")
        schema_editor.execute("ALTER TABLE search_searchentry SET LOGGED")


class Migration(migrations.Migration):
    dependencies = [("search", "0006_name_words")]

    operations = [migrations.RunPython(unlogged, logged)]
