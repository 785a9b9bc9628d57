"""The search on PostgreSQL: how the matches are read (_stages), and the one SQL statement
that reads them, keeps those the user may see, ranks, counts and highlights (_Statement);
the typo fallback."""

import copy
import difflib
from dataclasses import dataclass, replace

from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.utils import timezone

from search import frequencies, postgres
from search.query import ParsedQuery, names_tsquery_sql, tsquery_sql
from search.selectors.common import (
    BRANCHES,
    OWNER_BOOST,
    RECENT_BOOST,
    Hit,
    SearchResults,
    python_mark,
    python_snippet,
)
from search.text import ANGLES, MARK_START, MARK_STOP, fold

MAX_HITS = 2000  # matching entries read per search (PostgreSQL); see search()
NAMES_FIRST_HITS = 200  # names read by the dropdown's first try (names_first)
# A GIN index collects every entry holding the words before returning the first: up to
# this many (estimated by search.frequencies), it is the way to read the matches.
GIN_MAX_ENTRIES = 20_000
# With a type: filter the names of other types are read too, each from the table to tell
# its type ("Schmidt type:deal": 8,000 customers' names, no deal's): fewer of them.
FILTERED_NAMES_MAX_ENTRIES = 2_000
# Beyond that, the most recently active entries are tested one by one, this many of them
# (the results page; the dropdown tests fewer), when that should find at least
# RECENT_MIN_MATCHES of them.
RECENT_ROWS = 10_000
RECENT_MIN_MATCHES = 20
# A phrase: the entries holding its words are read, at most this many per match wanted
# (and PHRASE_MAX_CANDIDATES), and those where the words stand together kept.
PHRASE_CANDIDATES = 4
PHRASE_MAX_CANDIDATES = 4000
CORRECTION_CUTOFF = 0.6  # difflib ratio: "lasren" ~ "larsen" 0.83, "hdadad" ~ "haddad" 0.67
TRIGRAM_THRESHOLD = 0.4  # word_similarity: "smiht" ~ "smith" is 0.5, "hauslr" ~ "hausler" 0.71
HEADLINE_OPTIONS = (
    f"StartSel={MARK_START}, StopSel={MARK_STOP}, MaxWords=24, MinWords=10, "
    "MaxFragments=2, FragmentDelimiter= … "
)
TITLE_HEADLINE_OPTIONS = f"StartSel={MARK_START}, StopSel={MARK_STOP}, HighlightAll=true"


def postgresql_search(
    user, parsed, allowed, shown, offset, limit, snippets, max_hits, names_first, recent_rows
) -> SearchResults:
    statement = _Statement(user, parsed, allowed, shown, offset, limit, snippets)
    results = statement.run(_stages(parsed, max_hits, names_first, recent_rows))
    # The typo fallback: nothing found, and nothing excluded (it could not honour that).
    excludes = any(term.negated for group in parsed.groups for term in group)
    if results.counts or not parsed.words() or excludes:
        return results
    # First the words typed replaced by the closest common words of the names ("Lasren":
    # "larsen"), searched like any other query; then the names with a word like them.
    corrected = _corrected(parsed, frequencies.statistics().names)
    if corrected is not None:
        statement = statement.for_query(corrected)
        results = statement.run(_stages(corrected, max_hits, names_first, recent_rows))
        if results.counts:
            results.fuzzy = True
            results.suggestion = _suggestion(parsed, results.hits) or " ".join(corrected.words())
            return results
    results = statement.run([[_Read("similar", max_hits)]])
    results.fuzzy = bool(results.counts)
    results.suggestion = _suggestion(parsed, results.hits)
    return results


def _corrected(parsed: ParsedQuery, names: frequencies.Frequencies) -> ParsedQuery | None:
    """The query with each word that begins no common word of the names replaced by the
    closest one (difflib, CORRECTION_CUTOFF); None when no word was replaced."""
    lexemes = [lexeme for lexeme in names.shares if not lexeme.isdigit()]
    changed = False

    def correct(word: str) -> str:
        nonlocal changed
        folded = fold(word)
        if any(lexeme.startswith(folded) for lexeme in lexemes):
            return word
        near = [lexeme for lexeme in lexemes if abs(len(lexeme) - len(folded)) <= 2]
        close = difflib.get_close_matches(folded, near, n=1, cutoff=CORRECTION_CUTOFF)
        if not close:
            return word
        changed = True
        return close[0]

    groups = [
        [
            term if term.negated else replace(term, text=" ".join(map(correct, term.text.split())))
            for term in group
        ]
        for group in parsed.groups
    ]
    return replace(parsed, groups=groups) if changed else None


