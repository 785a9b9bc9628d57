"""One sender at a time per run: a lease in the run's row, renewed every batch. Another
sender takes over only when the lease has lapsed, i.e. its holder died."""

from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from campaigns.models import CampaignRun
from campaigns.sending.provider import longest_request_seconds


def lease_seconds() -> float:
    """How long a silent sender keeps its run. Never shorter than a few provider timeouts:
    a sender waiting on a slow request must not be presumed dead, or its batch would be
    judged unsent and sent again by the next one."""
    return max(settings.CAMPAIGN_SEND_LEASE_SECONDS, 3 * longest_request_seconds())


def lease_take(run_id: int, sender: str) -> bool:
    """Take a sending run that is free, lapsed or already this sender's."""
    now = timezone.now()
    runs = CampaignRun.objects.filter(pk=run_id, status=CampaignRun.Status.SENDING).filter(
        Q(lease_owner=sender) | Q(lease_until__isnull=True) | Q(lease_until__lt=now)
    )
    return (
        runs.update(lease_owner=sender, lease_until=now + timedelta(seconds=lease_seconds())) == 1
    )


def lease_renew(run_id: int, sender: str) -> bool:
    """Extend this sender's lease; False when another sender took over (this one was
    presumed dead) or the run stopped sending."""
    runs = CampaignRun.objects.filter(
        pk=run_id, status=CampaignRun.Status.SENDING, lease_owner=sender
    )
    lease_until = timezone.now() + timedelta(seconds=lease_seconds())
    return runs.update(lease_until=lease_until) == 1


def lease_hold(run_id: int, sender: str, *, seconds: float) -> None:
    """Keep the run for `seconds` (a retry's backoff) more than a lease: no other sender
    starts during the wait, and the retry, the same sender, carries on."""
    CampaignRun.objects.filter(pk=run_id, lease_owner=sender).update(
        lease_until=timezone.now() + timedelta(seconds=seconds + lease_seconds())
    )


def lease_release(run_id: int, sender: str) -> None:
    CampaignRun.objects.filter(pk=run_id, lease_owner=sender).update(
        lease_owner="", lease_until=None
    )
