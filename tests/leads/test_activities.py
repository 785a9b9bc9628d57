"""leads.services.activities: what leads do, recorded with its score impact."""

import pytest

from crm.errors import ValidationFailed
from leads.models import LeadActivity, LeadScore
from leads.services.activities import lead_activity_record
from tests.leads.helpers import new_lead

pytestmark = pytest.mark.django_db


def test_recording_an_activity_rescores_after_commit(django_capture_on_commit_callbacks):
    lead = new_lead()
    with django_capture_on_commit_callbacks(execute=True):
        activity = lead_activity_record(customer=lead, activity_type="meeting_scheduled")
    assert activity.score_impact == 10
    assert LeadScore.objects.get(customer=lead).engagement_score == 10


def test_unknown_activity_type_is_refused():
    with pytest.raises(ValidationFailed):
        lead_activity_record(customer=new_lead(), activity_type="telepathy")
    assert not LeadActivity.objects.exists()
