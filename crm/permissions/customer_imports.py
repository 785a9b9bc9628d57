"""Customer imports (CSV uploads): each is seen only by the user who uploaded it, whatever
their role (its file holds rows that have not become customers, so the visibility rule
cannot apply to them yet)."""

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from crm.permissions.core import queryset_or_all


def visible_customer_imports(user, queryset: QuerySet | None = None) -> QuerySet:
    imports = queryset_or_all(queryset, "customers.CustomerImport")
    return imports.filter(uploaded_by=user)


def access_customer_import_by_id(user, import_id):
    """The import, or 404 when it does not exist or someone else uploaded it."""
    return get_object_or_404(visible_customer_imports(user), pk=import_id)
