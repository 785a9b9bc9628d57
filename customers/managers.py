from django.db import models
from django.db.models import Q


class CustomerQuerySet(models.QuerySet):
    def with_related(self):
        return self.select_related("owner").prefetch_related("tags")

    def search(self, text: str):
        text = (text or "").strip()
        if not text:
            return self
        return self.filter(
            Q(name__icontains=text) | Q(email__icontains=text) | Q(company__icontains=text)
        )

    def leads(self):
        return self.filter(lifecycle_stage=self.model.LifecycleStage.LEAD)