# The snippet of a long text (a piece of a document) comes from a window around the first
# place a typed word occurs: ts_headline re-parses all the text it is given (7 ms for a
# piece of 10,000 characters).
SNIPPET_WINDOW = 1200
SNIPPET_BEFORE = 300


@dataclass(frozen=True)
class _Read:
    """One way of finding matching entries, a function of search.postgres: `names` (the
    names' index), `matches` (the whole index), `settled` (the whole index, the `exact`
    words as typed rather than as prefixes), `recent` (the latest `scan` entries, one by
    one) or `similar` (the trigram index); at most `rows` of them."""

    source: str
    rows: int
    scan: int = 0
    exact: frozenset[str] = frozenset()

    @property
    def candidates(self) -> int:
        """A phrase's reads: the entries holding its words read at most."""
        return min(self.rows * PHRASE_CANDIDATES, PHRASE_MAX_CANDIDATES)

    @property
    def function(self) -> str:
        return "crm_search_matches" if self.source == "settled" else f"crm_search_{self.source}"


def _stages(parsed, max_hits: int, names_first: bool, recent_rows: int) -> list[list[_Read]]:
    """How to read the matches, in stages: a stage is read only when the stages before it
    found nothing the user may see. The estimates come from PostgreSQL's statistics
    (search.frequencies).

    - The names' index, unless the words are in too many names ("seats" is in every deal's
      title; with a type: filter, fewer).
    - The latest entries one by one, when the words are in so many entries that a GIN
      index would take long to collect them all, and the latest hold enough of them.
    - The whole index, the common words as typed ("omar johnson": 'omar' & 'johnson'): a
      word as a prefix is every longer word it begins, and a first name begins as many
      email addresses as there are people of that name, each collected on its own
      ('omar':* & 'johnson':* took 300 ms, 'omar' & 'johnson' 10 ms).
    - The whole index, every word a prefix.
    The dropdown reads one at a time; the results page reads the names with the first of
    the others."""
    statistics = frequencies.statistics()
    entries, names, share = 0.0, 0.0, 0.0
    exact = set()
    for group in parsed.groups:
        group_share = 1.0
        for term in group:
            words = term.text.split()
            if term.phrase:  # exact words, all of them: the rarest one bounds the index
                cost = min(statistics.entries.entries(w, prefix=False) for w in words)
                names_cost = min(statistics.names.entries(w, prefix=False) for w in words)
            else:  # every prefix is collected whole
                cost = sum(statistics.entries.entries(w) for w in words)
                names_cost = sum(statistics.names.entries(w) for w in words)
                if not term.negated:
                    exact |= {fold(w) for w in words if statistics.entries.is_common(w)}
            term_share = 1.0
            for word in words:
                term_share *= statistics.entries.share(word, prefix=not term.phrase)
            entries += cost
            if term.negated:
                group_share *= 1.0 - term_share
            else:
                names += names_cost
                group_share *= term_share
        share += group_share
    names_read = _Read("names", min(max_hits, NAMES_FIRST_HITS) if names_first else max_hits)
    names_max = FILTERED_NAMES_MAX_ENTRIES if parsed.kinds else GIN_MAX_ENTRIES
    names_read = names_read if names <= names_max else None
    recent = None
    if entries > GIN_MAX_ENTRIES and min(share, 1.0) * recent_rows >= RECENT_MIN_MATCHES:
        recent = _Read("recent", max_hits, scan=recent_rows)
    settled = _Read("settled", max_hits, exact=frozenset(exact)) if exact else None
    matches = _Read("matches", max_hits)
    if names_first:
        return [[read] for read in (names_read, recent, settled, matches) if read]
    first = [read for read in (names_read, recent or settled or matches) if read]
    return [first] + [[read] for read in (settled, matches) if read and read not in first]


