"""Builders for the duplicates tests: one row of every kind that points at a customer."""

from django.utils import timezone

from campaigns.models import CampaignRun, EmailDraft, EmailMessage, Sequence, SequenceEnrollment
from customers.models import CustomerNote, DuplicatePair
from documents.models import DocumentAccess
from leads.models import LeadActivity, LeadScore, ScoreChange, WorkflowRun
from tests.factories import (
    EmailCampaignFactory,
    MarketingDocumentFactory,
    SaleFactory,
    TaskFactory,
)


def related_rows(customer, *, actor, campaign=None, sequence=None) -> dict[str, list]:
    """One row (or a few) of each relation to Customer that a merge moves, for `customer`:
    {"app.Model.field": [rows]}. tests/customers/test_duplicates_merge.py checks this
    covers every relation of customers.duplicates.relations."""
    campaign = campaign or EmailCampaignFactory(created_by=actor)
    run = CampaignRun.objects.get_or_create(campaign=campaign, run_key="once")[0]
    sequence = sequence or Sequence.objects.create(name=f"Nurture {customer.pk}")
    sale = SaleFactory(customer=customer, assigned_to=actor)
    document = MarketingDocumentFactory(customer=customer, uploaded_by=actor, is_public=False)
    DocumentAccess.objects.create(document=document, user=actor, action="view")
    return {
        "customers.CustomerNote.customer": [
            CustomerNote.objects.create(customer=customer, author=actor, text="Met at the fair")
        ],
        "sales.Sale.customer": [sale],
        "sales.Task.customer": [TaskFactory(customer=customer, assigned_to=actor)],
        "leads.LeadActivity.customer": [
            LeadActivity.objects.create(customer=customer, activity_type="website_visit")
        ],
        "leads.ScoreChange.customer": [
            ScoreChange.objects.create(customer=customer, total_score=40, grade="cold")
        ],
        "leads.WorkflowRun.customer": [WorkflowRun.objects.create(customer=customer, grade="warm")],
        "campaigns.EmailMessage.customer": [
            EmailMessage.objects.create(
                campaign=campaign, run=run, customer=customer, email=customer.email
            )
        ],
        "campaigns.SequenceEnrollment.customer": [
            SequenceEnrollment.objects.create(sequence=sequence, customer=customer)
        ],
        "campaigns.EmailDraft.customer": [
            EmailDraft.objects.create(customer=customer, rep=actor, subject="Hi", text_body="Hi")
        ],
        "documents.Document.customer": [document],
        "leads.LeadScore.customer": [
            LeadScore.objects.update_or_create(
                customer=customer, defaults={"total_score": 55, "last_calculated": timezone.now()}
            )[0]
        ],
    }


def pair_of(a, b, **fields) -> DuplicatePair:
    first, second = sorted([a, b], key=lambda c: c.pk)
    return DuplicatePair.objects.create(
        customer_a=first,
        customer_b=second,
        confidence=fields.pop("confidence", 90),
        reasons=fields.pop("reasons", ["same phone", "names 90% alike"]),
        **fields,
    )
