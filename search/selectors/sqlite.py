"""The search on SQLite (the embedded mode): a LIKE over the folded text of each entry,
ranked by a match in the name; the counts, then the page, then its titles and snippets."""

from django.db.models import (
    Case,
    Count,
    F,
    FloatField,
    Max,
    Q,
    QuerySet,
    Value,
    When,
)
from django.utils import timezone

from search.models import SearchEntry
from search.query import ParsedQuery
from search.selectors.common import (
    BRANCHES,
    OWNER_BOOST,
    RECENT_BOOST,
    Hit,
    SearchResults,
    python_mark,
    python_snippet,
)
from search.text import fold


def sqlite_search(user, parsed, match, allowed, shown, offset, limit, snippets) -> SearchResults:
    """SQLite: the counts, then the page, then its titles and snippets."""
    counts = _counts(user, parsed, match, allowed)
    results = SearchResults(counts=counts, total=sum(counts.get(kind, 0) for kind in shown))
    if results.total and limit:
        results.hits = _page(user, parsed, match, shown, offset, limit)
        _describe(results.hits, match, snippets)
    return results


class Matcher:
    """The conditions and rank on the joined entries (`search_entries__...`) of a branch."""

    def __init__(self, user, parsed: ParsedQuery):
        self.user, self.parsed = user, parsed

    def condition(self, prefix: str = "search_entries__") -> Q:
        """What an entry must satisfy: the words and the field filters."""
        parsed = self.parsed
        q = _like_condition(parsed, prefix)
        if parsed.owner_me:
            q &= Q(**{f"{prefix}owner": self.user})
        if parsed.stages:
            q &= Q(**{f"{prefix}stage__in": parsed.stages})
        for tag in parsed.tags:
            q &= Q(**{f"{prefix}tags__contains": f" {tag} "})
        return q

    def rank(self, prefix: str = "search_entries__"):
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


def _branches(user, match: Matcher, kinds: list[str]) -> list[QuerySet]:
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


def _counts(user, parsed, match: Matcher, kinds: list[str]) -> dict[str, int]:
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


def _page(user, parsed, match: Matcher, kinds: list[str], offset: int, limit: int) -> list[Hit]:
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


def _describe(hits: list[Hit], match: Matcher, snippets: bool = True) -> None:
    """Titles and snippets of the hits shown (SQLite): one statement; the words marked in
    Python."""
    wanted = Q()
    for hit in hits:
        wanted |= Q(**{f"{_field_of(hit.kind)}_id": hit.object_id})
    entries = SearchEntry.objects.filter(wanted, chunk=0).annotate(
        task_sale=F("task__sale_id"), task_customer=F("task__customer_id")
    )
    by_key = {(hit.kind, hit.object_id): hit for hit in hits}
    words = match.parsed.words()
    for entry in entries.defer("vector", "plain", "names", "keys"):
        hit = by_key.get((entry.kind, getattr(entry, f"{_field_of(entry.kind)}_id")))
        if hit is None:
            continue
        hit.title, hit.subtitle = entry.title, entry.subtitle
        hit.title_marked = python_mark(entry.title, words)
        hit.task_sale_id, hit.task_customer_id = entry.task_sale, entry.task_customer
        hit.snippet = python_snippet(entry.body, words) if snippets else ""
