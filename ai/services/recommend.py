"""Content recommendations: the marketing and presentation documents worth sending to a
customer (or for a deal), each with the reason in words.

Score of a document = what similar customers did with it, blended with how well its text
matches the customer:
- similar customers: the customer's segment (industry, size band, lifecycle stage; the
  stage is dropped when that segment is small), from EngagementStat, which a nightly task
  refreshes in SQL; "opened by 5 of 14 similar customers" is engaged / segment size;
- content match: TF-IDF cosine between the document (title, description, extracted text)
  and the customer (industry, notes, deal titles); it is what ranks documents with no
  history yet;
- left out: what the customer got (a recommendation shared) or opened in the last
  AI_RECOMMEND_EXCLUDE_DAYS days, and every document the user may not see
  (crm.permissions.documents.visible_documents).
"""

import re
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Count, IntegerField, Max
from django.db.models.fields.json import KT
from django.db.models.functions import Cast
from django.utils import timezone

from ai.models import EngagementStat, RecommendationShare, SizeBand, size_band
from crm.errors import PermissionDenied, ValidationFailed
from crm.permissions import can_share_with
from crm.permissions.documents import visible_documents, visible_library_documents
from customers.models import Customer, CustomerNote, Industry
from documents.models import Document
from documents.tokens import share_url
from leads.models import LeadActivity
from sales.models import Sale

if TYPE_CHECKING:
    from sklearn.feature_extraction.text import TfidfVectorizer

# _HEAVY: pandas and scikit-learn (with scipy) are imported where they are used, not with
# this module: the URLconf imports it (ai.views), and every process that reverses a URL,
# a Celery worker running a CSV import too, would carry 150 MB more for nothing.

TYPES = [Document.Type.MARKETING, Document.Type.PRESENTATION]
MIN_SEGMENT = 5  # fewer similar customers than this: drop the stage from the segment
HISTORY_WEIGHT = 0.75
CONTENT_WEIGHT = 0.25
TEXT_CHARS = 20_000  # of each document's extracted text, for the TF-IDF
STATS_GENERATION_KEY = "ai:engagement-stats:generation"  # the last refresh, in the cache
SEGMENT_CACHE_SECONDS = 24 * 3600
WORD = re.compile(r"[a-z][a-z]+")


@dataclass(frozen=True)
class Recommendation:
    document_id: int
    title: str
    document_type: str
    score: float
    reason: str
    engaged: int = 0
    segment: int = 0


# Engagement statistics -----------------------------------------------------------------------


def _band_expression():
    from django.db.models import Case, Value, When

    return Case(
        When(company_size__isnull=True, then=Value(SizeBand.UNKNOWN)),
        When(company_size__lt=50, then=Value(SizeBand.SMALL)),
        When(company_size__lt=250, then=Value(SizeBand.MEDIUM)),
        When(company_size__lt=1000, then=Value(SizeBand.LARGE)),
        default=Value(SizeBand.ENTERPRISE),
    )


def engagement_stats_refresh(*, now: datetime | None = None) -> int:
    """Rebuild EngagementStat from the activities that name a document (share link opens,
    downloads, email clicks) and the segment sizes: two GROUP BY queries."""
    import pandas as pd  # here, not above: see _HEAVY

    now = now or timezone.now()
    band = _band_expression()
    sizes = (
        Customer.objects.order_by()
        .annotate(band=band)
        .values("industry", "band", "lifecycle_stage")
        .annotate(n=Count("pk"))
        .values_list("industry", "band", "lifecycle_stage", "n")
    )
    sizes = pd.DataFrame(list(sizes), columns=["industry", "band", "stage", "n"])
    engaged = (
        LeadActivity.objects.filter(details__has_key="document_id")
        .order_by()
        .annotate(document=Cast(KT("details__document_id"), IntegerField()))
        .values_list(
            "customer_id",
            "customer__industry",
            "customer__company_size",
            "customer__lifecycle_stage",
            "document",
        )
        .distinct()
    )
    frame = pd.DataFrame(
        list(engaged), columns=["customer", "industry", "size", "stage", "document"]
    )
    chains = dict(
        Document.objects.filter(parent_document__isnull=False).values_list(
            "pk", "parent_document_id"
        )
    )
    existing = set(Document.objects.values_list("pk", flat=True))
    rows = []
    for industry, band_, stage, n in sizes.itertuples(index=False):
        rows.append(EngagementStat(industry=industry, size_band=band_, stage=stage, customers=n,
                                   refreshed_at=now))  # fmt: skip
    for (industry, band_), n in sizes.groupby(["industry", "band"])["n"].sum().items():
        rows.append(EngagementStat(industry=industry, size_band=band_, stage="", customers=n,
                                   refreshed_at=now))  # fmt: skip
    if not frame.empty:
        frame["band"] = frame["size"].map(lambda s: size_band(None if pd.isna(s) else int(s)))
        frame["chain"] = frame["document"].map(lambda d: chains.get(d, d))
        frame = frame[frame["chain"].isin(existing)].drop_duplicates(["customer", "chain"])
        for keys, part in (
            (["industry", "band", "stage", "chain"], frame),
            (["industry", "band", "chain"], frame.assign(stage="")),
        ):
            grouped = part.groupby([*keys[:2], "stage", "chain"])["customer"].nunique()
            for (industry, band_, stage, chain), n in grouped.items():
                rows.append(EngagementStat(industry=industry, size_band=band_, stage=stage,
                                           document_id=int(chain), customers=int(n),
                                           refreshed_at=now))  # fmt: skip
    with transaction.atomic():
        EngagementStat.objects.all().delete()
        EngagementStat.objects.bulk_create(rows, batch_size=5000)
        # The segments cached from the previous rows are no longer read: a new generation
        # now (this transaction sees its rows) and again after the commit (a reader meanwhile
        # may have cached the old rows under the first).
        cache.set(STATS_GENERATION_KEY, f"{now.timestamp()}-writing", None)
        transaction.on_commit(lambda: cache.set(STATS_GENERATION_KEY, now.timestamp(), None))
    return len(rows)


