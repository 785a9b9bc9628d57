"""Helpers shared by the leads tests (the fixtures are in conftest.py)."""

from datetime import timedelta
from unittest import mock

from django.utils import timezone

from leads.models import LeadActivity, LeadScore
from leads.services.rescore import leads_rescore
from tests.factories import CustomerFactory

NOW = timezone.now()
HOT = {
    "company_size": 5000,
    "budget_range": "over_250k",
    "purchase_timeline": "immediate",
    "decision_authority": "decision_maker",
    "source": "referral",
}
WARM = {"company_size": 5000, "budget_range": "over_250k", "purchase_timeline": "immediate"}


def new_lead(**fields):
    """A lead that scores nothing but what `fields` give it."""
    defaults = {"lifecycle_stage": "lead", "source": "other", "company_size": None}
    return CustomerFactory(**{**defaults, **fields})


def score_of(customer) -> LeadScore:
    leads_rescore(customer_ids=[customer.pk], now=NOW)
    return LeadScore.objects.get(customer=customer)


def add_activity(customer, impact: int, days_ago: float):
    return LeadActivity.objects.create(
        customer=customer,
        activity_type="form_submit",
        score_impact=impact,
        timestamp=NOW - timedelta(days=days_ago),
    )


class on_commit_now:  # noqa: N801 - used like a function: `with on_commit_now():`
    """Run on_commit callbacks at once (the test transaction never commits)."""

    def __enter__(self):
        self._patch = mock.patch("django.db.transaction.on_commit", lambda func, *a, **k: func())
        self._patch.start()

    def __exit__(self, *exc):
        self._patch.stop()
