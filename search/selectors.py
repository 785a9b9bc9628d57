"""Reads of the global search: hits ranked within what the user may see, their counts per
type, and the snippets of the rows shown.

Visibility is never stored in the index: each branch of the search starts from a model's own
queryset filtered by crm.permissions (visible_customers, visible_sales, ...) and joins that
record's entries, so the same SQL statement finds, ranks, filters by visibility and counts,
and a rep neither sees nor counts another rep's records. The branches are glued with UNION
ALL: one statement counts every type, one fetches a page of hits, one fetches the page's
titles and highlighted snippets (ts_headline re-reads the text, so only for the rows shown).

PostgreSQL: the stored weighted tsvectors (GIN), every word a prefix, ts_rank_cd with a small
boost for the user's own records and recent activity; when that finds nothing, a trigram
match on the unaccented names (GIN, pg_trgm) with a "did you mean". SQLite (the embedded
mode): a LIKE over the folded text of each entry, ranked by a match in the name.
"""

import difflib
from dataclasses import dataclass, field
from datetime import timedelta

from django.core.exceptions import EmptyResultSet
from django.db import connection, transaction
from django.db.models import (
    BooleanField,
    Case,
    Count,
    F,
    FloatField,
    Func,
    Max,
    Q,
    QuerySet,
    TextField,
    Value,
    When,
)
from django.db.models.expressions import RawSQL
from django.db.models.functions import Lower
from django.utils import timezone

from campaigns.models import EmailCampaign, EmailTemplate
from crm.permissions import visible_customers, visible_sales, visible_tasks
from crm.permissions.campaigns import visible_campaigns, visible_templates
from crm.permissions.documents import visible_documents
from crm.roles import is_manager_or_admin
from customers.models import Customer
from documents.models import Document
from sales.models import Sale, Task
from search import postgres
from search.models import Kind, SearchEntry
from search.query import ParsedQuery, names_tsquery_sql, tsquery_sql
from search.text import ANGLES, MARK_START, MARK_STOP, fold

OWNER_BOOST = 1.3
RECENT_BOOST = ((timedelta(days=30), 1.15), (timedelta(days=180), 1.05))
MAX_HITS = 5000  # matching entries read per search (PostgreSQL); see search()
NAMES_FIRST_HITS = 200  # names read by the dropdown's first try (names_first)
TRIGRAM_THRESHOLD = 0.4  # word_similarity: "smiht" ~ "smith" is 0.5, "hauslr" ~ "hausler" 0.71
HEADLINE_OPTIONS = (
    f"StartSel={MARK_START}, StopSel={MARK_STOP}, MaxWords=24, MinWords=10, "
    "MaxFragments=2, FragmentDelimiter= … "
)
TITLE_HEADLINE_OPTIONS = f"StartSel={MARK_START}, StopSel={MARK_STOP}, HighlightAll=true"


@dataclass(frozen=True)
class Branch:
    """One indexed model as the user sees it: its kinds and its permission filter."""

    model: type
    field: str  # SearchEntry's foreign key to it
    kinds: tuple[str, ...]
    visible: object  # crm.permissions' visible_<model>(user, queryset)


BRANCHES = (
    Branch(Customer, "customer", (Kind.CUSTOMER, Kind.LEAD), visible_customers),
    Branch(Sale, "sale", (Kind.DEAL,), visible_sales),
    Branch(Document, "document", (Kind.DOCUMENT,), visible_documents),
    Branch(Task, "task", (Kind.TASK,), visible_tasks),
    Branch(EmailTemplate, "template", (Kind.TEMPLATE,), visible_templates),
    Branch(EmailCampaign, "campaign", (Kind.CAMPAIGN,), visible_campaigns),
)
MANAGER_KINDS = (Kind.TEMPLATE, Kind.CAMPAIGN)  # reps do not search templates and campaigns


@dataclass
class Hit:
    kind: str
    object_id: int
    rank: float
    title: str = ""
    subtitle: str = ""
    title_marked: str = ""  # with MARK_START/MARK_STOP around matches, not yet escaped
    snippet: str = ""
    task_sale_id: int | None = None
    task_customer_id: int | None = None


@dataclass
class SearchResults:
    hits: list[Hit] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)  # per kind, all the user may see
    total: int = 0  # of the kinds asked for
    fuzzy: bool = False  # found by the typo fallback
    capped: bool = False  # more matched than were read (max_hits): the counts are "at least"
    suggestion: str = ""  # "did you mean", with the typos replaced


def searchable_kinds(user) -> list[str]:
    kinds = [kind.value for kind in Kind]
    if not is_manager_or_admin(user):
        kinds = [kind for kind in kinds if kind not in MANAGER_KINDS]
    return kinds