# Content match ---------------------------------------------------------------------------------

_vectors: dict[tuple, tuple["TfidfVectorizer", dict[int, int], object]] = {}
_vectors_checked = {"at": float("-inf")}
VECTORS_RECHECK_SECONDS = 60  # a new or changed document is recommended within a minute


def _document_vectors():
    """(vectorizer, {chain id: row}, matrix) over every current marketing/presentation
    document, built once per process and rebuilt when the set of documents changes (looked
    at once a minute: the query that tells costs more than the rest of a recommendation)."""
    if _vectors and time.monotonic() - _vectors_checked["at"] < VECTORS_RECHECK_SECONDS:
        return next(iter(_vectors.values()))
    documents = Document.objects.active().filter(document_type__in=TYPES)
    signature = tuple(
        documents.aggregate(n=Count("pk"), top=Max("pk"), at=Max("uploaded_at")).values()
    )
    _vectors_checked["at"] = time.monotonic()
    if signature in _vectors:
        return _vectors[signature]
    rows = list(
        documents.order_by("pk").values_list(
            "pk", "parent_document_id", "title", "description", "extracted_text"
        )
    )
    texts = [
        f"{title} {title} {description} {(text or '')[:TEXT_CHARS]}"
        for *_, title, description, text in rows
    ]
    from sklearn.feature_extraction.text import TfidfVectorizer  # see _HEAVY

    vectorizer = TfidfVectorizer(stop_words="english", max_features=20_000, sublinear_tf=True)
    matrix = vectorizer.fit_transform(texts) if texts else None
    positions = {(parent or pk): i for i, (pk, parent, *_rest) in enumerate(rows)}
    _vectors.clear()
    _vectors[signature] = (vectorizer, positions, matrix)
    return _vectors[signature]


def _customer_text(customer: Customer, sale: Sale | None) -> str:
    parts = [dict(Industry.choices).get(customer.industry, ""), customer.notes or ""]
    parts += list(
        CustomerNote.objects.filter(customer=customer)
        .order_by("-created_at")
        .values_list("text", flat=True)[:20]
    )
    parts += list(
        Sale.objects.filter(customer=customer)
        .order_by("-created_at")
        .values_list("title", flat=True)[:20]
    )
    if sale is not None:
        parts += [sale.title] * 2
    return " ".join(parts)


# Recommending -----------------------------------------------------------------------------------


def _excluded(customer: Customer, now: datetime) -> set[int]:
    since = now - timedelta(days=settings.AI_RECOMMEND_EXCLUDE_DAYS)
    shared = RecommendationShare.objects.filter(customer=customer, at__gte=since).values_list(
        "document_id", flat=True
    )
    opened = (
        LeadActivity.objects.filter(
            customer=customer, timestamp__gte=since, details__has_key="document_id"
        )
        .annotate(document=Cast(KT("details__document_id"), IntegerField()))
        .values_list("document", flat=True)
    )
    ids = set(shared) | set(opened)
    if not ids:
        return set()
    parents = dict(Document.objects.filter(pk__in=ids).values_list("pk", "parent_document_id"))
    return {parents.get(pk) or pk for pk in ids}


