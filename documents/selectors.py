"""Reads for documents, filtered through crm.permissions.documents (who may see what)."""

from django.db.models import Exists, OuterRef, Q, QuerySet

from crm.permissions.documents import visible_documents
from documents.models import Document, DocumentAccess


def document_list(*, user, filters: dict) -> QuerySet[Document]:
    documents = visible_documents(user, Document.objects.active())
    if filters.get("q"):
        text = filters["q"]
        documents = documents.filter(
            Q(title__icontains=text)
            | Q(description__icontains=text)
            | Q(extracted_text__icontains=text)
        )
    for key in ("document_type", "category", "customer", "sale"):
        if filters.get(key):
            documents = documents.filter(**{key: filters[key]})
    return documents.with_related().defer("extracted_text")


def document_versions(*, document: Document) -> QuerySet[Document]:
    return (
        Document.objects.of_chain(document.chain_id)
        .select_related("uploaded_by")
        .defer("extracted_text")
        .order_by("-version")
    )


def document_accesses(*, document: Document, limit: int = 200) -> QuerySet[DocumentAccess]:
    chain = document.chain_id
    return (
        DocumentAccess.objects.filter(Q(document_id=chain) | Q(document__parent_document_id=chain))
        .select_related("user", "document")
        .order_by("-timestamp")[:limit]
    )


def sales_with_proposal_attached() -> Q:
    """Q over Sale: a proposal document was attached since the deal entered its stage (the
    answer to crm.reactions' DEALS_WITH_PROPOSAL, for the CONTACTED -> PROPOSAL rule)."""
    proposals = Document.objects.filter(
        sale=OuterRef("pk"),
        document_type=Document.Type.PROPOSAL,
        uploaded_at__gte=OuterRef("stage_entered_at"),
    )
    return Q(Exists(proposals))


def access_log(*, filters: dict) -> QuerySet[DocumentAccess]:
    accesses = DocumentAccess.objects.select_related("user", "document")
    if filters.get("action"):
        accesses = accesses.filter(action=filters["action"])
    if filters.get("user"):
        accesses = accesses.filter(user=filters["user"])
    if filters.get("since"):
        accesses = accesses.filter(timestamp__date__gte=filters["since"])
    if filters.get("until"):
        accesses = accesses.filter(timestamp__date__lte=filters["until"])
    if filters.get("ip"):
        accesses = accesses.filter(ip_address=filters["ip"])
    return accesses.order_by("-timestamp", "-id")
