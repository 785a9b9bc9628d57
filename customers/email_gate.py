"""The one email gate: whether a customer may receive an email of a kind, and if not, why.

Every sending path asks it (campaign recipients and each batch before it goes, sequence
enrolment and each step's edge, the hot/warm workflow emails when sent); test sends to
yourself do not. The rule is
written once, as a database expression, so the same rule serves one customer
(`email_refusal`) and a whole audience (`with_email_refusal`, one SQL query for any number
of customers). Refusals, in the order they are checked:

- no address, or one that is not shaped like an address;
- the address is suppressed (bounce, spam report, dropped, invalid, unsubscribe, by hand);
- unsubscribed (the unsubscribe link or a provider event);
- consent withdrawn;
- marketing only: consent not granted, when settings.MARKETING_REQUIRES_CONSENT.
"""

from django.conf import settings
from django.db import models
from django.db.models import Case, OuterRef, Q, QuerySet, Subquery, Value, When
from django.db.models.functions import Coalesce, Lower

from customers.models import Customer, EmailConsent, Suppression

EMAIL_SHAPE = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


class EmailKind(models.TextChoices):
    MARKETING = "marketing", "Marketing"  # campaigns and sequences
    ONE_TO_ONE = "one_to_one", "One-to-one"  # a rep's personal sales email


class Refusal(models.TextChoices):
    """Why an email was not sent; stored (campaign runs, sequence stops) and grouped."""

    NO_ADDRESS = "no_address", "no address"
    INVALID_ADDRESS = "invalid_address", "invalid address"
    WITHDRAWN = "withdrawn", "consent withdrawn"
    UNSUBSCRIBED = "unsubscribed", "unsubscribed"
    BOUNCED = "bounced", "bounced"
    SPAM_REPORT = "spam_report", "spam report"
    DROPPED = "dropped", "dropped by the provider"
    SUPPRESSED = "suppressed", "suppressed"
    NO_CONSENT = "no_consent", "no consent"


# What a suppression of each reason refuses as.
SUPPRESSION_REFUSALS = {
    Suppression.Reason.BOUNCE: Refusal.BOUNCED,
    Suppression.Reason.SPAM: Refusal.SPAM_REPORT,
    Suppression.Reason.DROPPED: Refusal.DROPPED,
    Suppression.Reason.INVALID: Refusal.INVALID_ADDRESS,
    Suppression.Reason.UNSUBSCRIBE: Refusal.UNSUBSCRIBED,
    Suppression.Reason.MANUAL: Refusal.SUPPRESSED,
}
# The groups a sender sees in a summary ("skipped 312: 280 no consent, 30 suppressed, ...").
REFUSAL_GROUPS = {
    Refusal.NO_ADDRESS: "invalid",
    Refusal.INVALID_ADDRESS: "invalid",
    Refusal.WITHDRAWN: "no consent",
    Refusal.NO_CONSENT: "no consent",
    Refusal.UNSUBSCRIBED: "suppressed",
    Refusal.BOUNCED: "suppressed",
    Refusal.SPAM_REPORT: "suppressed",
    Refusal.DROPPED: "suppressed",
    Refusal.SUPPRESSED: "suppressed",
}


def _gate(kind: str, prefix: str) -> Case:
    """The gate as an expression over Customer (or over a model that reaches a customer
    through `prefix`, e.g. "customer__"): a Refusal value, or NULL when the email may go.
    The suppression is read once a row (one lookup on the unique address index), already
    as its Refusal: a subquery named in one WHEN per reason ran once for each of them, six
    lookups for every customer let through."""
    if kind not in EmailKind.values:
        raise ValueError(f"Unknown kind of email: {kind!r}")
    email = f"{prefix}email"
    suppressed = Subquery(
        Suppression.objects.filter(email=Lower(OuterRef(email)))
        .annotate(
            refusal=Case(
                *[When(reason=reason, then=Value(refusal))
                  for reason, refusal in SUPPRESSION_REFUSALS.items()],
                default=Value(None),
                output_field=models.CharField(),
            )
        )
        .values("refusal")[:1]
    )  # fmt: skip
    # After the address and the suppression, the customer's own state.
    whens = [
        When(Q(**{f"{prefix}unsubscribed_at__isnull": False}), then=Value(Refusal.UNSUBSCRIBED)),
        When(
            Q(**{f"{prefix}email_consent": EmailConsent.WITHDRAWN}),
            then=Value(Refusal.WITHDRAWN),
        ),
    ]
    if kind == EmailKind.MARKETING and settings.MARKETING_REQUIRES_CONSENT:
        whens.append(
            When(
                ~Q(**{f"{prefix}email_consent": EmailConsent.GRANTED}),
                then=Value(Refusal.NO_CONSENT),
            )
        )
    customer_state = Case(*whens, default=Value(None), output_field=models.CharField())
    return Case(
        When(Q(**{f"{email}__isnull": True}) | Q(**{email: ""}), then=Value(Refusal.NO_ADDRESS)),
        When(~Q(**{f"{email}__regex": EMAIL_SHAPE}), then=Value(Refusal.INVALID_ADDRESS)),
        # The most specific reason first: a spam report or an unsubscribe also withdraws
        # consent, and should be told as what it was.
        default=Coalesce(suppressed, customer_state),
        output_field=models.CharField(),
    )


def with_email_refusal(
    queryset: QuerySet, kind: str, *, prefix: str = "", name: str = "email_refusal"
) -> QuerySet:
    """`queryset` with `name` annotated: the Refusal of each row's customer, or None."""
    return queryset.annotate(**{name: _gate(kind, prefix)})


def email_refusal(customer: Customer, kind: str) -> Refusal | None:
    """Why `customer` may not get an email of `kind` now, or None when it may. Read from
    the database (one query), so it is the very rule the bulk paths use."""
    if customer.pk is None:
        raise ValueError("The gate judges saved customers.")
    value = (
        with_email_refusal(Customer.objects.filter(pk=customer.pk), kind)
        .values_list("email_refusal", flat=True)
        .first()
    )
    return Refusal(value) if value else None


def refusals_summary(counts: dict[str, int]) -> tuple[int, list[tuple[str, int]]]:
    """(total, [(group, count), ...]) of refusal counts, biggest group first: what a
    campaign page shows as "skipped 312: 280 no consent, 30 suppressed, 2 invalid"."""
    groups: dict[str, int] = {}
    for reason, count in counts.items():
        if count:
            group = REFUSAL_GROUPS.get(reason, "suppressed")
            groups[group] = groups.get(group, 0) + count
    ordered = sorted(groups.items(), key=lambda item: (-item[1], item[0]))
    return sum(groups.values()), ordered