def search(
    *,
    user,
    parsed: ParsedQuery,
    kinds: list[str] | None = None,
    offset: int = 0,
    limit: int = 20,
    snippets: bool = True,
    max_hits: int = MAX_HITS,
    names_first: bool = False,
) -> SearchResults:
    """The hits of `parsed` the user may see: ranked, `limit` from `offset`, of `kinds` (a
    facet; all by default), with the counts of every kind (for the facets); `snippets`:
    with the highlighted passages (the results page; the dropdown shows titles only).

    PostgreSQL reads at most `max_hits` matching entries (and as many matching in a name):
    a word found in half a million records is counted as "N+" and ranked among those,
    rather than taking seconds to count exactly; `capped` says so.

    `names_first` (the dropdown): when a name matches, only the names are searched (their
    own small index) and the counts are "at least"; the whole index is read only when no
    name the user may see matches. A common word is in tens of thousands of entries, and
    finding them all costs the dropdown ten times what finding the names does."""
    allowed = searchable_kinds(user)
    if parsed.kinds:
        allowed = [kind for kind in allowed if kind in parsed.kinds]
    if not parsed.has_terms or not allowed:
        return SearchResults()
    shown = [kind for kind in allowed if kind in kinds] if kinds else allowed
    postgresql = connection.vendor == "postgresql"
    match = _Matcher(user, parsed, postgresql)
    if not postgresql:
        return _run(user, parsed, match, allowed, shown, offset, limit, snippets, max_hits)
    # Every pass in one transaction, for its settings (set_config(..., true) lasts until the
    # commit): the typo fallback's threshold, and no sequential scan. The planner cannot
    # estimate how many entries a prefix matches ("pric:*"); guessing "many", it reads the
    # table in order until the LIMIT is met, which for a rare word is the whole table. The
    # GIN indexes are always the better start here.
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT set_config('enable_seqscan', 'off', true),"
            " set_config('pg_trgm.word_similarity_threshold', %s, true)",
            [str(TRIGRAM_THRESHOLD)],
        )
        if names_first:
            names_hits = min(max_hits, NAMES_FIRST_HITS)
            results = _run(user, parsed, match, allowed, shown, offset, limit, snippets,
                           names_hits, names_only=True)  # fmt: skip
            if results.hits:
                results.capped = True
                return results
        results = _run(user, parsed, match, allowed, shown, offset, limit, snippets, max_hits)
        # The typo fallback: nothing found, and nothing excluded (it could not honour that).
        excludes = any(term.negated for group in parsed.groups for term in group)
        if not results.counts and parsed.words() and not excludes:
            match = _Matcher(user, parsed, postgresql, fuzzy=True)
            results = _run(user, parsed, match, allowed, shown, offset, limit, snippets, max_hits)
            results.fuzzy = bool(results.counts)
            results.suggestion = _suggestion(parsed, results.hits)
    return results


def _run(
    user, parsed, match, allowed, shown, offset, limit, snippets, max_hits, names_only=False
) -> SearchResults:
    capped = False
    if match.postgresql:
        counts, hits, capped = _postgres_counts_and_page(
            user, match, allowed, shown, offset, limit, max_hits, names_only
        )
    else:
        counts = _counts(user, parsed, match, allowed)
        hits = []
    results = SearchResults(
        counts=counts, total=sum(counts.get(kind, 0) for kind in shown), capped=capped
    )
    if results.total and limit:
        if not match.postgresql:
            hits = _page(user, parsed, match, shown, offset, limit)
        results.hits = hits
        _describe(results.hits, match, snippets)
    return results


# PostgreSQL: one statement for the counts and the page ------------------------------------

_POSTGRES_STATEMENT = """
WITH hits AS MATERIALIZED ({hits}),
visible AS MATERIALIZED ({visible})
(SELECT 0 AS part, kind, count(DISTINCT record_id)::float8 AS value, NULL::bigint AS record_id
 FROM visible GROUP BY kind)
UNION ALL
(SELECT 1, v.kind, max({rank}) AS value, v.record_id
 FROM visible v JOIN search_searchentry e ON e.id = v.id
 WHERE v.kind = ANY(%s)
 GROUP BY v.kind, v.record_id
 ORDER BY value DESC, v.kind, v.record_id DESC
 LIMIT %s OFFSET %s)
UNION ALL
(SELECT 2, NULL, count(*)::float8, NULL FROM hits)
"""


