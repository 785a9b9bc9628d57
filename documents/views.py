"""Document pages: thin views over documents.services and documents.selectors. Files are only
ever served through `download`, after the permission check, as attachments."""

from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.core import signing
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from crm.errors import PermissionDenied, ValidationFailed
from crm.http import client_ip, is_htmx, querystring_without, safe_next_url
from crm.permissions import (
    access_customer_by_id,
    access_sale_by_id,
    can_attach_to,
    require_admin,
)
from crm.permissions.documents import access_document_by_id, can_change_document
from documents import selectors, services
from documents.forms import (
    AccessLogFilterForm,
    DocumentFilterForm,
    ShareForm,
    UploadForm,
    VersionForm,
)
from documents.models import Document, DocumentAccess
from documents.responses import document_file_response
from documents.tokens import share_token_read_full, share_url

PAGE_SIZE = 25


def document_list(request):
    filter_form = DocumentFilterForm(request.GET)
    documents = selectors.document_list(user=request.user, filters=filter_form.filters())
    context = {
        "filter_form": filter_form,
        "page": Paginator(documents, PAGE_SIZE).get_page(request.GET.get("page")),
        "querystring": querystring_without(request, "page"),
        "upload_form": UploadForm(),
    }
    if is_htmx(request):  # an upload on the page finished: the table alone
        return render(request, "documents/partials/_document_table.html", context)
    return render(request, "documents/document_list.html", context)


@require_POST
def document_upload(request):
    """One or several files. The page's script sends one file per request and shows each
    one's progress; it gets JSON back. A plain form post gets messages and a redirect."""
    wants_json = request.headers.get("Accept", "").startswith("application/json")
    form = UploadForm(request.POST, request.FILES)
    if not form.is_valid():
        errors = "; ".join(e for errors in form.errors.values() for e in errors)
        if wants_json:
            return JsonResponse({"error": errors}, status=400)
        messages.error(request, errors)
        return redirect(safe_next_url(request, reverse("documents:list")))
    data = form.cleaned_data
    customer = (
        access_customer_by_id(request.user, data["customer"]) if data.get("customer") else None
    )
    sale = access_sale_by_id(request.user, data["sale"]) if data.get("sale") else None
    results = []
    for upload, document_type in zip(data["files"], data["document_types"], strict=True):
        try:
            document = services.document_upload(
                actor=request.user,
                upload=upload,
                title=data["title"] if len(data["files"]) == 1 else "",
                description=data["description"],
                document_type=document_type,
                category=data["category"],
                customer=customer,
                sale=sale,
                is_public=data["is_public"],
                ip=client_ip(request),
            )
        except (ValidationFailed, PermissionDenied) as error:
            results.append({"name": upload.name, "error": str(error)})
        else:
            results.append({"name": upload.name, "id": document.pk,
                            "url": document.get_absolute_url()})  # fmt: skip
    if wants_json:
        failed = [r for r in results if "error" in r]
        return JsonResponse(
            {"files": results}, status=400 if failed and len(failed) == len(results) else 200
        )
    for result in results:
        if "error" in result:
            messages.error(request, f"{result['name']}: {result['error']}")
        else:
            messages.success(request, f"{result['name']} uploaded.")
    return redirect(safe_next_url(request, reverse("documents:list")))


def document_detail(request, pk: int):
    document = access_document_by_id(request.user, pk)
    services.document_access_record(
        document=document, user=request.user, action=DocumentAccess.Action.VIEW,
        ip=client_ip(request),
    )  # fmt: skip
    can_edit = can_change_document(request.user, document)
    context = {
        "document": document,
        "versions": selectors.document_versions(document=document),
        "can_edit": can_edit,
        "version_form": VersionForm() if can_edit else None,
        "share_form": ShareForm(
            initial={"allowed_users": document.allowed_users.all(), "is_public": document.is_public}
        )
        if can_edit
        else None,
    }
    return render(request, "documents/document_detail.html", context)


def document_download(request, pk: int):
    document = access_document_by_id(request.user, pk)
    services.document_access_record(
        document=document, user=request.user, action=DocumentAccess.Action.DOWNLOAD,
        ip=client_ip(request),
    )  # fmt: skip
    return document_file_response(document)


def document_preview(request, pk: int):
    """The preview thumbnail, behind the same check as the file itself."""
    document = access_document_by_id(request.user, pk)
    if not document.preview_image:
        raise Http404("No preview.")
    response = FileResponse(document.preview_image.open("rb"), content_type="image/png")
    response["X-Content-Type-Options"] = "nosniff"
    return response


