"""The base of every API view: scoped through crm.permissions, JSON errors, cursor pages,
sparse fieldsets, delta sync with tombstones, ETags and Idempotency-Key.

`ScopedViewSet.get_queryset` is the only way to the rows, and it always passes through the
view's `visible` function from crm.permissions; a subclass may not override it (checked when
the class is made). A view that really must skip the rule names it, in a function called
`dangerously_...`, so it stands out in review.
"""

import hashlib
import json
from collections.abc import Callable
from datetime import UTC, timedelta

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.core.cache import cache
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.cache import get_conditional_response, set_response_etag
from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import exceptions, status, viewsets
from rest_framework.response import Response
from rest_framework.views import APIView

from api.models import IdempotentRequest
from crm.errors import PermissionDenied
from crm.models import Tombstone
from crm.roles import is_admin

# A sync's `synced_at` lies this far before the query: a change saved in a transaction
# that committed late (its updated_at before our read) is sent again, never missed.
SYNC_OVERLAP = timedelta(seconds=60)
IDEMPOTENCY_LOCK_SECONDS = 60
MAX_REMOVED = 10_000

UPDATED_SINCE = OpenApiParameter(
    "updated_since",
    OpenApiTypes.DATETIME,
    description="Only records changed since this time (the previous page's synced_at); "
    "the first page then lists in `removed` the ids deleted or gone out of your reach.",
)
FIELDS = OpenApiParameter(
    "fields",
    OpenApiTypes.STR,
    description="Comma-separated fields to return (sparse fieldset).",
)
IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    OpenApiTypes.STR,
    location=OpenApiParameter.HEADER,
    description="Any unique string: the same key again answers the first answer and "
    "creates nothing twice (kept 24 hours).",
)


def resource_schema(*, request=None, created=None, updated=None, updated_since: bool = True):
    """The OpenAPI description of a ScopedViewSet: list (with `updated_since` for a resource
    that syncs) and retrieve take `fields`; create, where it has one, reads `request` and
    answers 201 with `created`, idempotently; partial_update answers 200 with `updated`."""
    actions = {
        "list": extend_schema(parameters=[UPDATED_SINCE, FIELDS] if updated_since else [FIELDS]),
        "retrieve": extend_schema(parameters=[FIELDS]),
    }
    if created is not None:
        actions["create"] = extend_schema(
            request=request, responses={201: created}, parameters=[IDEMPOTENCY_KEY]
        )
    if updated is not None:
        actions["partial_update"] = extend_schema(request=request, responses={200: updated})
    return extend_schema_view(**actions)


class ApiView(APIView):
    """Login is checked by the API's own authentication (401), not the site's redirect."""

    @classmethod
    def as_view(cls, *args, **kwargs):
        return login_not_required(super().as_view(*args, **kwargs))


class ConditionalMixin:
    """ETag on every successful GET; If-None-Match with it answers 304 without the body."""

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        streamed = not isinstance(response, Response)  # a file download: no ETag from its body
        if request.method in ("GET", "HEAD") and response.status_code == 200 and not streamed:
            response.render()
            data = response.data
            if isinstance(data, dict) and "synced_at" in data:
                # A list's synced_at moves with every request; the ETag is of the rest.
                moving = json.dumps({"synced_at": data["synced_at"]}, separators=(",", ":"))
                moving = moving[1:-1].encode()
                digest = hashlib.md5(
                    response.content.replace(moving, b""), usedforsecurity=False
                ).hexdigest()
                response["ETag"] = f'"{digest}"'
            else:
                set_response_etag(response)
            return get_conditional_response(
                request._request, etag=response["ETag"], response=response
            )
        return response


class _Replay(Exception):
    def __init__(self, record: IdempotentRequest):
        self.record = record


