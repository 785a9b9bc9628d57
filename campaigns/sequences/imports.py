"""A CSV import's "enrol the new leads in sequence X" choice (off unless chosen): offered and
recorded on the confirmation step, carried out when the import has written its rows. The
gate still filters: only the new leads who may get marketing email are enrolled."""

from campaigns.models import ImportEnrolment, Sequence
from campaigns.sequences.enrolment import customers_enrol
from crm.errors import ValidationFailed
from crm.permissions.campaigns import visible_sequences
from customers.models import Customer


def sequences_offered_to_imports(*, user) -> dict[str, str]:
    """crm.reactions IMPORT_SEQUENCES: {id: name} of the sequences an import may enrol in."""
    return {
        str(pk): name
        for pk, name in visible_sequences(user)
        .filter(is_active=True, steps__isnull=False)
        .distinct()
        .order_by("name")
        .values_list("pk", "name")
    }


def import_enrolment_choose(*, customer_import, actor, sequence_id: str, **_) -> None:
    """crm.reactions IMPORT_CONFIRMED: record the choice (none: nothing is recorded)."""
    ImportEnrolment.objects.filter(customer_import=customer_import).delete()
    if not sequence_id:
        return
    if str(sequence_id) not in sequences_offered_to_imports(user=actor):
        raise ValidationFailed("Choose an active sequence to enrol the new leads in.")
    ImportEnrolment.objects.create(
        customer_import=customer_import, sequence_id=int(sequence_id), chosen_by=actor
    )


def imported_leads_enrol(*, customer_import, created_ids: list[int], **_) -> None:
    """crm.reactions CUSTOMERS_IMPORTED: in the import's transaction, enrol the leads it
    created when the choice was made (and the sequence is still active)."""
    choice = (
        ImportEnrolment.objects.select_related("sequence", "chosen_by")
        .filter(customer_import=customer_import)
        .first()
    )
    if choice is None or not created_ids:
        return
    sequence: Sequence = choice.sequence
    enrolled = 0
    if sequence.is_active and sequence.steps.exists():
        leads = Customer.objects.filter(
            pk__in=created_ids, lifecycle_stage=Customer.LifecycleStage.LEAD
        )
        enrolled = customers_enrol(sequence=sequence, customers=leads, actor=choice.chosen_by)
    ImportEnrolment.objects.filter(pk=choice.pk).update(enrolled_count=enrolled)
