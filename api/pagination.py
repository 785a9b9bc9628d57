from rest_framework.pagination import CursorPagination


class Cursor(CursorPagination):
    """Cursor pagination (stable while rows are added: a phone paging through a list never
    sees a row twice or skips one). The view says the order (`ScopedViewSet.list_ordering`)
    and may add keys to the page (the delta sync's `removed` and `synced_at`)."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200

    def get_ordering(self, request, queryset, view):
        return view.list_ordering(request)

    def get_paginated_response(self, data):
        response = super().get_paginated_response(data)
        response.data.update(getattr(self, "extra", {}))
        return response

    def get_paginated_response_schema(self, schema):
        schema = super().get_paginated_response_schema(schema)
        schema["properties"]["synced_at"] = {
            "type": "string",
            "format": "date-time",
            "description": "Pass as updated_since on the next sync.",
        }
        schema["properties"]["removed"] = {
            "type": "array",
            "items": {"type": "integer"},
            "description": "With updated_since, on the first page: ids deleted or gone out "
            "of your reach since then.",
        }
        return schema