def _postgres_statement(user, match, allowed, shown, offset, limit, max_hits, names_only=False):
    """The matching entries first (`hits`: the GIN index, the filters, nothing else), then
    those the user may see (`visible`: per indexed model, the record's id IN the model's
    queryset filtered by crm.permissions, which the planner checks hit by hit through the
    primary key), then the counts per kind and the ranked page (ts_rank_cd and the boosts,
    computed for the visible hits only). MATERIALIZED keeps that order: without it the
    planner may walk a model's whole table and test every entry instead of asking the GIN
    index once."""

    def matching(names_only: bool):
        entries = SearchEntry.objects.filter(
            match.condition(prefix="", names_only=names_only), kind__in=allowed
        )
        return entries.order_by().values("id", "record", "record_id", "kind")[:max_hits]

    hits_sql, params = matching(names_only).query.sql_with_params()
    params = list(params)
    if not match.fuzzy and not names_only:
        # Matches in a name first: kept whatever else a common word matches.
        names_sql, names_params = matching(True).query.sql_with_params()
        hits_sql = f"({names_sql}) UNION ({hits_sql})"
        params = [*names_params, *params]
    branches = []
    for branch in BRANCHES:
        if not any(kind in allowed for kind in branch.kinds):
            continue
        visible = branch.visible(user, branch.model.objects.order_by())
        sql = "SELECT h.id, h.kind, h.record_id FROM hits h WHERE h.record = %s"
        branch_params = [branch.field]
        if visible.query.has_filters():
            try:
                visible_sql, visible_params = visible.values("pk").query.sql_with_params()
            except EmptyResultSet:  # nothing of this model is visible to the user
                continue
            sql += f" AND h.record_id IN ({visible_sql})"
            branch_params += list(visible_params)
        branches.append(sql)
        params += branch_params
    if not branches:
        return None, []
    rank_sql, rank_params = match.rank_sql()
    statement = _POSTGRES_STATEMENT.format(
        hits=hits_sql, visible=" UNION ALL ".join(branches), rank=rank_sql
    )
    return statement, [*params, *rank_params, list(shown), limit, offset]


def _postgres_counts_and_page(user, match, allowed, shown, offset, limit, max_hits, names_only):
    statement, params = _postgres_statement(
        user, match, allowed, shown, offset, limit, max_hits, names_only
    )
    if statement is None:
        return {}, [], False
    with connection.cursor() as cursor:  # in search()'s transaction, with its settings
        cursor.execute(statement, params)
        rows = cursor.fetchall()
    counts = {kind: int(value) for part, kind, value, _ in rows if part == 0 and value}
    hits = [
        Hit(kind=kind, object_id=record_id, rank=value)
        for part, kind, value, record_id in rows
        if part == 1
    ]
    capped = any(part == 2 and value >= max_hits for part, _, value, _ in rows)
    return counts, hits, capped


# Matching --------------------------------------------------------------------------------


