"""Walking every URL pattern of the site: the routes from the resolver, and a world of records
that gives each route's ids a record that exists (tests/test_fuzz_urls.py fuzzes them,
tests/e2e/test_phone_browser.py opens them on a phone).

The routes come from `get_resolver()`, so a new URL is walked without editing the tests.
"""

import re
from datetime import time

from django.urls import URLPattern, URLResolver, get_resolver
from django.urls.resolvers import RegexPattern

from campaigns.models import EmailDraft, OutboxMessage, SequenceEnrollment
from campaigns.sequences.builder import StepDraft, sequence_save
from campaigns.sequences.enrolment import customers_enrol
from customers.models import Customer, CustomerImport
from leads.models import RescoreRun
from tests.factories import CustomerSegmentFactory, EmailCampaignFactory, EmailTemplateFactory

# A regular-expression route (Django REST framework's routers) read as a path route: an id
# group becomes <int:...>; what is left with other regex syntax is not walked.
_REGEX_ID = re.compile(r"\(\?P<(\w+)>(?:\[0-9\]\{1,\d+\}|\[\^/\.\]\+|\\d\+)\)")


def _as_path_route(pattern) -> str:
    text = str(pattern.pattern)
    if not isinstance(pattern.pattern, RegexPattern):
        return text
    text = _REGEX_ID.sub(lambda match: f"<int:{match.group(1)}>", text.lstrip("^").rstrip("$"))
    return "^" + text if re.search(r"[\\()\[\]*+?|^$]", text) else text


def routes(patterns=None, prefix="", namespace=""):
    """(route, namespaced name) of every pattern; a route left with regex syntax starts "^"."""
    for pattern in patterns if patterns is not None else get_resolver().url_patterns:
        if isinstance(pattern, URLResolver):
            inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            yield from routes(pattern.url_patterns, prefix + _as_path_route(pattern), inner)
        elif isinstance(pattern, URLPattern):
            yield prefix + _as_path_route(pattern), namespace + (pattern.name or "")


def id_for(route: str, ids: dict[str, int], default: int | None = None) -> int | None:
    """The id of the world's record for `route`: that of the longest route prefix it has."""
    prefix = route.split("<", 1)[0]
    return next(
        (pk for start, pk in sorted(ids.items(), key=lambda item: -len(item[0]))
         if prefix.startswith(start)),
        default,
    )  # fmt: skip


def campaign_records(
    *, rep, manager, customer, text: str = "Hi", email: str = "", import_file: tuple = ()
) -> dict[str, int]:
    """The campaign, sequence, import, draft, outbox and rescore records the URLs name, with
    `text` in their subjects (a long word shows what overflows a phone): {route prefix: id}.
    `import_file`: (filename, CSV content, headers) of the rep's pending import."""
    template = EmailTemplateFactory(created_by=manager, subject=f"News about {text}")
    segment = CustomerSegmentFactory(created_by=manager)
    campaign = EmailCampaignFactory(created_by=manager, template=template, segment=segment)
    sequence = sequence_save(
        actor=manager,
        data={"name": "Onboarding", "window_start": time(9), "window_end": time(17)},
        steps=[StepDraft(template=template, delay_days=1)],
    )
    customers_enrol(sequence=sequence, customers=Customer.objects.filter(pk=customer.pk))
    filename, content, headers = import_file or ("c.csv", "name,email\nA,a@b.example\n",
                                                 ["name", "email"])  # fmt: skip
    customer_import = CustomerImport.objects.create(
        uploaded_by=rep, filename=filename, content=content, headers=headers, row_count=1
    )
    draft = EmailDraft.objects.create(
        customer=customer, rep=rep, subject=f"About {text}", text_body=text * 4
    )
    outbox = OutboxMessage.objects.create(
        to_email=email or customer.email, from_email="crm@example.com", subject=text,
        message_id="m1",
    )  # fmt: skip
    rescore = RescoreRun.objects.create(started_by=manager)
    return {
        "customers/import/": customer_import.pk,
        "leads/rules/rescore/": rescore.pk,
        "campaigns/templates/": template.pk,
        "campaigns/segments/": segment.pk,
        "campaigns/customer/": customer.pk,
        "campaigns/sequences/": sequence.pk,
        "campaigns/enrolments/": SequenceEnrollment.objects.get(sequence=sequence).pk,
        "campaigns/drafts/": draft.pk,
        "campaigns/outbox/": outbox.pk,
        "campaigns/": campaign.pk,
        "api/v1/campaigns/": campaign.pk,
    }
