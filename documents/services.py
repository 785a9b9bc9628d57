"""Writes for documents: upload (checked from content), versions, restore, sharing, and the
access log. Files go through Django's storage API under generated names."""

import hashlib
import os

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile, File
from django.db import transaction
from django.db.models import QuerySet
from django.urls import reverse
from django.utils import timezone

from crm.errors import PermissionDenied, TooLarge, ValidationFailed
from crm.models import Notification
from crm.notifications import Notice
from crm.permissions import can_attach_to, visible_customers, visible_sales
from crm.permissions.documents import check_document_change
from crm.reactions import Event, react
from crm.services import audit_record
from customers.models import Customer
from documents import filetypes
from documents.models import Document, DocumentAccess, DocumentCategory


def _check_size(upload) -> None:
    limit = settings.DOCUMENT_MAX_BYTES
    if upload.size > limit:
        raise TooLarge(
            f"“{_display_name(upload.name)}” is {upload.size / 1_048_576:.1f} MB; the limit is "
            f"{limit / 1_048_576:.0f} MB.",
            field="file",
        )
    if upload.size == 0:
        raise ValidationFailed("The file is empty.", field="file")


def _display_name(name: str) -> str:
    """The uploader's file name reduced to a harmless label (no directories)."""
    base = os.path.basename((name or "").replace("\\", "/")).strip().lstrip(".")
    return (base or "document")[:255]


def _sha256(upload) -> str:
    digest = hashlib.sha256()
    upload.seek(0)
    for chunk in iter(lambda: upload.read(1024 * 1024), b""):
        digest.update(chunk)
    upload.seek(0)
    return digest.hexdigest()


def _content(upload, detected: filetypes.Detected) -> File:
    """What is stored: the upload itself, or its text re-encoded as UTF-8 (a UTF-16 text)."""
    return File(upload) if detected.utf8 is None else ContentFile(detected.utf8)


def _check_links(actor, customer, sale) -> None:
    if customer is not None and sale is not None and sale.customer_id != customer.pk:
        raise ValidationFailed("That deal belongs to another customer.", field="sale")
    if customer is not None and not visible_customers(actor).filter(pk=customer.pk).exists():
        raise ValidationFailed("Choose one of your customers.", field="customer")
    if sale is not None and not visible_sales(actor).filter(pk=sale.pk).exists():
        raise ValidationFailed("Choose one of your deals.", field="sale")
    if not can_attach_to(actor, customer=customer, sale=sale):
        raise PermissionDenied(
            "This deal is shared with you to read; you cannot add documents to it."
            if sale is not None
            else "This customer is shared with you to read; you cannot add documents to it."
        )


def _process_later(document_id: int) -> None:
    from documents.tasks import process_document

    transaction.on_commit(lambda: process_document.delay(document_id))


def _announce_if_proposal(document: Document) -> None:
    """A proposal on a deal is what the pipeline's CONTACTED -> PROPOSAL rule waits for
    (crm.reactions)."""
    if document.sale_id is not None and document.document_type == Document.Type.PROPOSAL:
        react(Event.PROPOSAL_ATTACHED, sale_ids=[document.sale_id])


def _index(document_ids: list[int]) -> None:
    """The global search finds the newest version of each document (crm.reactions)."""
    react(Event.RECORDS_CHANGED, model="document", ids=document_ids)


def document_upload(
    *,
    actor,
    upload,
    title: str = "",
    description: str = "",
    document_type: str = Document.Type.OTHER,
    category: DocumentCategory | None = None,
    customer=None,
    sale=None,
    is_public: bool = False,
    ip: str | None = None,
) -> Document:
    """Store one uploaded file as a new document (version 1). Nothing is stored when the
    file is refused."""
    _check_size(upload)
    detected = filetypes.detect(upload)
    _check_links(actor, customer, sale)
    if sale is not None and customer is None:
        customer = sale.customer
    name = _display_name(upload.name)
    content = _content(upload, detected)
    document = Document(
        title=(title or os.path.splitext(name)[0] or "Document")[:200],
        description=description,
        document_type=document_type,
        category=category,
        original_name=name,
        file_size=content.size,
        mime_type=detected.mime_type,
        sha256=_sha256(content),
        customer=customer,
        sale=sale,
        uploaded_by=actor,
        is_public=is_public,
        page_count=detected.page_count,
    )
    with transaction.atomic():
        document.file.save("upload", content, save=False)
        try:
            document.save()
            _access(document, actor, DocumentAccess.Action.EDIT, ip, "uploaded")
            audit_record(actor=actor, verb="create", instance=document,
                         changes={"title": document.title, "version": 1})  # fmt: skip
        except Exception:
            document.file.delete(save=False)  # no file without its row
            raise
        _process_later(document.pk)
        _announce_if_proposal(document)
        _index([document.pk])
    return document