class _Matcher:
    """The conditions and rank on the joined entries (`search_entries__...`) of a branch."""

    def __init__(self, user, parsed: ParsedQuery, postgresql: bool, fuzzy: bool = False):
        self.user, self.parsed, self.postgresql, self.fuzzy = user, parsed, postgresql, fuzzy
        if postgresql and not fuzzy:
            self.tsquery_sql, self.tsquery_params = tsquery_sql(parsed)
            self.names_sql, self.names_params = names_tsquery_sql(parsed)

    def tsquery(self) -> RawSQL:
        return RawSQL(self.tsquery_sql, self.tsquery_params, output_field=TextField())

    def condition(self, prefix: str = "search_entries__", names_only: bool = False) -> Q:
        """What an entry must satisfy: the words and the field filters."""
        parsed = self.parsed
        q = Q()
        if self.postgresql and not self.fuzzy and names_only:
            # The entries themselves (prefix ""), found through the names' own index
            # (search.postgres.NAMES_VECTOR); the whole query (exclusions, the other fields'
            # words) is then checked on those few. Spelled so that the planner cannot also
            # use the index on `vector`: ANDing its bitmap in reads every entry that a
            # common word is in, ten times the work of the names.
            q &= Q(
                RawSQL(
                    f"coalesce(vector, ''::tsvector) @@ {self.tsquery_sql}",
                    self.tsquery_params,
                    output_field=BooleanField(),
                ),
                RawSQL(
                    f"{postgres.NAMES_VECTOR} @@ {self.names_sql}",
                    self.names_params,
                    output_field=BooleanField(),
                ),
                chunk=0,
            )
        elif self.postgresql and not self.fuzzy:
            q &= Q(_Match(F(f"{prefix}vector"), self.tsquery()))
        elif self.postgresql:
            words = " ".join(parsed.words())
            q &= Q(**{f"{prefix}chunk": 0}) & Q(
                _WordSimilar(Value(words), _folded(F(f"{prefix}names")))
            )
        else:
            q &= _like_condition(parsed, prefix)
        if parsed.owner_me:
            q &= Q(**{f"{prefix}owner": self.user})
        if parsed.stages:
            q &= Q(**{f"{prefix}stage__in": parsed.stages})
        for tag in parsed.tags:
            q &= Q(**{f"{prefix}tags__contains": f" {tag} "})
        return q

    def rank_sql(self) -> tuple[str, list]:
        """rank() as SQL over the entry `e` (the PostgreSQL statement)."""
        if not self.fuzzy:
            base, params = f"ts_rank_cd(e.vector, {self.tsquery_sql})", list(self.tsquery_params)
        else:
            base = "word_similarity(%s, crm_unaccent(lower(e.names)))"
            params = [" ".join(self.parsed.words())]
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

    def rank(self, prefix: str = "search_entries__"):
        if self.postgresql and not self.fuzzy:
            base = Func(
                F(f"{prefix}vector"),
                self.tsquery(),
                function="ts_rank_cd",
                output_field=FloatField(),
            )
        elif self.postgresql:
            words = " ".join(self.parsed.words())
            base = Func(
                Value(words),
                _folded(F(f"{prefix}names")),
                function="word_similarity",
                output_field=FloatField(),
            )
        else:
            first = fold(self.parsed.words()[0]) if self.parsed.words() else ""
            base = Case(
                When(**{f"{prefix}chunk": 0, f"{prefix}names__icontains": first}, then=Value(1.0)),
                default=Value(0.2),
                output_field=FloatField(),
            )
        now = timezone.now()
        owner = Case(
            When(**{f"{prefix}owner": self.user}, then=Value(OWNER_BOOST)),
            default=Value(1.0),
            output_field=FloatField(),
        )
        recent = Case(
            *(
                When(**{f"{prefix}activity_at__gte": now - age}, then=Value(boost))
                for age, boost in RECENT_BOOST
            ),
            default=Value(1.0),
            output_field=FloatField(),
        )
        return base * owner * recent


class _Match(Func):
    """tsvector @@ tsquery"""

    arg_joiner = " @@ "
    template = "(%(expressions)s)"
    output_field = BooleanField()


class _WordSimilar(Func):
    """query <% text: a word of `text` is similar to the query (pg_trgm, GIN)."""

    arg_joiner = " <%% "
    template = "(%(expressions)s)"
    output_field = BooleanField()


def _folded(expression):
    """crm_unaccent(lower(x)): the trigram index's expression (migration 0002)."""
    return Func(Lower(expression), function="crm_unaccent", output_field=TextField())


def _like_condition(parsed: ParsedQuery, prefix: str) -> Q:
    """SQLite: every word of a group in the entry's folded text (`plain`), groups OR-ed."""
    groups = Q()
    for group in parsed.groups:
        q = Q()
        for term in group:
            found = Q(**{f"{prefix}plain__contains": fold(term.text)})
            q &= ~found if term.negated else found
        groups |= q
    return groups


# The statements ----------------------------------------------------------------------------


def _branches(user, match: _Matcher, kinds: list[str]) -> list[QuerySet]:
    """Per indexed model with a kind asked for: its visible records joined to their matching
    entries (the conditions in one filter() call, so they hold for the same entry)."""
    queries = []
    for branch in BRANCHES:
        wanted = [kind for kind in branch.kinds if kind in kinds]
        if not wanted:
            continue
        joined = branch.model.objects.filter(match.condition(), search_entries__kind__in=wanted)
        queries.append(branch.visible(user, joined))
    return queries


def _union(queries: list[QuerySet]) -> QuerySet | None:
    if not queries:
        return None
    first, *rest = queries
    return first.union(*rest, all=True) if rest else first


def _counts(user, parsed, match: _Matcher, kinds: list[str]) -> dict[str, int]:
    queries = [
        q.order_by()
        .values(hit_kind=F("search_entries__kind"))
        .annotate(hit_count=Count("pk", distinct=True))
        for q in _branches(user, match, kinds)
    ]
    union = _union(queries)
    if union is None:
        return {}
    return {row["hit_kind"]: row["hit_count"] for row in union if row["hit_count"]}


def _page(user, parsed, match: _Matcher, kinds: list[str], offset: int, limit: int) -> list[Hit]:
    queries = [
        q.order_by()
        .values(hit_kind=F("search_entries__kind"), hit_id=F("pk"))
        .annotate(hit_rank=Max(match.rank()))
        for q in _branches(user, match, kinds)
    ]
    union = _union(queries)
    if union is None:
        return []
    rows = union.order_by("-hit_rank", "hit_kind", "-hit_id")[offset : offset + limit]
    return [Hit(kind=r["hit_kind"], object_id=r["hit_id"], rank=r["hit_rank"]) for r in rows]