class IdempotencyMixin:
    """POST with an Idempotency-Key: the first answer (2xx) is kept for the user and key, and
    the same key again gets it back (`Idempotent-Replayed: true`) instead of running again.
    The key with another body is refused (422); while the first is still running, 409."""

    def dispatch(self, request, *args, **kwargs):
        if request.method == "POST" and request.headers.get("Idempotency-Key"):
            with transaction.atomic():  # the write and its kept answer commit together
                return super().dispatch(request, *args, **kwargs)
        return super().dispatch(request, *args, **kwargs)

    def _fingerprint(self, request) -> str:
        digest = hashlib.sha256(f"{request.method} {request.path}".encode())
        if request.content_type.startswith("multipart/"):
            digest.update(request.META.get("CONTENT_LENGTH", "").encode())
        else:
            digest.update(request._request.body)
        return digest.hexdigest()

    def initial(self, request, *args, **kwargs):
        self._idempotency = None
        key = request.headers.get("Idempotency-Key") if request.method == "POST" else None
        if key:
            fingerprint = self._fingerprint(request)  # before the body is parsed
        super().initial(request, *args, **kwargs)
        if not key:
            return
        if len(key) > 255:
            raise exceptions.ValidationError({"Idempotency-Key": ["At most 255 characters."]})
        since = timezone.now() - timedelta(hours=settings.API_IDEMPOTENCY_HOURS)
        record = IdempotentRequest.objects.filter(
            user=request.user, key=key, created_at__gte=since
        ).first()
        if record is not None:
            if record.fingerprint != fingerprint:
                raise exceptions.ValidationError(
                    {"Idempotency-Key": ["This key was used for another request."]}
                )
            raise _Replay(record)
        lock = f"api-idempotency:{request.user.pk}:{hashlib.sha256(key.encode()).hexdigest()}"
        if not cache.add(lock, 1, timeout=IDEMPOTENCY_LOCK_SECONDS):
            from api.errors import Conflict

            raise Conflict("A request with this Idempotency-Key is still being processed.")
        self._idempotency = (key, fingerprint, lock)

    def handle_exception(self, exc):
        if isinstance(exc, _Replay):
            response = Response(exc.record.body, status=exc.record.status_code)
            response["Idempotent-Replayed"] = "true"
            return response
        return super().handle_exception(exc)

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        pending = getattr(self, "_idempotency", None)
        if pending:
            key, fingerprint, lock = pending
            self._idempotency = None
            if 200 <= response.status_code < 300:
                IdempotentRequest.objects.filter(user=request.user, key=key).delete()  # stale
                IdempotentRequest.objects.create(
                    user=request.user,
                    key=key,
                    fingerprint=fingerprint,
                    status_code=response.status_code,
                    body=json.loads(response.render().content) if response.data else None,
                    created_at=timezone.now(),
                )
            transaction.on_commit(lambda: cache.delete(lock))
            if transaction.get_rollback() or not (200 <= response.status_code < 300):
                cache.delete(lock)
        return response


