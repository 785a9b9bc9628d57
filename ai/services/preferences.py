from django.db import transaction

from ai.models import ScoringPreference
from crm.errors import ValidationFailed
from crm.permissions import require_manager
from crm.services import audit_record


def grading_source_set(*, actor, source: str) -> ScoringPreference:
    """The managers' choice of the score that grades leads; every lead is regraded after
    commit (without the grade workflows, as when a model is activated)."""
    require_manager(actor, "Only managers and admins choose how leads are graded.")
    if source not in ScoringPreference.Source.values:
        raise ValidationFailed("Unknown score.", field="grading_source")
    with transaction.atomic():
        preference, _ = ScoringPreference.objects.select_for_update().get_or_create(pk=1)
        if preference.grading_source != source:
            preference.grading_source = source
            preference.updated_by = actor
            preference.save(update_fields=["grading_source", "updated_by", "updated_at"])
            audit_record(actor=actor, verb="update", instance=preference,
                         changes={"grading_source": source})  # fmt: skip
            from ai.tasks import rescore_all_leads

            transaction.on_commit(lambda: rescore_all_leads.delay())
    return preference
