"""The AI part of the demo: a history of past leads (converted or not), a small library of
marketing and presentation documents that past customers opened, and a model trained on
that history, so the lead list shows model scores with their factors and customer pages
show recommendations right after `make run`. Deterministic for a given seed."""

import hashlib
import random
from datetime import timedelta

from django.core.files.base import ContentFile
from django.utils import timezone

from ai.services.recommend import engagement_stats_refresh
from ai.services.training import models_train
from crm.bulk import bulk_insert
from customers.models import Customer
from demo.lead_history import lead_history_generate
from documents.models import Document
from leads.models import LeadActivity

# (title, type, industries it speaks to, text)
LIBRARY = [
    (
        "Logistics case study: 30% faster dispatch",
        "marketing",
        ["logistics", "retail"],
        "How a logistics company cut dispatch times with pipeline automation, warehouse "
        "routing and carrier follow-up. Fleet, freight and warehouse teams share one view.",
    ),
    (
        "Software teams: from trial to rollout",
        "presentation",
        ["software", "media"],
        "A deck for software companies: trial onboarding, developer adoption, SSO, API "
        "integrations and a rollout plan for engineering teams.",
    ),
    (
        "Banking compliance brief",
        "marketing",
        ["finance"],
        "Audit trails, retention and access control for banks and insurers; how finance "
        "teams meet compliance and regulatory reporting.",
    ),
    (
        "Hospital onboarding guide",
        "marketing",
        ["healthcare"],
        "Patient data protection, clinic scheduling and healthcare provider onboarding; "
        "HIPAA-ready document sharing for hospitals.",
    ),
    (
        "Factory floor ROI calculator",
        "presentation",
        ["manufacturing", "energy"],
        "Return on investment for manufacturing plants: production planning, supplier "
        "quotes, plant maintenance and energy savings.",
    ),
    (
        "Public sector procurement pack",
        "marketing",
        ["government", "education"],
        "Tenders, procurement frameworks and accessibility for public sector, schools and "
        "universities.",
    ),
    (
        "Pricing overview 2026",
        "presentation",
        [],
        "Plans, seats, pricing tiers and volume discounts for every company size.",
    ),
    (
        "Customer success playbook",
        "marketing",
        [],
        "Renewals, onboarding and quarterly business reviews: the customer success playbook.",
    ),
]


def demo_documents_ensure(*, uploader) -> list[Document]:
    """The document library (public, text already extracted), made once."""
    documents = []
    for title, kind, _industries, text in LIBRARY:
        document = Document.objects.filter(title=title, parent_document=None).first()
        if document is None:
            data = text.encode()
            document = Document(
                title=title, document_type=kind, original_name="document.txt",
                file_size=len(data), mime_type="text/plain",
                sha256=hashlib.sha256(data).hexdigest(), uploaded_by=uploader, is_public=True,
                processing_status=Document.Processing.DONE, extracted_text=text,
                preview_text=text[:500],
            )  # fmt: skip
            document.file.save("document.txt", ContentFile(data), save=False)
            document.save()
        documents.append(document)
    return documents


def _engagement(documents: list[Document], customer_ids: list[int], seed: int) -> int:
    """Past customers opened the documents that speak to their industry (share links)."""
    rng = random.Random(seed)
    now = timezone.now()
    industries = dict(Customer.objects.filter(pk__in=customer_ids).values_list("pk", "industry"))
    rows = []
    for customer_id in customer_ids:
        for (title, _kind, targets, _text), document in zip(LIBRARY, documents, strict=True):
            chance = 0.35 if industries.get(customer_id) in targets else 0.04
            if rng.random() < chance:
                rows.append({
                    "customer_id": customer_id, "activity_type": "download",
                    "details": {"document_id": document.pk, "title": title},
                    "score_impact": 0,
                    "timestamp": now - timedelta(days=rng.uniform(31, 600)),
                })  # fmt: skip
    bulk_insert(LeadActivity, rows)
    return len(rows)


def demo_ai_ensure(*, owner_ids: list[int], uploader, leads: int, seed: int) -> dict:
    """History, documents, engagement, recommendation statistics and a trained model."""
    history = lead_history_generate(
        leads=leads, owner_ids=owner_ids, seed=seed, email_prefix=f"history{seed}"
    )
    documents = demo_documents_ensure(uploader=uploader)
    engaged = _engagement(documents, history.customer_ids, seed)
    engagement_stats_refresh()
    summary = models_train()
    return {"history": len(history.customer_ids), "engagements": engaged, **summary}