@require_POST
def document_version_upload(request, pk: int):
    document = access_document_by_id(request.user, pk)
    form = VersionForm(request.POST, request.FILES)
    if not form.is_valid():
        messages.error(request, "Choose the file of the new version.")
        return redirect(document)
    try:
        new = services.document_upload_version(
            actor=request.user, document=document, upload=form.cleaned_data["file"],
            ip=client_ip(request),
        )  # fmt: skip
    except ValidationFailed as error:
        messages.error(request, error.message)
        return redirect(document)
    messages.success(request, f"Version {new.version} uploaded.")
    return redirect(new)


@require_POST
def document_restore(request, pk: int):
    version = access_document_by_id(request.user, pk)
    try:
        new = services.document_restore(actor=request.user, version=version, ip=client_ip(request))
    except ValidationFailed as error:
        messages.error(request, error.message)
        return redirect(version)
    messages.success(request, f"Version {version.version} restored as version {new.version}.")
    return redirect(new)


@require_POST
def document_share(request, pk: int):
    document = access_document_by_id(request.user, pk)
    form = ShareForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose users from the list.")
        return redirect(document)
    services.document_share(
        actor=request.user,
        document=document,
        user_ids=[u.pk for u in form.cleaned_data["allowed_users"]],
        is_public=form.cleaned_data["is_public"],
        ip=client_ip(request),
    )
    messages.success(request, "Sharing saved.")
    return redirect(document)


@require_POST
def document_share_link(request, pk: int):
    """A signed, expiring link for the customer (proposals)."""
    document = access_document_by_id(request.user, pk, for_change=True)
    services.document_access_record(
        document=document, user=request.user, action=DocumentAccess.Action.EDIT,
        ip=client_ip(request), detail="share link created",
    )  # fmt: skip
    return render(
        request,
        "documents/partials/_share_link.html",
        {"document": document, "link": share_url(document.pk)},
    )


@login_not_required
def document_share_open(request, token: str):
    """What the customer opens: the file, recorded as an access and a lead activity."""
    try:
        document_id, customer_id = share_token_read_full(token)
    except signing.SignatureExpired:
        return render(request, "documents/share_invalid.html", {"expired": True}, status=410)
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        return render(request, "documents/share_invalid.html", {}, status=404)
    document = Document.objects.filter(pk=document_id).first()
    if document is None:
        raise Http404("This document is no longer available.")
    services.document_share_opened(
        document=document, ip=client_ip(request), customer_id=customer_id
    )
    return document_file_response(document)


def document_audit(request, pk: int):
    document = access_document_by_id(request.user, pk, for_change=True)
    accesses = selectors.document_accesses(document=document)
    return render(request, "documents/document_audit.html",
                  {"document": document, "accesses": accesses})  # fmt: skip


def access_log(request):
    require_admin(request.user, "The access log is for admins.")
    filter_form = AccessLogFilterForm(request.GET)
    accesses = selectors.access_log(filters=filter_form.filters())
    context = {
        "filter_form": filter_form,
        "page": Paginator(accesses, 50).get_page(request.GET.get("page")),
        "querystring": querystring_without(request, "page"),
    }
    return render(request, "documents/access_log.html", context)


def _panel_context(request, kind: str, pk: int) -> dict:
    if kind == "customer":
        attached_to = access_customer_by_id(request.user, pk)
        documents = selectors.document_list(user=request.user, filters={"customer": attached_to.pk})
    elif kind == "sale":
        attached_to = access_sale_by_id(request.user, pk)
        documents = selectors.document_list(user=request.user, filters={"sale": attached_to.pk})
    else:
        raise Http404("No such panel.")
    return {"documents": documents[:50], "kind": kind, "attached_to": attached_to}


def _can_upload(request, kind: str, attached_to) -> bool:
    if kind == "sale":
        return can_attach_to(request.user, sale=attached_to)
    return can_attach_to(request.user, customer=attached_to)


@require_http_methods(["GET"])
def panel(request, kind: str, pk: int):
    """The documents of a customer or deal, with an upload box (htmx panel on their page)."""
    context = _panel_context(request, kind, pk)
    context |= {"upload_form": UploadForm(), "next": request.GET.get("next", ""),
                "can_upload": _can_upload(request, kind, context["attached_to"])}  # fmt: skip
    return render(request, "documents/partials/_panel.html", context)


@require_http_methods(["GET"])
def panel_documents(request, kind: str, pk: int):
    """The panel's list alone: htmx asks for it each time an upload in the panel finishes."""
    return render(
        request, "documents/partials/_panel_documents.html", _panel_context(request, kind, pk)
    )
