"""Reads for documents: who may see what (the general rule plus owner, public, allowed)."""

from django.db.models import Exists, OuterRef, Q, QuerySet

from crm.permissions import team_user_ids, visible_customers, visible_sales
from crm.roles import Role, role_of
from documents.models import Document, DocumentAccess


def visible_documents(user, queryset: QuerySet | None = None) -> QuerySet[Document]:
    """Documents `user` may open: an admin all; others what they (or, for a manager, their
    team) uploaded, public ones, ones shared with them, and those attached to a customer or
    deal they may see."""
    documents = Document.objects.all() if queryset is None else queryset
    if not user.is_authenticated:
        return documents.none()
    if role_of(user) == Role.ADMIN:
        return documents
    shared = Document.allowed_users.through.objects.filter(
        document_id=OuterRef("pk"), user_id=user.pk
    )
    return documents.filter(
        _owned_by_team(user)
        | Q(is_public=True)
        | Q(Exists(shared))
        | Q(customer__in=visible_customers(user).values("pk"))
        | Q(sale__in=visible_sales(user).values("pk"))
    )


def _owned_by_team(user) -> Q:
    """Uploaded by the user (a manager: by their team), this version or the chain's first:
    the owner of a document keeps it when their manager or an admin adds a version."""
    ids = team_user_ids(user)
    return Q(uploaded_by_id__in=ids) | Q(parent_document__uploaded_by_id__in=ids)


def editable_documents(user) -> QuerySet[Document]:
    """Changing a document (new version, sharing, restore) needs more than reading it: its
    uploader, the uploader's manager, or an admin."""
    if role_of(user) == Role.ADMIN:
        return Document.objects.all()
    return Document.objects.filter(_owned_by_team(user))


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
