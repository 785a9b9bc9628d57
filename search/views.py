import math
from dataclasses import dataclass
from urllib.parse import urlencode

from django.core.paginator import Paginator
from django.http import QueryDict
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from search import selectors
from search.models import Kind
from search.query import parse

PAGE_SIZE = 20
DROPDOWN_SIZE = 8
DROPDOWN_MAX_HITS = 500  # the dropdown shows the best few: it reads fewer matches
DROPDOWN_RECENT_ROWS = 3000  # and tests fewer of the latest entries for a common word
MAX_PAGE = 500


@dataclass
class _Shown:
    """What the paginator pages over: the total it counts and the one page fetched."""

    total: int
    hits: list

    def count(self) -> int:
        return self.total

    def __getitem__(self, _slice):
        return self.hits


def _page_number(raw) -> int:
    try:
        return min(max(int(raw), 1), MAX_PAGE)
    except (TypeError, ValueError):
        return 1


def _link(hit: selectors.Hit) -> str:
    if hit.kind == Kind.CUSTOMER:
        return reverse("customers:detail", args=[hit.object_id])
    if hit.kind == Kind.LEAD:
        return reverse("leads:detail", args=[hit.object_id])
    if hit.kind == Kind.DEAL:
        return reverse("sales:detail", args=[hit.object_id])
    if hit.kind == Kind.DOCUMENT:
        return reverse("documents:detail", args=[hit.object_id])
    if hit.kind == Kind.TEMPLATE:
        return reverse("campaigns:template_edit", args=[hit.object_id])
    if hit.kind == Kind.CAMPAIGN:
        return reverse("campaigns:campaign_detail", args=[hit.object_id])
    if hit.task_sale_id:  # a task: where it is worked on
        return reverse("sales:detail", args=[hit.task_sale_id])
    if hit.task_customer_id:
        return reverse("customers:detail", args=[hit.task_customer_id])
    return reverse("sales:my_tasks")


def _with_links(hits):
    for hit in hits:
        hit.url = _link(hit)
    return hits


@require_GET
def search_results(request):
    """/search/?q=...&type=deal&page=2: the ranked hits with type facets and their counts."""
    q = request.GET.get("q", "")
    parsed = parse(q)
    kind = request.GET.get("type", "")
    kinds = [kind] if kind in Kind.values else None
    number = _page_number(request.GET.get("page"))
    results = selectors.search(
        user=request.user,
        parsed=parsed,
        kinds=kinds,
        offset=(number - 1) * PAGE_SIZE,
        limit=PAGE_SIZE,
    )
    last = max(1, math.ceil(results.total / PAGE_SIZE))
    if number > last:  # past the end: the last page
        number = last
        results = selectors.search(
            user=request.user, parsed=parsed, kinds=kinds,
            offset=(number - 1) * PAGE_SIZE, limit=PAGE_SIZE,
        )  # fmt: skip
    page = Paginator(_Shown(results.total, _with_links(results.hits)), PAGE_SIZE).get_page(number)
    facets = [
        {
            "kind": value,
            "label": label,
            "count": results.counts.get(value, 0),
            "url": "?" + urlencode({"q": q[:1000], "type": value}),
        }
        for value, label in Kind.choices
        if value in selectors.searchable_kinds(request.user)
    ]
    querystring = QueryDict(mutable=True)
    querystring["q"] = q[:1000]
    if kinds:
        querystring["type"] = kind
    context = {
        "q": q,
        "kind": kind if kinds else "",
        "page": page,
        "results": results,
        "facets": facets,
        "all_count": sum(results.counts.values()),
        "all_url": "?" + urlencode({"q": q[:1000]}),
        "querystring": querystring.urlencode(),
        "parsed": parsed,
        "recovering": selectors.index_recovering(),
    }
    return render(request, "search/search_results.html", context)


@require_GET
def search_dropdown(request):
    """The header box's dropdown (htmx): the best hits, grouped by type in rank order."""
    q = request.GET.get("q", "")
    parsed = parse(q)
    results = selectors.search(
        user=request.user, parsed=parsed, limit=DROPDOWN_SIZE, snippets=False,
        max_hits=DROPDOWN_MAX_HITS, names_first=True, recent_rows=DROPDOWN_RECENT_ROWS,
    )  # fmt: skip
    groups: dict[str, list] = {}
    for hit in _with_links(results.hits):
        groups.setdefault(hit.kind, []).append(hit)
    labels = dict(Kind.choices)
    all_results = QueryDict(mutable=True)
    all_results["q"] = q[:1000]
    context = {
        "q": q,
        "groups": [(labels[kind], hits) for kind, hits in groups.items()],
        "results": results,
        "all_results": all_results.urlencode(),
        "recovering": selectors.index_recovering(),
    }
    return render(request, "search/partials/_dropdown.html", context)