_STATEMENT = """
WITH terms AS MATERIALIZED (SELECT {terms}),
{stages},
visible AS MATERIALIZED ({visible}),
ranked AS MATERIALIZED (
  SELECT v.kind, v.record, v.record_id, e.id, e.chunk, {rank} AS rank
  FROM visible v JOIN search_searchentry e ON e.id = v.id CROSS JOIN terms
),
page AS MATERIALIZED (
  SELECT kind, record, record_id, max(rank) AS rank,
         (array_agg(id ORDER BY rank DESC, chunk))[1] AS best
  FROM ranked WHERE kind = ANY(%s)
  GROUP BY kind, record, record_id
  ORDER BY rank DESC, kind, record_id DESC
  LIMIT %s OFFSET %s
)
SELECT 0 AS part, kind, NULL::bigint AS record_id, count(DISTINCT record_id)::float8 AS value,
       NULL::text AS title, NULL::text AS subtitle, NULL::text AS marked, NULL::text AS snippet,
       NULL::bigint AS task_sale, NULL::bigint AS task_customer
FROM visible GROUP BY kind
UNION ALL
SELECT 1, p.kind, p.record_id, p.rank, head.title, head.subtitle, {marked}, {snippet},
       t.sale_id, t.customer_id
FROM page p
JOIN search_searchentry head
  ON head.record = p.record AND head.record_id = p.record_id AND head.chunk = 0
JOIN search_searchentry best ON best.id = p.best
LEFT JOIN sales_task t ON t.id = head.task_id
CROSS JOIN terms
{window}
UNION ALL
{read_counts}
"""
# How many entries a read found (and the user could see, in a stage): part 2 of the rows.
_COUNT = "SELECT 2, '{name}', NULL, count(*), NULL, NULL, NULL, NULL, NULL, NULL FROM {table}"
_CANDIDATES = (
    "SELECT 2, '{name}:candidates', NULL, coalesce(max(candidates), 0), NULL, NULL, NULL, NULL,"
    " NULL, NULL"
    " FROM found_{name}"
)
_READ = "found_{name} AS MATERIALIZED (SELECT * FROM {function}({arguments}){gate})"
# Where the first typed word is in the text: lower() only (unaccent is ten times slower); a
# word found nowhere (typed without its accent, or matched by its stem only) leaves the
# whole text to ts_headline.
_WINDOW = """CROSS JOIN LATERAL (
  SELECT coalesce(
    (SELECT min(strpos(lowered, n)) FROM unnest(%s::text[]) n WHERE strpos(lowered, n) > 0),
    (SELECT min(strpos(lowered, n)) FROM unnest(%s::text[]) n WHERE strpos(lowered, n) > 0)
  ) AS at FROM (SELECT lower(best.body) AS lowered) l
) w"""


