"""The PostgreSQL side of the index: extensions, the unaccent wrapper and the text search
configurations (created by migration 0002, checked again by `search_reindex`).

- `crm_unaccent(text)`: unaccent() is only STABLE (it reads a dictionary that could change),
  so it cannot appear in an index expression; this IMMUTABLE wrapper names its dictionary
  explicitly and may.
- `crm_simple`: the simple configuration with unaccent before it for words: names, emails,
  phone digits and companies are matched word for word, accents ignored ("Müller" finds
  "Muller" and back).
- `crm_<language>` (SEARCH_LANGUAGE, english by default): the same for prose, with the
  language's stemmer ("proposals" finds "proposal").
- `crm_search_names`, `crm_search_matches`, `crm_search_similar`: the entries matching a
  query, read through GIN indexes (FUNCTIONS below).
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
    # Not GIN, but built after a bulk load like them: crm_search_recent's order.
    "search_entry_recent_idx": "(activity_at DESC NULLS LAST) WHERE chunk = 0",
    "search_entry_names_idx": f"USING gin ({NAMES_VECTOR}) WHERE chunk = 0",
}
# The trigrams of the names' words (search.models.NameWord), for the typo fallback.
WORDS_INDEX = "search_nameword_trgm_idx"
WORDS_INDEX_DEFINITION = "ON search_nameword USING gin (word gin_trgm_ops)"
# The words of the names of `entries` (SQL giving a `names` column) not yet known. Inserted
# after the entries, in their transaction; a word another transaction is adding waits for
# it to commit, a word known already does not. In order: two transactions adding the same
# new words wait for each other in one order, never each for the other (a deadlock).
WORDS_INSERT = f"""INSERT INTO search_nameword (word)
SELECT DISTINCT unnest(tsvector_to_array({NAMES_VECTOR})) AS word FROM ({{entries}}) written
ORDER BY word
ON CONFLICT (word) DO NOTHING"""
# Unlogged like the entries, so a crash that empties them empties it: its one row says the
# index holds every record (written by a full rebuild and by migration 0008).
INTACT_TABLE = "search_index_intact"
INTACT_MARK = f"INSERT INTO {INTACT_TABLE} VALUES (true) ON CONFLICT DO NOTHING"


def index_intact() -> bool:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {INTACT_TABLE})")
        return cursor.fetchone()[0]


# After a rebuild of every entry: the words no name has any more.
WORDS_PRUNE = f"""WITH live AS MATERIALIZED (
  SELECT DISTINCT unnest(tsvector_to_array({NAMES_VECTOR})) AS word
  FROM search_searchentry WHERE chunk = 0)
DELETE FROM search_nameword w WHERE NOT EXISTS (SELECT 1 FROM live WHERE live.word = w.word)"""


def gin_indexes_create() -> None:
    for name in GIN_INDEXES:
        gin_index_create(name)


# What a GIN build collects in memory before it writes it into the index. Less than
# PostgreSQL's 64MB default is faster here: the 100k seed's vector index took 3.2-3.5 s of
# CPU with 4-16MB against 4.3-5.0 s with 64MB (and came out 54 MB instead of 56 MB), the
# sorted keys staying in the processor's cache; the names' indexes do not mind.
GIN_BUILD_MEMORY = "16MB"


def gin_index_create(name: str) -> None:
    """One of GIN_INDEXES, unless it is there."""
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT set_config('maintenance_work_mem', %s, true)", [GIN_BUILD_MEMORY])
        definition = GIN_INDEXES[name]
        cursor.execute(f"CREATE INDEX IF NOT EXISTS {name} ON search_searchentry {definition}")


def gin_indexes_drop() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        for name in GIN_INDEXES:
            cursor.execute(f"DROP INDEX IF EXISTS {name}")


# The first step of every search (search.selectors): the entries that match, at most
# `max_rows` of them, with the field filters (type:, owner:me, stage:, tag:), read one of
# four ways:
# - crm_search_names: through the names' own index (NAMES_VECTOR);
# - crm_search_matches: through the index of whole entries (`vector`);
# - crm_search_recent: the most recently active entries, `scan_rows` of them, tested one by
#   one. For a word that a large share of the entries hold, a GIN index has to collect
#   every one of them before the first is returned (150 ms for a word in a million
#   entries), while one entry in a few of the latest holds it;
# - crm_search_similar: names with a word like the words typed (pg_trgm's word similarity,
#   at least `threshold`), through the trigram index of the names' words.
# Functions for their SET clauses, which hold for the function's own query only:
# enable_seqscan: the planner cannot tell how many entries a prefix matches ("pric:*");
# guessing "many", it would read the table in order until the LIMIT is met, which for a
# rare word is the whole table, where the GIN index is always the better start; work_mem: a
# bitmap of the 200,000 entries of a common word fits (in the default 4 MB it turns lossy,
# and every entry of a lossy page is tested again); the trigram threshold. A setting for
# the whole statement (set_config in a transaction) cost three statements of every search.
_FILTERS = """
  AND e.kind = ANY(wanted_kinds)
  AND (wanted_owner IS NULL OR e.owner_id = wanted_owner)
  AND (wanted_stages IS NULL OR e.stage = ANY(wanted_stages))
  AND (wanted_tags IS NULL
       OR NOT EXISTS (SELECT 1 FROM unnest(wanted_tags) t WHERE strpos(e.tags, t) = 0))"""
_FILTER_ARGUMENTS = (
    "wanted_kinds text[], wanted_owner integer, wanted_stages text[], wanted_tags text[], "
    "max_rows integer"
)
_RETURNS = "TABLE (id bigint, record text, record_id bigint, kind text)"
_COLUMNS = "e.id, e.record::text, e.record_id, e.kind::text"
_SETTINGS = "SET enable_seqscan = off SET work_mem = '64MB'"
# The typo fallback: the names' words like the longest SIMILAR_TYPED words typed (a pasted
# sentence would otherwise read thousands of names), at most SIMILAR_WORDS for each.
SIMILAR_TYPED = 4
SIMILAR_WORDS = 20
FUNCTIONS = {
    # `names_query` holds the positive words; the whole query (exclusions, words of other
    # fields) is checked on the few names found.
    "crm_search_names": f"""(search_query tsquery, names_query tsquery, {_FILTER_ARGUMENTS})
