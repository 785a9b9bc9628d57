"""Django admin never renders a select of every row of a large table: every foreign key or
many-to-many to one is a raw id, an autocomplete or read-only on every registered admin (a
4.5 MB select of 100,000 customers took 7 s to render)."""

import pytest
from django.contrib import admin
from django.db import models

LARGE = {
    "customers.Customer",
    "sales.Sale",
    "sales.Task",
    "leads.LeadScore",
    "campaigns.EmailCampaign",
    "campaigns.EmailMessage",
    "campaigns.CampaignRun",
    "campaigns.SendBatch",
    "documents.Document",
    "leads.NurtureEnrollment",
    "leads.WorkflowRun",
}


def _relations():
    from crm.admin import ReadOnlyAdmin

    for model, model_admin in admin.site._registry.items():
        if isinstance(model_admin, ReadOnlyAdmin):  # no form: nothing is edited there
            continue
        for field in model._meta.get_fields():
            is_relation = isinstance(field, models.ForeignKey | models.ManyToManyField)
            if is_relation and field.related_model._meta.label in LARGE:
                yield pytest.param(model_admin, field.name, id=f"{model._meta.label}.{field.name}")


@pytest.mark.parametrize(("model_admin", "field"), list(_relations()))
def test_large_relations_are_raw_ids_autocompletes_or_read_only(model_admin, field):
    shown_as_a_select = not (
        field in model_admin.raw_id_fields
        or field in model_admin.autocomplete_fields
        or field in (model_admin.readonly_fields or ())
        or field in (model_admin.exclude or ())
        or (model_admin.fields is not None and field not in model_admin.fields)
    )
    assert not shown_as_a_select, f"{model_admin}: {field} renders every row as a select"
