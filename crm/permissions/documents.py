"""Documents: besides the general rule (a document on a customer or deal the user may see),
a document is visible to whoever uploaded its chain (a manager: their team), to everyone when
public, and to the users it is shared with. Changing one (new version, restore, sharing, share
links, its audit) needs the uploader of this version or of the chain's first, their manager,
or an admin."""

from django.apps import apps
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.shortcuts import get_object_or_404

from crm.errors import PermissionDenied
from crm.permissions.core import owned_by, queryset_or_all, team_user_ids
from crm.permissions.customers import shared_customers
from crm.roles import Role, role_of

CHANGE_REFUSED = "Only the uploader, their manager or an admin can change this."


def _uploaded_by_team(user) -> Q:
    """Uploaded by the user (a manager: by their team), this version or the chain's first:
    the owner of a document keeps it when their manager or an admin adds a version."""
    ids = team_user_ids(user)
    return Q(uploaded_by_id__in=ids) | Q(parent_document__uploaded_by_id__in=ids)


def visible_documents(user, queryset: QuerySet | None = None) -> QuerySet:
    """Documents `user` may open: an admin all; others what they (or, for a manager, their
    team) uploaded, public ones, ones shared with them, and those attached to a customer or
    deal they may see."""
    documents = queryset_or_all(queryset, "documents.Document")
    if not user.is_authenticated:
        return documents.none()
    if role_of(user) == Role.ADMIN:
        return documents
    shared = documents.model.allowed_users.through.objects.filter(
        document_id=OuterRef("pk"), user_id=user.pk
    )
    # The customer's and the deal's visibility (visible_customers, visible_sales) spelled
    # through joins rather than `customer IN (every visible customer)`: checking one
    # document (a search hit, a detail page) then reads its customer and deal, instead of
    # first hashing every customer and deal the user may see.
    return documents.filter(
        _uploaded_by_team(user)
        | Q(is_public=True)
        | Q(Exists(shared))
        | owned_by(user, "customer__owner")
        | shared_customers(user, "customer__pk")
        | owned_by(user, "sale__assigned_to")
        | owned_by(user, "sale__customer__owner")
        | shared_customers(user, "sale__customer__pk")
    )


def visible_library_documents(user, queryset: QuerySet | None = None) -> QuerySet:
    """The library's documents (attached to no customer and no deal) that `user` may open:
    visible_documents' rule with its customer and deal clauses left out, as they cannot hold.
    Spelled apart because the planner cannot tell those clauses are empty here and joins
    every deal to find out (the recommendations' candidates, 70 ms of 100k deals)."""
    documents = queryset_or_all(queryset, "documents.Document").filter(
        customer__isnull=True, sale__isnull=True
    )
    if not user.is_authenticated:
        return documents.none()
    if role_of(user) == Role.ADMIN:
        return documents
    shared = documents.model.allowed_users.through.objects.filter(
        document_id=OuterRef("pk"), user_id=user.pk
    )
    return documents.filter(_uploaded_by_team(user) | Q(is_public=True) | Q(Exists(shared)))


def editable_documents(user, queryset: QuerySet | None = None) -> QuerySet:
    """Changing a document needs more than reading it: its uploader (of this version or of
    the chain), the uploader's manager, or an admin."""
    documents = queryset_or_all(queryset, "documents.Document")
    if role_of(user) == Role.ADMIN:
        return documents
    return documents.filter(_uploaded_by_team(user))


def can_change_document(user, document) -> bool:
    return editable_documents(user).filter(pk=document.pk).exists()


def check_document_change(user, document) -> None:
    """Refuse (403) a change to a document the user may only read."""
    if not can_change_document(user, document):
        raise PermissionDenied(CHANGE_REFUSED)


def access_document_by_id(user, document_id, *, for_change: bool = False):
    """The document with its uploader, customer, deal and category; 404 when it does not
    exist or is out of the user's sight, and, for a change, 403 when the user may only read
    it (a visible document's existence is no secret)."""
    Document = apps.get_model("documents", "Document")
    document = get_object_or_404(
        visible_documents(user, Document.objects.with_related()), pk=document_id
    )
    if for_change:
        check_document_change(user, document)
    return document