def _segment_stats(industry: str, band: str, stage: str) -> list[tuple[str, int | None, int]]:
    """The segment's EngagementStat rows, from the cache until the next refresh (they
    change only then; thousands of rows a segment, read for every recommendation)."""
    generation = cache.get(STATS_GENERATION_KEY, 0)
    key = f"ai:segment:{generation}:{industry}:{band}:{stage}"
    stats = cache.get(key)
    if stats is None:
        stats = list(
            EngagementStat.objects.filter(
                industry=industry, size_band=band, stage__in=[stage, ""]
            ).values_list("stage", "document_id", "customers")
        )
        cache.set(key, stats, SEGMENT_CACHE_SECONDS)
    return stats


def _segment(customer: Customer) -> tuple[dict[int, int], int, str]:
    """({chain id: customers engaged}, segment size, segment in words)."""
    band = size_band(customer.company_size)
    stats = _segment_stats(customer.industry, band, customer.lifecycle_stage)
    fine_size = sum(n for stage, doc, n in stats if stage and doc is None)
    stage = customer.lifecycle_stage if fine_size >= MIN_SEGMENT else ""
    engaged = {doc: n for s, doc, n in stats if s == stage and doc is not None}
    size = sum(n for s, doc, n in stats if s == stage and doc is None)
    words = [
        dict(Industry.choices).get(customer.industry, "any industry"),
        SizeBand(band).label.lower(),
    ]
    if stage:
        words.append(f"{stage}s")
    return engaged, size, ", ".join(words)


def document_recommendations(
    *,
    user,
    customer: Customer,
    sale: Sale | None = None,
    limit: int = 3,
    now: datetime | None = None,
) -> list[Recommendation]:
    """The top documents for this customer (and deal), among those `user` may see."""
    now = now or timezone.now()
    # Library documents only: one attached to a customer or deal is theirs (a proposal, a
    # contract), never offered to someone else; and it keeps the visibility check cheap.
    library = Document.objects.active().filter(document_type__in=TYPES)
    candidates = list(
        visible_library_documents(user, library)
        .order_by()
        .values_list("pk", "parent_document_id", "title", "document_type")
    )
    if not candidates:
        return []
    excluded = _excluded(customer, now)
    engaged, segment_size, segment_words = _segment(customer)
    vectorizer, positions, matrix = _document_vectors()
    similarity = np.zeros(0)
    profile = None
    if matrix is not None:
        profile = vectorizer.transform([_customer_text(customer, sale)])
        similarity = np.asarray((matrix @ profile.T).todense()).ravel()
    vocabulary = vectorizer.get_feature_names_out() if matrix is not None else []
    scored = []
    for pk, parent, title, kind in candidates:
        chain = parent or pk
        if chain in excluded or pk in excluded:
            continue
        n = engaged.get(chain, 0)
        rate = n / (segment_size + 2) if segment_size else 0.0
        row = positions.get(chain)
        match = float(similarity[row]) if row is not None and len(similarity) else 0.0
        score = HISTORY_WEIGHT * rate + CONTENT_WEIGHT * match
        scored.append((score, n, match, row, pk, title, kind))
    scored.sort(key=lambda item: (-item[0], -item[1], item[4]))
    out = []
    for score, n, match, row, pk, title, kind in scored[:limit]:
        if n:
            reason = f"Opened by {n} of {segment_size} similar customers ({segment_words})"
        elif match > 0 and profile is not None:
            both = matrix[row].multiply(profile).toarray().ravel()
            terms = [vocabulary[i] for i in np.argsort(-both)[:3] if both[i] > 0]
            reason = "Matches " + ", ".join(f"“{t}”" for t in terms) + " in this customer's profile"
        else:
            reason = "No engagement or text match yet"
        out.append(Recommendation(pk, title, kind, round(score, 4), reason, n, segment_size))
    return out


def recommendation_share(
    *, actor, customer: Customer, document_id: int, sale: Sale | None = None
) -> tuple[RecommendationShare, str]:
    """Share a recommended document with the customer: the tracked share link (its opens
    count as this customer's engagement) and a record that leaves it out of the next
    recommendations for a while. Sharing is done on the customer's (or deal's) behalf, so
    a share to read is not enough."""
    if not can_share_with(actor, customer=customer, sale=sale):
        raise PermissionDenied(
            "You may only read this customer (or deal): its owner shares documents with it."
        )
    document = (
        visible_documents(actor, Document.objects.active().filter(document_type__in=TYPES))
        .filter(pk=document_id)
        .first()
    )
    if document is None:
        raise ValidationFailed("This document cannot be shared from here.", field="document")
    share = RecommendationShare.objects.create(
        customer=customer, document=document, sale=sale, shared_by=actor
    )
    return share, share_url(document.pk, customer_id=customer.pk)