class ScopedViewSet(IdempotencyMixin, ConditionalMixin, viewsets.GenericViewSet):
    """Every API resource. A subclass says:

    - `visible(user, queryset)`: the crm.permissions filter of what the user may see (404
      for the rest); `editable(user, queryset)` what they may change (403 on a write to a
      record they may only see);
    - `base_queryset()`: the rows with their joins, before the rule;
    - `tombstone`: the crm.models.Tombstone resource, for the delta sync's `removed`;
    - `ordering`: the list's cursor order; `updated_field`: the column `updated_since` reads.
    """

    visible: Callable[..., QuerySet]
    editable: Callable[..., QuerySet] | None = None
    tombstone: str | None = None
    ordering: tuple[str, ...] = ("-id",)
    updated_field = "updated_at"
    lookup_value_regex = r"[0-9]{1,18}"
    sparse_presets: dict[str, list[str]] = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "get_queryset" in cls.__dict__:
            raise TypeError(
                f"{cls.__name__} overrides get_queryset: every API queryset goes through "
                "crm.permissions (set `visible`, or a function named dangerously_...)."
            )

    @classmethod
    def as_view(cls, *args, **kwargs):
        return login_not_required(super().as_view(*args, **kwargs))

    def base_queryset(self) -> QuerySet:
        return self.queryset.all()

    def get_queryset(self) -> QuerySet:
        visible = type(self).visible  # a plain function, not bound
        return visible(self.request.user, self.base_queryset())

    # Reads

    def updated_since(self):
        raw = self.request.query_params.get("updated_since")
        if raw in (None, ""):
            return None
        try:
            moment = parse_datetime(raw.replace(" ", "+"))
        except ValueError:
            moment = None
        if moment is None:
            raise exceptions.ValidationError(
                {"updated_since": ["Give an ISO 8601 date and time, e.g. 2026-01-31T12:00:00Z."]}
            )
        try:
            if timezone.is_naive(moment):
                moment = timezone.make_aware(moment, timezone.get_current_timezone())
            # In UTC: PostgreSQL refuses offsets past 15:59 that Python accepts (-16:44).
            return moment.astimezone(UTC)
        except (OverflowError, ValueError) as error:
            raise exceptions.ValidationError(
                {"updated_since": ["That time is out of range."]}
            ) from error

    def list_ordering(self, request) -> tuple[str, ...]:
        if self.updated_since() is not None:
            return (self.updated_field, "id")
        return self.ordering

    def list_queryset(self) -> QuerySet:
        """The list's rows: scoped, filtered, and changed since `updated_since` if given."""
        queryset = self.filter_queryset(self.get_queryset())
        since = self.updated_since()
        if since is not None:
            queryset = queryset.filter(**{f"{self.updated_field}__gte": since})
        return queryset

    def removed_since(self, since) -> list[int]:
        """Ids deleted or gone out of the user's reach since `since`, and not visible now."""
        if self.tombstone is None:
            return []
        user = self.request.user
        # An admin sees everything, so learns of every deletion (the rows without a user).
        whose = Q(user=user) | Q(user__isnull=True) if is_admin(user) else Q(user=user)
        ids = list(
            Tombstone.objects.filter(resource=self.tombstone, removed_at__gte=since)
            .filter(whose)
            .order_by("object_id")
            .values_list("object_id", flat=True)
            .distinct()[:MAX_REMOVED]
        )
        if not ids:
            return []
        still_visible = set(self.get_queryset().filter(pk__in=ids).values_list("pk", flat=True))
        return [pk for pk in ids if pk not in still_visible]

    def list(self, request, *args, **kwargs):
        started = timezone.now()
        queryset = self.list_queryset()
        page = self.paginate_queryset(queryset)
        since = self.updated_since()
        extra = {"synced_at": (started - SYNC_OVERLAP).isoformat()}
        if since is not None and not request.query_params.get(self.paginator.cursor_query_param):
            extra["removed"] = self.removed_since(since)
        self.paginator.extra = extra
        serializer = self.get_serializer(page, many=True)
        return self.get_paginated_response(serializer.data)

    def retrieve(self, request, *args, **kwargs):
        return Response(self.get_serializer(self.get_object()).data)

    # Writes

    def get_change_object(self):
        """The record for a write: 404 when out of sight, 403 when it may only be read."""
        instance = self.get_object()
        editable = type(self).editable
        if editable is not None:
            same = type(instance).objects.filter(pk=instance.pk)
            if not editable(self.request.user, same).exists():
                raise PermissionDenied("You can read this record but not change it.")
        return instance

    # Sparse fieldsets

    def requested_fields(self) -> "list[str] | None":
        raw = self.request.query_params.get("fields") if self.request else None
        if not raw:
            return None
        names = self.sparse_presets.get(raw) or [n.strip() for n in raw.split(",") if n.strip()]
        return names

    def get_serializer(self, *args, **kwargs):
        if self.request is not None and self.request.method in ("GET", "HEAD"):
            kwargs.setdefault("fields", self.requested_fields())
        return super().get_serializer(*args, **kwargs)

    def created(self, instance, serializer_class=None) -> Response:
        serializer_class = serializer_class or self.get_serializer_class()
        data = serializer_class(instance, context=self.get_serializer_context()).data
        return Response(data, status=status.HTTP_201_CREATED)