def document_upload_version(
    *, actor, document: Document, upload, ip: str | None = None
) -> Document:
    """Version n+1 of the document's chain (its parent is the first version); the newest
    becomes the active one."""
    _check_size(upload)
    detected = filetypes.detect(upload)
    content = _content(upload, detected)
    with transaction.atomic():
        first, chain, latest = _lock_chain(actor, document)
        chain.filter(is_active=True).update(is_active=False)
        new = Document(
            title=latest.title,
            description=latest.description,
            document_type=latest.document_type,
            category=latest.category,
            original_name=_display_name(upload.name),
            file_size=content.size,
            mime_type=detected.mime_type,
            sha256=_sha256(content),
            customer=latest.customer,
            sale=latest.sale,
            uploaded_by=actor,
            is_public=latest.is_public,
            version=latest.version + 1,
            parent_document=first,
            page_count=detected.page_count,
        )
        new.file.save("upload", content, save=False)
        try:
            new.save()
            new.allowed_users.set(latest.allowed_users.all())
            _access(new, actor, DocumentAccess.Action.EDIT, ip, f"uploaded version {new.version}")
            audit_record(actor=actor, verb="update", instance=new,
                         changes={"version": [latest.version, new.version]})  # fmt: skip
        except Exception:
            new.file.delete(save=False)
            raise
        _process_later(new.pk)
        _announce_if_proposal(new)
        _index([new.pk, *chain.values_list("pk", flat=True)])
    return new


def document_restore(*, actor, version: Document, ip: str | None = None) -> Document:
    """Make an older version the newest again: a new version with the old one's file."""
    with transaction.atomic():
        first, chain, latest = _lock_chain(actor, version)
        if version.pk == latest.pk:
            raise ValidationFailed("This is already the newest version.")
        chain.filter(is_active=True).update(is_active=False)
        new = Document.objects.get(pk=version.pk)
        new.pk = None
        new.id = None
        new._state.adding = True
        new.version = latest.version + 1
        new.parent_document = first
        new.is_active = True
        new.uploaded_by = actor
        new.uploaded_at = timezone.now()
        new.is_public = latest.is_public
        new.save()  # shares the stored file with the version it restores
        new.allowed_users.set(latest.allowed_users.all())
        _access(new, actor, DocumentAccess.Action.EDIT, ip, f"restored version {version.version}")
        changes = {"restored_version": version.version, "version": new.version}
        audit_record(actor=actor, verb="update", instance=new, changes=changes)
        if new.processing_status != Document.Processing.DONE:
            # The copy of a version that was never processed (or failed) gets its own try.
            _process_later(new.pk)
        _announce_if_proposal(new)
        _index([new.pk, *chain.values_list("pk", flat=True)])
    return new


def _lock_chain(actor, document: Document) -> tuple[Document, QuerySet, Document]:
    """A document's first version locked (so two new versions cannot race), all its
    versions, and the newest, which the actor must be allowed to change."""
    first = Document.objects.select_for_update().get(pk=document.chain_id)
    chain = Document.objects.of_chain(first.pk)
    latest = chain.order_by("-version").first()
    check_document_change(actor, latest)
    return first, chain, latest


