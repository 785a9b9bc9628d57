"""The names' words (search.models.NameWord) with their trigram index, in place of the
trigram index over every entry's name, for the typo fallback (PostgreSQL only; SQLite has
no trigrams and scans)."""

from django.db import migrations, models

from search import postgres

OLD_INDEX = "search_entry_names_trgm_idx"
OLD_INDEX_DEFINITION = (
    "ON search_searchentry USING gin (crm_unaccent(lower(names)) gin_trgm_ops) WHERE chunk = 0"
)
# crm_search_similar as migration 0004 made it, for going back.
OLD_SIMILAR = f"""(words text, threshold real, {postgres._FILTER_ARGUMENTS})
RETURNS {postgres._RETURNS} LANGUAGE plpgsql VOLATILE ROWS 200
{postgres._SETTINGS} SET pg_trgm.word_similarity_threshold = 0.6 AS $$
BEGIN
PERFORM set_config('pg_trgm.word_similarity_threshold', threshold::text, true);
RETURN QUERY SELECT {postgres._COLUMNS} FROM search_searchentry e
WHERE e.chunk = 0 AND words <% crm_unaccent(lower(e.names)){postgres._FILTERS}
LIMIT max_rows;
END
$$"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            postgres.WORDS_INSERT.format(
                entries="SELECT names FROM search_searchentry WHERE chunk = 0"
            )
        )
        cursor.execute(
            f"CREATE INDEX IF NOT EXISTS {postgres.WORDS_INDEX} {postgres.WORDS_INDEX_DEFINITION}"
        )
        postgres.functions_install(cursor)
        cursor.execute(f"DROP INDEX IF EXISTS {OLD_INDEX}")


def backward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(f"CREATE INDEX IF NOT EXISTS {OLD_INDEX} {OLD_INDEX_DEFINITION}")
        cursor.execute("DROP FUNCTION IF EXISTS crm_search_similar")
        cursor.execute(f"CREATE FUNCTION crm_search_similar{OLD_SIMILAR}")


class Migration(migrations.Migration):
    dependencies = [("search", "0005_entries_without_database_constraints")]

    operations = [
        migrations.CreateModel(
            name="NameWord",
            fields=[("word", models.TextField(primary_key=True, serialize=False))],
        ),
        migrations.RunPython(forward, backward),
    ]
