"""Querysets of the campaigns models."""

from django.db import models


class CampaignRunQuerySet(models.QuerySet):
    def unfinished(self) -> "CampaignRunQuerySet":
        """Runs not yet sent or cancelled: resolving, sending or paused. While a campaign has
        one, a send is under way (its template and segment must not change)."""
        Status = self.model.Status
        return self.filter(status__in=[Status.RESOLVING, Status.SENDING, Status.PAUSED])
