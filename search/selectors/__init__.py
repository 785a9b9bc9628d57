"""Reads of the global search: hits ranked within what the user may see, their counts per
type, and the snippets of the rows shown.

Visibility is never stored in the index: the matching entries of each indexed model are
kept when the record's id is in the model's queryset filtered by crm.permissions
(visible_customers, visible_sales, ...), inside the same SQL statement that ranks and counts
them, so a rep neither sees nor counts another rep's records.

- common: the indexed models as each user sees them, the hits and results, the boosts.
- postgresql: the stored weighted tsvectors (GIN), every word a prefix, ts_rank_cd with a
  small boost for the user's own records and recent activity; the matches read in the way
  their number calls for (the names' index, the latest entries, the whole index), in one
  statement with the counts, the page and its highlights (ts_headline, for the rows shown
  only); when that finds nothing, a typo corrected to a common name, else the names holding
  a word like those typed (the trigrams of the names' words: search.models.NameWord), with
  a "did you mean".
- sqlite (the embedded mode): a LIKE over the folded text of each entry, ranked by a match
  in the name.
"""

from django.core.cache import cache
from django.db import connection

from search.query import ParsedQuery
from search.selectors.common import Hit, SearchResults, searchable_kinds
from search.selectors.postgresql import MAX_HITS, RECENT_ROWS, postgresql_search
from search.selectors.sqlite import Matcher, sqlite_search

__all__ = ["Hit", "SearchResults", "index_recovering", "search", "searchable_kinds"]

# Set while search.services.search_index_recover rebuilds an index a crash emptied.
INDEX_RECOVERING_KEY = "search:recovering"


def index_recovering() -> bool:
    return bool(cache.get(INDEX_RECOVERING_KEY))


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
    recent_rows: int = RECENT_ROWS,
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
    finding them all costs the dropdown ten times what finding the names does.

    A word held by a large share of the entries (search.frequencies) is looked for among
    the `recent_rows` most recently active entries instead (see _stages)."""
    allowed = searchable_kinds(user)
    if parsed.kinds:
        allowed = [kind for kind in allowed if kind in parsed.kinds]
    if not parsed.has_terms or not allowed:
        return SearchResults()
    shown = [kind for kind in allowed if kind in kinds] if kinds else allowed
    if connection.vendor != "postgresql":
        match = Matcher(user, parsed)
        return sqlite_search(user, parsed, match, allowed, shown, offset, limit, snippets)
    return postgresql_search(
        user, parsed, allowed, shown, offset, limit, snippets, max_hits, names_first, recent_rows
    )
