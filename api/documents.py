"""Documents: metadata, upload (the same content checks as the page: documents.services),
and download through the permission check (recorded in the access log)."""

import django_filters
from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, serializers
from rest_framework.decorators import action
from rest_framework.parsers import MultiPartParser

from api.base import ScopedViewSet, resource_schema
from api.errors import PayloadTooLarge
from api.serializers import SparseSerializer, UserBriefField, VisibleRelatedField
from crm.http import client_ip
from crm.permissions import visible_customers, visible_sales
from crm.permissions.documents import visible_documents
from customers.models import Customer
from documents import services
from documents.models import Document, DocumentAccess, DocumentCategory
from documents.responses import document_file_response
from sales.models import Sale

# Multipart framing around the file (boundaries, the other fields).
UPLOAD_OVERHEAD_BYTES = 64 * 1024


class DocumentSerializer(SparseSerializer):
    uploaded_by = UserBriefField()
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = Document
        fields = [
            "id", "title", "description", "document_type", "category", "original_name",
            "file_size", "mime_type", "sha256", "customer", "sale", "uploaded_by",
            "uploaded_at", "version", "parent_document", "is_public", "processing_status",
            "page_count", "download_url",
        ]  # fmt: skip
        read_only_fields = fields

    def get_download_url(self, document) -> str:
        return f"/api/v1/documents/{document.pk}/download/"


class DocumentUploadSerializer(serializers.Serializer):
    file = serializers.FileField(allow_empty_file=True)
    title = serializers.CharField(required=False, allow_blank=True, max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, max_length=20_000)
    document_type = serializers.ChoiceField(choices=Document.Type.choices, required=False)
    category = serializers.PrimaryKeyRelatedField(
        queryset=DocumentCategory.objects.all(), required=False, allow_null=True
    )
    customer = VisibleRelatedField(
        visible=visible_customers, model=Customer, required=False, allow_null=True
    )
    sale = VisibleRelatedField(visible=visible_sales, model=Sale, required=False, allow_null=True)
    is_public = serializers.BooleanField(required=False, default=False)


class DocumentFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(field_name="title", lookup_expr="icontains", max_length=200)

    class Meta:
        model = Document
        fields = ["document_type", "customer", "sale", "category"]


@resource_schema(
    request={"multipart/form-data": DocumentUploadSerializer}, created=DocumentSerializer
)
class DocumentViewSet(mixins.CreateModelMixin, ScopedViewSet):
    """The latest version of each document you may open (yours, public, shared with you, or
    on a customer or deal you see)."""

    visible = visible_documents
    queryset = Document.objects.all()
    serializer_class = DocumentSerializer
    filterset_class = DocumentFilter
    updated_field = "uploaded_at"

    def base_queryset(self):
        if self.action == "list":
            return Document.objects.active().with_related().defer("extracted_text")
        return Document.objects.with_related().defer("extracted_text")

    def get_parsers(self):
        if getattr(self, "action", None) == "create" or self.request is None:
            return [MultiPartParser()]
        return super().get_parsers()

    def create(self, request, *args, **kwargs):
        length = request.META.get("CONTENT_LENGTH") or "0"
        if length.isdigit() and int(length) > settings.DOCUMENT_MAX_BYTES + UPLOAD_OVERHEAD_BYTES:
            raise PayloadTooLarge(
                f"The limit is {settings.DOCUMENT_MAX_BYTES / 1_048_576:.0f} MB per file."
            )
        serializer = DocumentUploadSerializer(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        document = services.document_upload(
            actor=request.user,
            upload=data["file"],
            title=data.get("title", ""),
            description=data.get("description", ""),
            document_type=data.get("document_type") or Document.Type.OTHER,
            category=data.get("category"),
            customer=data.get("customer"),
            sale=data.get("sale"),
            is_public=data.get("is_public", False),
            ip=client_ip(request),
        )
        return self.created(Document.objects.with_related().get(pk=document.pk))

    @extend_schema(
        responses={(200, "application/octet-stream"): OpenApiResponse(OpenApiTypes.BINARY)}
    )
    @action(detail=True, methods=["get"])
    def download(self, request, pk=None):
        """The file, after the same permission check as the page, recorded in the access log."""
        document = self.get_object()
        services.document_access_record(
            document=document, user=request.user, action=DocumentAccess.Action.DOWNLOAD,
            ip=client_ip(request),
        )  # fmt: skip
        return document_file_response(document)