def recommended_content_variables(*, customer: Customer, user, **_) -> dict:
    """crm.reactions RECOMMENDED_CONTENT: the warm workflow's case-study email offers the top
    recommendation ({{ recommended_document_title }}, {{ recommended_document_url }}); its
    id comes back for recommended_content_sent."""
    top = document_recommendations(user=user, customer=customer, limit=1)
    if not top:
        return {}
    return {
        "recommended_document_title": top[0].title,
        "recommended_document_url": share_url(top[0].document_id, customer_id=customer.pk),
        "recommended_document_id": top[0].document_id,
    }


def recommended_content_sent(*, customer: Customer, document_id: int, sent_by, **_) -> None:
    """crm.reactions RECOMMENDED_CONTENT_SENT: an email offering this document went to the
    customer, a send like a one-click share, so it is left out of the next recommendations."""
    document = Document.objects.filter(pk=document_id).only("pk").first()
    if document is None:  # deleted since the draft was prepared: nothing left to leave out
        return
    RecommendationShare.objects.create(customer=customer, document=document, shared_by=sent_by)


# Offline evaluation ----------------------------------------------------------------------------


def recommendations_evaluate(*, split_at: datetime, k: int = 3, limit: int = 5000) -> dict:
    """Hit rate at k on later engagements: statistics from the engagements before
    `split_at` only; for each customer who engaged with a document after it (one they had
    not opened before), does the segment ranking put one of those in its top k? Against
    the most-popular baseline (the k documents most opened before the split, the same for
    everyone). Content match is left out: it is what ranks documents without history."""
    import pandas as pd  # here, not above: see _HEAVY

    rows = (
        LeadActivity.objects.filter(details__has_key="document_id")
        .order_by()
        .annotate(document=Cast(KT("details__document_id"), IntegerField()))
        .values_list("customer_id", "document", "timestamp")
    )
    frame = pd.DataFrame(list(rows), columns=["customer", "document", "at"])
    if frame.empty:
        return {"customers": 0}
    chains = dict(
        Document.objects.filter(parent_document__isnull=False).values_list(
            "pk", "parent_document_id"
        )
    )
    frame["document"] = frame["document"].map(lambda d: chains.get(d, d))
    profile = pd.DataFrame(
        list(Customer.objects.values_list("pk", "industry", "company_size", "lifecycle_stage")),
        columns=["customer", "industry", "size", "stage"],
    ).set_index("customer")
    profile["band"] = profile["size"].map(lambda s: size_band(None if pd.isna(s) else int(s)))
    profile["segment"] = profile["industry"].fillna("") + "|" + profile["band"]
    frame["segment"] = frame["customer"].map(profile["segment"])
    before = frame[frame["at"] < split_at].drop_duplicates(["customer", "document"])
    after = frame[frame["at"] >= split_at].drop_duplicates(["customer", "document"])
    seen = set(zip(before["customer"], before["document"], strict=True))
    after = after[[(c, d) not in seen for c, d in zip(after["customer"], after["document"],
                                                     strict=True)]]  # fmt: skip
    if after.empty:
        return {"customers": 0}
    popular = before.groupby("document")["customer"].nunique().sort_values(ascending=False)
    by_segment = before.groupby(["segment", "document"])["customer"].nunique()
    hits = popular_hits = 0
    targets = after.groupby("customer")["document"].apply(set).iloc[:limit]
    opened_before = before.groupby("customer")["document"].apply(set)
    rankings = {
        segment: part.droplevel(0).sort_values(ascending=False).index.tolist()
        for segment, part in by_segment.groupby(level=0)
    }
    popular_list = popular.index.tolist()
    for customer, wanted in targets.items():
        opened = opened_before.get(customer, set())
        ranked = list(rankings.get(profile["segment"].get(customer), []))
        ranked += [d for d in popular_list[: k + len(opened) + len(ranked)] if d not in ranked]
        top = [d for d in ranked if d not in opened][:k]
        top_popular = [d for d in popular_list[: k + len(opened)] if d not in opened][:k]
        hits += bool(wanted & set(top))
        popular_hits += bool(wanted & set(top_popular))
    return {
        "customers": len(targets),
        f"hit_rate_at_{k}": round(hits / len(targets), 4),
        f"hit_rate_at_{k}_popular": round(popular_hits / len(targets), 4),
    }