RETURNS {_RETURNS} LANGUAGE sql STABLE ROWS 200 {_SETTINGS} AS $$
SELECT {_COLUMNS} FROM search_searchentry e
WHERE {NAMES_VECTOR.replace("names", "e.names")} @@ names_query AND e.chunk = 0{_FILTERS}
  AND coalesce(e.vector, ''::tsvector) @@ search_query
LIMIT max_rows
$$""",
    # `loose_query` (a query with phrases): the phrases' words in any order, which the GIN
    # index answers alone; of the first `max_candidates` entries holding them, those where
    # the words stand together (read from each entry's own tsvector, a piece of a document
    # is thousands of words). Without it, the index went on until `max_rows` phrases were
    # found, and a phrase of two common words is in one entry of fifty that hold both.
    # `candidates`: how many were read (all of them when fewer than max_candidates).
    "crm_search_matches": f"""(search_query tsquery, loose_query tsquery,
    max_candidates integer, {_FILTER_ARGUMENTS})
RETURNS TABLE (id bigint, record text, record_id bigint, kind text, candidates bigint)
LANGUAGE sql STABLE ROWS 1000 {_SETTINGS} AS $$
SELECT c.id, c.record, c.record_id, c.kind, c.candidates FROM (
  SELECT m.*, count(*) OVER () AS candidates FROM (
    SELECT {_COLUMNS}, e.vector FROM search_searchentry e
    WHERE e.vector @@ coalesce(loose_query, search_query){_FILTERS}
    LIMIT CASE WHEN loose_query IS NULL THEN max_rows ELSE max_candidates END
  ) m
) c
WHERE loose_query IS NULL OR c.vector @@ search_query
LIMIT max_rows
$$""",
    "crm_search_recent": f"""(search_query tsquery, scan_rows integer, {_FILTER_ARGUMENTS})
RETURNS {_RETURNS} LANGUAGE sql STABLE ROWS 200 {_SETTINGS} AS $$
SELECT {_COLUMNS} FROM (
  SELECT * FROM search_searchentry e WHERE e.chunk = 0
  ORDER BY e.activity_at DESC NULLS LAST LIMIT scan_rows
) e
WHERE true{_FILTERS} AND e.vector @@ search_query
LIMIT max_rows
$$""",
    # The names' words like each word typed (at most SIMILAR_WORDS each, the likest
    # first), then the names holding any of them through the names' index, of which those
    # like the words typed together (the same test as the rank's).
    "crm_search_similar": f"""(words text, threshold real, {_FILTER_ARGUMENTS})
RETURNS {_RETURNS} LANGUAGE plpgsql VOLATILE ROWS 200
{_SETTINGS} SET pg_trgm.word_similarity_threshold = 0.6 AS $$
BEGIN
PERFORM set_config('pg_trgm.word_similarity_threshold', threshold::text, true);
RETURN QUERY
WITH typed AS (
  SELECT t FROM (
    SELECT DISTINCT t FROM regexp_split_to_table(crm_unaccent(lower(words)), '\\s+') t
    WHERE t <> '') d
  ORDER BY length(t) DESC, t LIMIT {SIMILAR_TYPED}
), near AS (
  SELECT DISTINCT n.word FROM typed CROSS JOIN LATERAL (
    SELECT w.word FROM search_nameword w WHERE typed.t <% w.word
    ORDER BY typed.t <<-> w.word, w.word LIMIT {SIMILAR_WORDS}) n
), wanted AS (
  SELECT string_agg(quote_literal(near.word), ' | ')::tsquery AS query FROM near
)
SELECT {_COLUMNS} FROM search_searchentry e, wanted
WHERE {NAMES_VECTOR.replace("names", "e.names")} @@ wanted.query AND e.chunk = 0
  AND crm_unaccent(lower(words)) <% crm_unaccent(lower(e.names)){_FILTERS}
LIMIT max_rows;
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