class _Statement:
    """The search as one SQL statement, for one user and query (the typo fallback is a
    second one, when the first finds nothing).

    1. The matching entries, through a GIN index (search.postgres' functions), at most a
       given number of them, in stages: a stage is read only when the stages before it
       found nothing the user may see (the dropdown: the names, then the whole index).
    2. Those the user may see: per indexed model, the record's id IN the model's queryset
       filtered by crm.permissions, which the planner checks hit by hit through the primary
       key (MATERIALIZED keeps that order: without it the planner may walk a model's whole
       table and test every entry instead of asking the GIN index once).
    3. Their rank (ts_rank_cd and the boosts, for the visible hits only), the counts per
       kind, and the page: each hit's best entry (a piece of a document's text) gives the
       snippet, its first entry the title, both highlighted by ts_headline for the rows
       shown only."""

    def __init__(self, user, parsed: ParsedQuery, allowed, shown, offset, limit, snippets):
        self.user, self.parsed, self.allowed, self.shown = user, parsed, allowed, shown
        self.offset, self.limit, self.snippets = offset, limit, snippets
        self.branches = _visible_branches(user, allowed)  # once: they may cost queries

    def for_query(self, parsed: ParsedQuery) -> "_Statement":
        """The same search (user, kinds, page, visibility) for another query."""
        other = copy.copy(self)
        other.parsed = parsed
        return other

    def terms(self, stages: list[list[_Read]]) -> tuple[str, list]:
        """The tsqueries the reads need, as the columns of the `terms` row: `query` (every
        word a prefix), `names` (its positive words), `loose` (its phrases' words in any
        order), and the same with some words as typed (`settled`, `settled_loose`)."""
        parsed = self.parsed
        columns = {"query": tsquery_sql(parsed), "names": names_tsquery_sql(parsed)}
        exact = next((read.exact for stage in stages for read in stage if read.exact), None)
        if exact:
            columns["settled"] = tsquery_sql(parsed, exact=exact)
        if parsed.has_phrases:
            columns["loose"] = tsquery_sql(parsed, loose=True)
            if exact:
                columns["settled_loose"] = tsquery_sql(parsed, loose=True, exact=exact)
        sql = ", ".join(f"{column_sql} AS {name}" for name, (column_sql, _) in columns.items())
        if not parsed.has_phrases:
            sql += ", NULL::tsquery AS loose, NULL::tsquery AS settled_loose"
        elif not exact:
            sql += ", NULL::tsquery AS settled_loose"
        return sql, [param for _, params in columns.values() for param in params]

    def run(self, stages: list[list[_Read]]) -> SearchResults:
        if not self.branches:
            return SearchResults()
        statement, params = self.sql(stages)
        with connection.cursor() as cursor:
            cursor.execute(statement, params)
            rows = cursor.fetchall()
        fuzzy = stages[0][0].source == "similar"
        counts: dict[str, int] = {}
        hits: list[Hit] = []
        read: dict[str, int] = {}
        for part, kind, record_id, value, title, subtitle, marked, snippet, sale, customer in rows:
            if part == 0 and value:
                counts[kind] = int(value)
            elif part == 1:
                hit = Hit(kind=kind, object_id=record_id, rank=value, title=title,
                          subtitle=subtitle, title_marked=marked or "", snippet=snippet or "",
                          task_sale_id=sale, task_customer_id=customer)  # fmt: skip
                if fuzzy:  # no tsquery to highlight with: the words typed, marked in Python
                    hit.title_marked = python_mark(title, self.parsed.words())
                    hit.snippet = python_snippet(snippet or "", self.parsed.words())
                hits.append(hit)
            elif part == 2:
                read[kind] = int(value)
        hits.sort(key=lambda hit: (-hit.rank, hit.kind, -hit.object_id))
        # More may match than was read: a read stopped at its limit, or a later stage was
        # not read because an earlier one found something.
        capped = any(self.read_capped(r, read) for stage in stages for r in stage)
        capped |= any(read.get(f"stage{number}") for number in range(len(stages) - 1))
        return SearchResults(
            hits=hits,
            counts=counts,
            total=sum(counts.get(kind, 0) for kind in self.shown),
            capped=capped,
        )

    def read_capped(self, read: _Read, counts: dict[str, int]) -> bool:
        """Did the read stop before it had looked at everything that could match?"""
        if counts.get(read.source, 0) >= read.rows:
            return True
        if read.source == "recent":
            return frequencies.statistics().entries.rows > read.scan
        return counts.get(f"{read.source}:candidates", 0) >= read.candidates

    def sql(self, stages: list[list[_Read]]) -> tuple[str, list]:
        terms_sql, params = self.terms(stages)
        stage_sql, read_counts = [], []
        for number, stage in enumerate(stages):
            gate = ""
            if number:
                earlier = " UNION ALL ".join(f"SELECT 1 FROM stage{n}" for n in range(number))
                gate = f" WHERE NOT EXISTS ({earlier})"
            for read in stage:
                arguments, arguments_params = self.arguments(read)
                stage_sql.append(
                    _READ.format(
                        name=read.source, function=read.function, arguments=arguments, gate=gate
                    )
                )
                params += arguments_params
                read_counts.append(_COUNT.format(name=read.source, table=f"found_{read.source}"))
                if read.source in ("matches", "settled") and self.parsed.has_phrases:
                    read_counts.append(_CANDIDATES.format(name=read.source))
            visible_sql, visible_params = self.visible_sql(
                " UNION ".join(
                    f"SELECT id, record, record_id, kind FROM found_{read.source}" for read in stage
                )
            )
            stage_sql.append(f"stage{number} AS MATERIALIZED ({visible_sql})")
            params += visible_params
            read_counts.append(_COUNT.format(name=f"stage{number}", table=f"stage{number}"))
        visible = " UNION ALL ".join(f"SELECT * FROM stage{n}" for n in range(len(stages)))
        fuzzy = stages[0][0].source == "similar"
        rank_sql, rank_params = self.rank_sql(fuzzy)
        params += [*rank_params, list(self.shown), self.limit, self.offset]
        marked, snippet, window = "NULL::text", "NULL::text", ""
        if fuzzy:
            snippet = "head.body" if self.snippets else snippet
        else:
            marked = _headline_sql("head.title")
            params += [postgres.SIMPLE, ANGLES, TITLE_HEADLINE_OPTIONS]
            if self.snippets:
                snippet = _headline_sql(
                    f"CASE WHEN length(best.body) <= {SNIPPET_WINDOW} OR w.at IS NULL"
                    f" THEN best.body ELSE substr(best.body,"
                    f" greatest(w.at - {SNIPPET_BEFORE}, 1), {SNIPPET_WINDOW}) END"
                )
                params += [postgres.language_configuration(), ANGLES, HEADLINE_OPTIONS]
                window = _WINDOW
                words = {word.lower() for word in self.parsed.words()}
                words |= {fold(word) for word in words}
                params += [sorted(words), sorted({word[: max(4, len(word) - 3)] for word in words})]
        statement = _STATEMENT.format(
            terms=terms_sql,
            stages=",\n".join(stage_sql),
            visible=visible,
            rank=rank_sql,
            marked=marked,
            snippet=snippet,
            window=window,
            read_counts=" UNION ALL ".join(read_counts),
        )
        return statement, params

    def arguments(self, read: _Read) -> tuple[str, list]:
        """The function's arguments: what to match, then the field filters and the limit."""
        parsed = self.parsed
        sql = "%s::text[], %s::integer, %s::text[], %s::text[], %s::integer"
        params = [
            list(self.allowed),
            self.user.pk if parsed.owner_me else None,
            list(parsed.stages) or None,
            [f" {tag} " for tag in parsed.tags] or None,
            read.rows,
        ]
        if read.source == "names":
            return "(SELECT query FROM terms), (SELECT names FROM terms), " + sql, params
        if read.source in ("matches", "settled"):
            query, loose = ("settled", "settled_loose") if read.exact else ("query", "loose")
            return (
                f"(SELECT {query} FROM terms), (SELECT {loose} FROM terms), %s::integer, " + sql,
                [read.candidates, *params],
            )
        if read.source == "recent":
            return "(SELECT query FROM terms), %s::integer, " + sql, [read.scan, *params]
        words = " ".join(parsed.words())
        return "%s::text, %s::real, " + sql, [words, TRIGRAM_THRESHOLD, *params]

    def visible_sql(self, hits: str) -> tuple[str, list]:
        """The hits (SQL of entries) whose record the user may see."""
        sql, params = [], []
        for field_name, visible_sql, visible_params in self.branches:
            sql.append(
                f"SELECT h.* FROM ({hits}) h WHERE h.record = %s AND h.record_id IN ({visible_sql})"
            )
            params += [field_name, *visible_params]
        return " UNION ALL ".join(sql), params

    def rank_sql(self, fuzzy: bool) -> tuple[str, list]:
        """The rank of the entry `e`: how well it matches, with the boosts."""
        if fuzzy:
            base = "word_similarity(crm_unaccent(lower(%s)), crm_unaccent(lower(e.names)))"
            params: list = [" ".join(self.parsed.words())]
        else:
            base, params = "ts_rank_cd(e.vector, terms.query)", []
        now = timezone.now()
        recent = " ".join("WHEN e.activity_at >= %s THEN %s" for _ in RECENT_BOOST)
        sql = (
            f"{base} * (CASE WHEN e.owner_id = %s THEN %s ELSE 1.0 END)"
            f" * (CASE {recent} ELSE 1.0 END)"
        )
        params += [self.user.pk, OWNER_BOOST]
        for age, boost in RECENT_BOOST:
            params += [now - age, boost]
        return sql, params


