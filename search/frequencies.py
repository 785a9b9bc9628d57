"""How many index entries hold a word, from PostgreSQL's own statistics (PostgreSQL only).

ANALYZE (autovacuum's, or the bench's and the reindex's own) keeps, for a tsvector column
and for the names' expression index, the lexemes found in at least about one entry in a
thousand with the share of entries holding each (pg_stats.most_common_elems). A word absent
from that list is rarer than the rarest listed. That is all search.selectors needs to choose
how to read the matches of a query: through a GIN index, whose cost grows with the number of
entries holding the words (it collects them all before returning the first), or by testing
the latest entries one by one, whose cost is the number tested, and which finds enough of
them only when a good share of the entries match.

The lexemes are read once every REFRESH_SECONDS per process, in one statement; nothing here
decides what is found, only in which order the indexes are asked: a stale or missing
statistic makes a search slower, never wrong.
"""

import time
from dataclasses import dataclass, field

from django.db import connection

from search.text import fold

REFRESH_SECONDS = 600
# Below this many entries every way of reading is fast, and the statistics of a small
# table (every lexeme "common") would only make its searches depend on when ANALYZE ran.
MIN_ROWS = 10_000


@dataclass(frozen=True)
class Frequencies:
    """The entries of an index and the share of them holding each common lexeme."""

    rows: float = 0.0
    shares: dict[str, float] = field(default_factory=dict)

    def share(self, word: str, prefix: bool = True) -> float:
        """Of the entries, the share holding the word (as a prefix unless `prefix` is
        False): its lexeme, the longer lexemes it begins (a prefix), or the stem a language
        configuration made of it ("onboarding" -> "onboard"; a stem that is not a prefix of
        the word, "pricing" -> "price", is missed and counted as rare)."""
        word = fold(word)
        total = 0.0
        shortest_stem = max(3, len(word) - 3)
        for lexeme, share in self.shares.items():
            held = lexeme == word or (prefix and lexeme.startswith(word))
            if held or (word.startswith(lexeme) and len(lexeme) >= shortest_stem):
                total += share
        return min(total, 1.0)

    def is_common(self, word: str) -> bool:
        """The word itself is a lexeme of the statistics (one entry in a thousand or more)."""
        return fold(word) in self.shares

    def entries(self, word: str, prefix: bool = True) -> float:
        return self.rows * self.share(word, prefix)


@dataclass(frozen=True)
class Statistics:
    entries: Frequencies = Frequencies()  # search_searchentry.vector
    names: Frequencies = Frequencies()  # the names' index (search.postgres.NAMES_VECTOR)


_STATEMENT = """
SELECT s.tablename, c.reltuples, s.most_common_elems::text::text[], s.most_common_elem_freqs
FROM pg_stats s
JOIN pg_class c ON c.relname = s.tablename AND c.relnamespace = to_regnamespace(s.schemaname)
WHERE s.schemaname = current_schema()
  AND ((s.tablename = 'search_searchentry' AND s.attname = 'vector')
       OR s.tablename = 'search_entry_names_idx')
"""
_cache: dict[str, tuple[float, Statistics]] = {}


def statistics() -> Statistics:
    """The statistics of the current database, read at most every REFRESH_SECONDS."""
    key = connection.settings_dict["NAME"]
    now = time.monotonic()
    cached = _cache.get(key)
    if cached and now - cached[0] < REFRESH_SECONDS:
        return cached[1]
    read: dict[str, Frequencies] = {}
    with connection.cursor() as cursor:
        cursor.execute(_STATEMENT)
        for table, rows, lexemes, shares in cursor.fetchall():
            if lexemes and shares and rows >= MIN_ROWS:
                # the shares end with their minimum and maximum, after the lexemes' own
                shares = shares[: len(lexemes)]
                read[table] = Frequencies(max(rows, 0.0), dict(zip(lexemes, shares, strict=True)))
    result = Statistics(
        entries=read.get("search_searchentry", Frequencies()),
        names=read.get("search_entry_names_idx", Frequencies()),
    )
    _cache[key] = (now, result)
    return result


def statistics_forget() -> None:
    """Read them again at the next search (after an ANALYZE, in tests)."""
    _cache.clear()