@transaction.atomic
def document_share(*, actor, document: Document, user_ids: list[int], is_public: bool,
                   ip: str | None = None) -> Document:  # fmt: skip
    """Set who besides the general rule may see the document (all its versions)."""
    check_document_change(actor, document)
    users = list(get_user_model().objects.filter(pk__in=user_ids, is_active=True))
    if len(users) != len(set(user_ids)):
        raise ValidationFailed("Some of those users do not exist.", field="allowed_users")
    versions = Document.objects.of_chain(document.chain_id)
    version_ids = list(versions.values_list("pk", flat=True))
    through = Document.allowed_users.through
    already = set(through.objects.filter(document_id=document.pk).values_list("user_id", flat=True))
    through.objects.filter(document_id__in=version_ids).delete()
    through.objects.bulk_create(
        [through(document_id=version_id, user_id=user.pk)
         for version_id in version_ids for user in users]
    )  # fmt: skip
    versions.update(is_public=is_public)
    _access(document, actor, DocumentAccess.Action.EDIT, ip, "sharing changed")
    changes = {"allowed_users": sorted(u.pk for u in users), "is_public": is_public}
    audit_record(actor=actor, verb="update", instance=document, changes=changes)
    added = [user.pk for user in users if user.pk not in already]
    if added:
        notice = Notice(
            kind=Notification.Kind.DOCUMENT_SHARED,
            recipient_ids=added,
            text=f"{actor.get_full_name() or actor.username} shared “{document.title}” with you.",
            link=reverse("documents:detail", args=[document.pk]),
            obj=document,
            actor=actor,
        )
        react(Event.DOCUMENT_SHARED, notices=[notice])
    document.refresh_from_db()
    return document


def _access(document, user, action, ip, detail: str = "") -> DocumentAccess:
    return DocumentAccess.objects.create(
        document=document,
        user=user if getattr(user, "pk", None) else None,
        action=action,
        ip_address=ip,
        detail=detail[:255],
    )


def document_access_record(*, document: Document, user, action: str, ip: str | None,
                           detail: str = "") -> DocumentAccess:  # fmt: skip
    return _access(document, user, action, ip, detail)


def _check_category_parent(*, category: DocumentCategory, parent: DocumentCategory | None) -> None:
    """Refuse `parent` for `category` when it would close a loop (A under B under A). Walks
    up from the new parent in the database, not through possibly stale cached instances."""
    ancestor_id, seen = (parent.pk if parent else None), set()
    while ancestor_id is not None:
        if category.pk and ancestor_id == category.pk:
            raise ValidationFailed("A category cannot sit inside itself.", field="parent")
        if ancestor_id in seen:  # a loop already there: never walk it forever
            raise ValidationFailed("The category tree is damaged here.", field="parent")
        seen.add(ancestor_id)
        ancestor_id = (
            DocumentCategory.objects.filter(pk=ancestor_id)
            .values_list("parent_id", flat=True)
            .first()
        )


def category_check(*, category: DocumentCategory, name: str,
                   parent: DocumentCategory | None) -> str:  # fmt: skip
    """The name `category` may take under `parent`, stripped; refuses a blank name, a cycle
    (a category under its own descendant) and a second category of the same name (in any
    case) under the same parent."""
    name = name.strip()
    if not name:
        raise ValidationFailed("Give the category a name.", field="name")
    _check_category_parent(category=category, parent=parent)
    siblings = DocumentCategory.objects.filter(parent=parent, name__iexact=name)
    if siblings.exclude(pk=category.pk).exists():
        raise ValidationFailed(f"There is already a category “{name}” here.", field="name")
    return name


def category_save(*, actor, name: str, parent: DocumentCategory | None,
                  category: DocumentCategory | None = None) -> DocumentCategory:  # fmt: skip
    """A new category under `parent`, or `category` renamed or moved there (what the Django
    admin saves), checked by category_check and audited."""
    category = category or DocumentCategory()
    with transaction.atomic():
        name = category_check(category=category, name=name, parent=parent)
        creating = category.pk is None
        category.name = name
        category.parent = parent
        if creating:
            category.save()
        else:
            category.save(update_fields=["name", "parent"])
        audit_record(actor=actor, verb="create" if creating else "update", instance=category,
                     changes={"name": name, "parent": parent.pk if parent else None})  # fmt: skip
    return category


def document_share_opened(
    *, document: Document, ip: str | None, customer_id: int | None = None
) -> None:
    """A customer opened a share link: an access, and a lead activity for that customer (the
    one the link was made for, else the document's own)."""
    with transaction.atomic():
        _access(document, None, DocumentAccess.Action.SHARE_OPEN, ip, "share link")
        customer = Customer.objects.filter(pk=customer_id).first() if customer_id else None
        customer = customer or (document.customer if document.customer_id else None)
        if customer is not None:
            from leads.services.activities import lead_activity_record

            lead_activity_record(
                customer=customer,
                activity_type="download",
                details={"document_id": document.pk, "title": document.title[:200]},
            )
