"""campaigns.services (the state machine's refusals: test_states.py)."""

import pytest

from campaigns.services import campaign_send_now

pytestmark = pytest.mark.django_db


def test_a_rep_cannot_send_campaigns(campaign, rep):
    from crm.errors import PermissionDenied

    with pytest.raises(PermissionDenied):
        campaign_send_now(actor=rep, campaign=campaign)
