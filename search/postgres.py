"""The PostgreSQL side of the index: extensions, the unaccent wrapper and the text search
configurations (created by migration 0002, checked again by `search_reindex`).

- `crm_unaccent(text)`: unaccent() is only STABLE (it reads a dictionary that could change),
  so it cannot appear in an index expression; this IMMUTABLE wrapper names its dictionary
  explicitly and may. The trigram index (typo fallback) is built on it.
- `crm_simple`: the simple configuration with unaccent before it for words: names, emails,
  phone digits and companies are matched word for word, accents ignored ("Müller" finds
  "Muller" and back).
- `crm_<language>` (SEARCH_LANGUAGE, english by default): the same for prose, with the
  language's stemmer ("proposals" finds "proposal").
- `crm_search_names`, `crm_search_matches`, `crm_search_similar`: the entries matching a
  query, read through one GIN index each (FUNCTIONS below).
"""

import re

from django.conf import settings

SIMPLE = "crm_simple"


def language_configuration() -> str:
    return f"crm_{_language()}"


def _language() -> str:
    language = settings.SEARCH_LANGUAGE.strip().lower()
    if not re.fullmatch(r"[a-z_]{2,40}", language):  # it goes into DDL below
        raise ValueError(f"SEARCH_LANGUAGE must be a text search configuration: {language!r}")
    return language


def install(cursor) -> None:
    """Create what the index needs (idempotent)."""
    cursor.execute("CREATE EXTENSION IF NOT EXISTS unaccent")
    cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    cursor.execute(
        "CREATE OR REPLACE FUNCTION crm_unaccent(text) RETURNS text "
        "LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT "
        "AS $$ SELECT public.unaccent('public.unaccent'::regdictionary, $1) $$"
    )
    configuration_ensure(cursor, SIMPLE, "simple")
    configuration_ensure(cursor, language_configuration(), _language())
    functions_install(cursor)


def configuration_ensure(cursor, name: str, template: str) -> None:
    cursor.execute("SELECT 1 FROM pg_ts_config WHERE cfgname = %s", [name])
    if cursor.fetchone():
        return
    cursor.execute(f"CREATE TEXT SEARCH CONFIGURATION {name} (COPY = pg_catalog.{template})")
    cursor.execute(
        f"ALTER TEXT SEARCH CONFIGURATION {name} ALTER MAPPING FOR "
        f"hword, hword_part, word WITH public.unaccent, "
        f"{'simple' if template == 'simple' else template + '_stem'}"
    )


# The names alone (weight A of `vector`) have an index of their own: a word that half the
# records have in an email domain or a note is still found at once in the names, which
# `vector` could only tell by reading every one of those records (GIN keeps no weights).
NAMES_VECTOR = "to_tsvector('crm_simple'::regconfig, names)"

GIN_INDEXES = {
    "search_entry_vector_idx": "USING gin (vector)",
    "search_entry_names_idx": f"USING gin ({NAMES_VECTOR}) WHERE chunk = 0",
    "search_entry_names_trgm_idx": "USING gin (crm_unaccent(lower(names)) gin_trgm_ops) "
    "WHERE chunk = 0",
}


def gin_indexes_create() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        for name, definition in GIN_INDEXES.items():
            cursor.execute(f"CREATE INDEX IF NOT EXISTS {name} ON search_searchentry {definition}")


def gin_indexes_drop() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        for name in GIN_INDEXES:
            cursor.execute(f"DROP INDEX IF EXISTS {name}")


# The first step of every search (search.selectors): the entries that match, read through a
# GIN index, at most `max_rows` of them, with the field filters (type:, owner:me, stage:,
# tag:). Functions for their SET clauses, which hold for the function's own query only:
# the planner cannot tell how many entries a prefix matches ("pric:*"); guessing "many", it
# would read the table in order until the LIMIT is met, which for a rare word is the whole
# table, where the GIN index is always the better start. A setting for the whole statement
# (set_config in a transaction) cost three statements of every search: BEGIN, the setting,
# COMMIT. The trigram threshold is set the same way, inside crm_search_similar.
_FILTERS = """
  AND e.kind = ANY(wanted_kinds)
  AND (wanted_owner IS NULL OR e.owner_id = wanted_owner)
  AND (wanted_stages IS NULL OR e.stage = ANY(wanted_stages))
  AND (wanted_tags IS NULL
       OR NOT EXISTS (SELECT 1 FROM unnest(wanted_tags) t WHERE strpos(e.tags, t) = 0))
LIMIT max_rows"""
_FILTER_ARGUMENTS = (
    "wanted_kinds text[], wanted_owner integer, wanted_stages text[], wanted_tags text[], "
    "max_rows integer"
)
_RETURNS = "TABLE (id bigint, record text, record_id bigint, kind text)"
_COLUMNS = "e.id, e.record::text, e.record_id, e.kind::text"
FUNCTIONS = {
    # The names' own index (NAMES_VECTOR): `names_query` holds the positive words, and the
    # whole query (exclusions, words of other fields) is checked on the few names found.
    "crm_search_names": f"""(search_query tsquery, names_query tsquery, {_FILTER_ARGUMENTS})
RETURNS {_RETURNS} LANGUAGE sql STABLE ROWS 200 SET enable_seqscan = off AS $$
SELECT {_COLUMNS} FROM search_searchentry e
WHERE {NAMES_VECTOR.replace("names", "e.names")} @@ names_query AND e.chunk = 0
  AND coalesce(e.vector, ''::tsvector) @@ search_query{_FILTERS}
$$""",
    "crm_search_matches": f"""(search_query tsquery, {_FILTER_ARGUMENTS})
RETURNS {_RETURNS} LANGUAGE sql STABLE ROWS 1000 SET enable_seqscan = off AS $$
SELECT {_COLUMNS} FROM search_searchentry e
WHERE e.vector @@ search_query{_FILTERS}
$$""",
    # The typo fallback: a word of the unaccented name similar to the words typed (pg_trgm's
    # word similarity, at least `threshold`), through the trigram index.
    "crm_search_similar": f"""(words text, threshold real, {_FILTER_ARGUMENTS})
RETURNS {_RETURNS} LANGUAGE plpgsql VOLATILE ROWS 200
SET enable_seqscan = off SET pg_trgm.word_similarity_threshold = 0.6 AS $$
BEGIN
PERFORM set_config('pg_trgm.word_similarity_threshold', threshold::text, true);
RETURN QUERY SELECT {_COLUMNS} FROM search_searchentry e
WHERE e.chunk = 0 AND words <% crm_unaccent(lower(e.names)){_FILTERS};
END
$$""",
}


def functions_install(cursor) -> None:
    for name, definition in FUNCTIONS.items():
        cursor.execute(f"DROP FUNCTION IF EXISTS {name}")
        cursor.execute(f"CREATE FUNCTION {name}{definition}")


def functions_drop(cursor) -> None:
    for name in FUNCTIONS:
        cursor.execute(f"DROP FUNCTION IF EXISTS {name}")