def _field_of(kind: str) -> str:
    return next(branch.field for branch in BRANCHES if kind in branch.kinds)


def _describe(hits: list[Hit], match: _Matcher, snippets: bool = True) -> None:
    """Titles and snippets of the hits shown: one statement; the snippet from the entry that
    matched (a document's piece of text) or the record's own."""
    wanted = Q()
    for hit in hits:
        wanted |= Q(**{f"{_field_of(hit.kind)}_id": hit.object_id})
    entries = SearchEntry.objects.filter(wanted).annotate(
        task_sale=F("task__sale_id"), task_customer=F("task__customer_id")
    )
    if match.postgresql and not match.fuzzy and snippets:
        entries = entries.filter(Q(chunk=0) | Q(_Match(F("vector"), match.tsquery()))).annotate(
            matched=_Match(F("vector"), match.tsquery()),
            snippet=_headline(
                postgres.language_configuration(), F("body"), match, HEADLINE_OPTIONS
            ),
            title_marked=_headline(postgres.SIMPLE, F("title"), match, TITLE_HEADLINE_OPTIONS),
        )
    elif match.postgresql and not match.fuzzy:
        entries = entries.filter(chunk=0).annotate(
            title_marked=_headline(postgres.SIMPLE, F("title"), match, TITLE_HEADLINE_OPTIONS),
            snippet=Value(""),
        )
    else:
        entries = entries.filter(chunk=0)
    by_key = {(hit.kind, hit.object_id): hit for hit in hits}
    best_snippet: dict[tuple, tuple[bool, str]] = {}
    for entry in entries.order_by("chunk").defer("vector", "plain", "names", "keys"):
        field_name = _field_of(entry.kind)
        hit = by_key.get((entry.kind, getattr(entry, f"{field_name}_id")))
        if hit is None:
            continue
        matched = getattr(entry, "matched", False)
        snippet = getattr(entry, "snippet", None)
        if snippet is None and snippets:
            snippet = _python_snippet(entry.body, match.parsed.words())
        if entry.chunk == 0:
            hit.title, hit.subtitle = entry.title, entry.subtitle
            hit.title_marked = getattr(entry, "title_marked", None) or _python_mark(
                entry.title, match.parsed.words()
            )
            hit.task_sale_id, hit.task_customer_id = entry.task_sale, entry.task_customer
        key = (hit.kind, hit.object_id)
        has_mark = MARK_START in (snippet or "")
        previous = best_snippet.get(key)
        if previous is None or (has_mark and not previous[0]) or (matched and not previous[0]):
            best_snippet[key] = (has_mark or matched, snippet or "")
    for key, (_, snippet) in best_snippet.items():
        by_key[key].snippet = snippet


def _headline(configuration: str, expression, match: _Matcher, options: str):
    """ts_headline drops what its parser takes for HTML tags; "<" and ">" go in as stand-ins
    so that a "<script>" in a note comes back, and is shown escaped, as the text it is."""
    return Func(
        RawSQL("%s::regconfig", [configuration], output_field=TextField()),
        Func(expression, Value("<>"), Value(ANGLES), function="translate"),
        match.tsquery(),
        Value(options),
        function="ts_headline",
        output_field=TextField(),
    )


def _python_mark(text: str, words: list[str]) -> str:
    """SQLite and the typo fallback: mark where a word occurs (case-insensitive)."""
    folded = fold(text)
    lowered = folded if len(folded) == len(text) else text.lower()  # "Müller" ~ "muller"
    spans = []
    for word in words:
        word = fold(word)
        start = lowered.find(word) if word else -1
        if start >= 0:
            spans.append((start, start + len(word)))
    out, last = [], 0
    for start, end in sorted(spans):
        if start < last:
            continue
        out += [text[last:start], MARK_START, text[start:end], MARK_STOP]
        last = end
    out.append(text[last:])
    return "".join(out)


def _python_snippet(body: str, words: list[str], width: int = 160) -> str:
    if not body:
        return ""
    lowered = body.lower()
    positions = [lowered.find(w.lower()) for w in words if w and lowered.find(w.lower()) >= 0]
    start = max(0, min(positions) - width // 3) if positions else 0
    piece = body[start : start + width]
    prefix = "… " if start else ""
    suffix = " …" if start + width < len(body) else ""
    return prefix + _python_mark(piece, words) + suffix


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
