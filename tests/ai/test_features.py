"""Labels and point-in-time features: nothing after the prediction moment is used."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from ai.features import LabelDefinition, current_features, labelled_dataset
from campaigns.models import EmailMessage
from leads.models import LeadActivity
from tests.factories import CustomerFactory, EmailCampaignFactory, SaleFactory

pytestmark = pytest.mark.django_db
DEFINITION = LabelDefinition(window_days=180, feature_days=14)


def _activity(customer, kind, at):
    LeadActivity.objects.create(customer=customer, activity_type=kind, timestamp=at, score_impact=5)


def _won(customer, at):
    sale = SaleFactory(customer=customer, assigned_to=customer.owner, amount=Decimal("1000"))
    type(sale).objects.filter(pk=sale.pk).update(status="WON", closed_at=at)


def test_features_ignore_everything_after_the_cut_off(manager):
    now = timezone.now()
    created = now - timedelta(days=300)
    lead = CustomerFactory(lifecycle_stage="lead", created_at=created)
    _activity(lead, "website_visit", created + timedelta(days=3))  # before the cut-off
    for day in (15, 20, 40, 100):  # after it: a model must never see these
        _activity(lead, "website_visit", created + timedelta(days=day))
        _activity(lead, "meeting_scheduled", created + timedelta(days=day))
    campaign = EmailCampaignFactory(created_by=manager)
    run = campaign.runs.create(run_key="once")
    EmailMessage.objects.create(
        campaign=campaign, run=run, customer=lead, email=lead.email,
        sent_at=created + timedelta(days=2), opened_at=created + timedelta(days=20),
    )  # fmt: skip
    later_deal = SaleFactory(customer=lead, assigned_to=lead.owner)
    type(later_deal).objects.filter(pk=later_deal.pk).update(
        created_at=created + timedelta(days=30)
    )

    dataset = labelled_dataset(now=now, definition=DEFINITION)
    row = dataset.features.loc[lead.pk]
    assert row["website_visit_7d"] == 0  # 11 days before the cut-off
    assert row["website_visit_30d"] == 1
    assert row["website_visit_90d"] == 1
    assert row["meeting_scheduled_90d"] == 0
    assert row["activities_90d"] == 1
    assert row["emails_received"] == 1
    assert row["open_rate"] == 0  # opened after the cut-off
    assert row["deals_before"] == 0
    assert row["days_since_activity"] == pytest.approx(11, abs=0.01)
    assert row["engagement_score"] > 0  # the one early visit, decayed to the cut-off

    # Scored today, the same lead is described as of now: the later activities count.
    today, _teams = current_features([lead.pk], now=now)
    assert today.loc[lead.pk, "meeting_scheduled_90d"] == 0  # the last one was 200 days ago
    assert today.loc[lead.pk, "website_visit_90d"] == 0


def test_labels_follow_the_window():
    now = timezone.now()
    old = now - timedelta(days=400)
    converted = CustomerFactory(lifecycle_stage="lead", created_at=old)
    _won(converted, old + timedelta(days=60))
    late = CustomerFactory(lifecycle_stage="lead", created_at=old)
    _won(late, old + timedelta(days=250))  # after the 180-day window: a negative
    never = CustomerFactory(lifecycle_stage="lead", created_at=old)
    became_customer = CustomerFactory(lifecycle_stage="customer", created_at=old)
    type(became_customer).objects.filter(pk=became_customer.pk).update(
        updated_at=old + timedelta(days=30)
    )
    too_early = CustomerFactory(lifecycle_stage="lead", created_at=old)
    _won(too_early, old + timedelta(days=5))  # before the prediction moment: left out
    recent = CustomerFactory(lifecycle_stage="lead", created_at=now - timedelta(days=50))
    _won(recent, now - timedelta(days=10))  # still inside its window: no label yet

    labels = labelled_dataset(now=now, definition=DEFINITION).labels.to_dict()

    assert labels == {converted.pk: 1, late.pk: 0, never.pk: 0, became_customer.pk: 1}
    assert too_early.pk not in labels and recent.pk not in labels