def _headline_sql(text: str) -> str:
    """ts_headline of `text` (SQL) in a configuration, with options (parameters: the
    configuration, the stand-ins, the options). ts_headline drops what its parser takes for
    HTML tags; "<" and ">" go in as stand-ins so that a "<script>" in a note comes back, and
    is shown escaped, as the text it is."""
    return f"ts_headline(%s::regconfig, translate({text}, '<>', %s), terms.query, %s)"


def _visible_branches(user, allowed: list[str]) -> list[tuple[str, str, list]]:
    """Per indexed model with a kind asked for: (its key in the index, the SQL of the ids the
    user may see, its parameters); none for a model of which the user may see nothing. For
    an admin, who may see every record, that is the records that exist: an entry may
    outlive its record for a while (search.alongside, search.models)."""
    branches = []
    for branch in BRANCHES:
        if not any(kind in allowed for kind in branch.kinds):
            continue
        visible = branch.visible(user, branch.model.objects.order_by())
        try:
            sql, params = visible.values("pk").query.sql_with_params()
        except EmptyResultSet:  # nothing of this model is visible to the user
            continue
        branches.append((branch.field, sql, list(params)))
    return branches


def _suggestion(parsed: ParsedQuery, hits: list[Hit]) -> str:
    """ "Did you mean": each typed word replaced by the closest word of the best hits' titles."""
    if not hits:
        return ""
    vocabulary = {
        fold(word).strip(".,;:()"): word.strip(".,;:()")
        for hit in hits[:5]
        for word in hit.title.split()
    }
    words = []
    for word in parsed.words():
        close = difflib.get_close_matches(fold(word), list(vocabulary), n=1, cutoff=0.5)
        words.append(vocabulary[close[0]] if close else word)
    suggestion = " ".join(words)
    return "" if fold(suggestion) == fold(" ".join(parsed.words())) else suggestion
