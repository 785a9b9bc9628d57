"""Win probability of an open deal (DESIGN.md "Pipeline"): in Python for one deal (with
its reasons) or for a group of deals that share its inputs (the forecast's aggregated
rows), and as a SQL expression over any number of deals or stage entries (calibration).

Win probability of an open deal, in percent (the spec's rule):
- the deal's own `probability` when someone set it by hand, taken as it is;
- otherwise the rate of its stage: the managers' base rate (StageSetting.base_probability)
  or, once HISTORY_MIN_CLOSED closed deals exist, the historical stage-to-win rate (of the
  closed deals that ever entered the stage, the share that was won). The historical rates
  are computed over all history by the nightly forecast statistics
  (sales.forecasting.statistics) and read here as rows (StageWinRate);
- x 0.8 for a deal created more than 90 days ago. The spec's "-20%" is read as relative
  (50% -> 40%), not as 20 points (50% -> 30%): a 10% stage would otherwise go negative;
- x 1.2 when the customer's engagement is HIGH (VIP counts as high), x 0.8 when LOW;
- capped at 95%.
Rates and factors are exact decimals, so the SQL expression and the Python rule give the
same number to the last digit.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.db.models import (
    Case,
    DateTimeField,
    DecimalField,
    ExpressionWrapper,
    F,
    Q,
    Value,
    When,
)
from django.db.models.functions import Cast, Least
from django.utils import timezone

from customers.models import Customer
from sales.defaults import STAGE_DEFAULTS
from sales.models import Sale, StageSetting, StageWinRate

Status = Sale.Status
Engagement = Customer.EngagementLevel

HISTORY_MIN_CLOSED = 200
OLD_DEAL_AGE = timedelta(days=90)
OLD_DEAL_FACTOR = Decimal("0.8")
ENGAGEMENT_FACTORS = {
    Engagement.HIGH: Decimal("1.2"),
    Engagement.VIP: Decimal("1.2"),
    Engagement.LOW: Decimal("0.8"),
}
PROBABILITY_CAP = Decimal(95)

PERCENT = DecimalField(max_digits=7, decimal_places=4)
COUNT = DecimalField(max_digits=20, decimal_places=0)  # a count, cast for exact division
ZERO = Decimal("0.00")
HUNDRED = Decimal(100)


@dataclass(frozen=True)
class ProbabilityModel:
    """The stage rates in force: the base rates, or the historical ones (see module doc)."""

    rates: dict[str, Decimal]
    historical: bool
    closed_deals: int  # closed deals counted when the statistics were computed
    computed_at: datetime | None = None  # when; None before the first computation


def hundredths(value: Decimal) -> Decimal:
    """Rounded to 0.01 (a cent, or a hundredth of a percentage point)."""
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def base_rates() -> dict[str, Decimal]:
    """Per open stage, the managers' base rate (StageSetting, read once; the defaults for a
    stage without a setting)."""
    rates = {status: Decimal(value[0]) for status, value in STAGE_DEFAULTS.items()}
    stages = StageSetting.objects.filter(status__in=Sale.OPEN_STATUSES)
    rates.update(
        (status, Decimal(rate)) for status, rate in stages.values_list("status", "base_probability")
    )
    return rates


def model_of(
    base: dict[str, Decimal],
    historical_rates: dict[str, Decimal],
    *,
    closed_deals: int,
    computed_at: datetime | None,
) -> ProbabilityModel:
    """The base rates, or, past HISTORY_MIN_CLOSED closed deals, the historical ones over
    them (a stage no closed deal ever entered keeps its base rate)."""
    historical = closed_deals >= HISTORY_MIN_CLOSED
    rates = {**base, **historical_rates} if historical else dict(base)
    return ProbabilityModel(
        rates=rates, historical=historical, closed_deals=closed_deals, computed_at=computed_at
    )


def probability_model() -> ProbabilityModel:
    """The stage rates in force, in two small queries: the stage settings and the
    historical rates the nightly forecast statistics stored (StageWinRate, computed by
    sales.services.forecast; never recomputed here over all history). Until they have been
    computed once, the base rates."""
    stored = StageWinRate.objects.values_list("status", "rate", "closed_deals", "computed_at")
    rows = list(stored)  # one per open stage, all from the same computation
    historical_rates = {status: rate for status, rate, _, _ in rows if rate is not None}
    closed_deals, computed_at = (rows[0][2], rows[0][3]) if rows else (0, None)
    return model_of(
        base_rates(), historical_rates, closed_deals=closed_deals, computed_at=computed_at
    )


def _uncapped(rate: Decimal, *, is_old: bool, engagement: str) -> Decimal:
    return rate * (OLD_DEAL_FACTOR if is_old else 1) * ENGAGEMENT_FACTORS.get(engagement, 1)


def adjusted_probability(rate: Decimal, *, is_old: bool, engagement: str) -> Decimal:
    """The spec's rule for a stage rate, in Python (the SQL below computes the same)."""
    return min(_uncapped(rate, is_old=is_old, engagement=engagement), PROBABILITY_CAP)


def _rule_expression(model: ProbabilityModel, *, status: str, is_old: Q, engagement: str) -> Least:
    """LEAST(stage rate x age factor x engagement factor, 95) over the given fields."""
    rate = Case(
        *(When(**{status: stage}, then=Value(value)) for stage, value in model.rates.items()),
        default=Value(ZERO),
        output_field=PERCENT,
    )
    age = Case(When(is_old, then=Value(OLD_DEAL_FACTOR)), default=Value(Decimal(1)))
    levels: dict[Decimal, list[str]] = {}
    for level, factor in ENGAGEMENT_FACTORS.items():
        levels.setdefault(factor, []).append(level)
    engaged = Case(
        *(
            When(**{f"{engagement}__in": names}, then=Value(factor))
            for factor, names in levels.items()
        ),
        default=Value(Decimal(1)),
    )
    product = ExpressionWrapper(rate * age * engaged, output_field=PERCENT)
    return Least(product, Value(PROBABILITY_CAP), output_field=PERCENT)


def win_probability(
    model: ProbabilityModel, *, status: str, probability: int | None, is_old: bool, engagement: str
) -> Decimal:
    """The rule in Python for an open deal's fields (the same number as the SQL expression
    below): the hand-set probability, or the stage rate adjusted for age and engagement."""
    if probability is not None:
        return Decimal(probability)
    return adjusted_probability(model.rates.get(status, ZERO), is_old=is_old, engagement=engagement)


def win_probability_expression(now: datetime, *, model: ProbabilityModel | None = None) -> Case:
    """A Sale annotation: each open deal's win probability in percent (closed deals get 0
    unless set by hand). `model` lets one request read the stage rates once."""
    model = model or probability_model()
    rule = _rule_expression(
        model,
        status="status",
        is_old=Q(created_at__lt=now - OLD_DEAL_AGE),
        engagement="customer__engagement_level",
    )
    return Case(
        When(probability__isnull=False, then=Cast("probability", PERCENT)),
        default=rule,
        output_field=PERCENT,
    )


def entry_probability_expression(model: ProbabilityModel) -> Least:
    """A StageChange annotation: what the model gives the deal as it enters the stage (its
    age then; its customer's engagement now, there is no history of it; no hand-set
    probability, whose value at that moment is not recorded)."""
    entered_old = Q(
        sale__created_at__lt=ExpressionWrapper(
            F("changed_at") - OLD_DEAL_AGE, output_field=DateTimeField()
        )
    )
    return _rule_expression(
        model,
        status="to_status",
        is_old=entered_old,
        engagement="sale__customer__engagement_level",
    )


def _pct(value: Decimal) -> str:
    """37.50 -> "37.5%", 50 -> "50%"."""
    text = f"{hundredths(Decimal(value)):f}"
    return text.rstrip("0").rstrip(".") + "%"


def _factor(value: Decimal) -> str:
    return f"×{value.normalize():f}"


def deal_probability(
    sale: Sale, *, now: datetime | None = None, model: ProbabilityModel | None = None
) -> tuple[Decimal | None, list[str]]:
    """One deal's win probability (None when closed) and why, for the deal page."""
    if sale.is_closed:
        return None, []
    if sale.probability is not None:
        return Decimal(sale.probability), [f"Set by hand: {sale.probability}%"]
    now = now or timezone.now()
    model = model or probability_model()
    rate = model.rates.get(sale.status, ZERO)
    stage = Status(sale.status).label
    if model.historical:
        reasons = [f"Historical stage-to-win rate ({stage}) {_pct(rate)}"]
    else:
        reasons = [f"Stage base rate ({stage}) {_pct(rate)}"]
    is_old = sale.created_at < now - OLD_DEAL_AGE
    if is_old:
        reasons.append(f"Older than {OLD_DEAL_AGE.days} days: {_factor(OLD_DEAL_FACTOR)}")
    engagement = sale.customer.engagement_level
    factor = ENGAGEMENT_FACTORS.get(engagement)
    if factor is not None:
        kind = "Low" if factor < 1 else "High"
        extra = " (VIP)" if engagement == Engagement.VIP else ""
        reasons.append(f"{kind} engagement{extra}: {_factor(factor)}")
    raw = _uncapped(rate, is_old=is_old, engagement=engagement)
    if raw > PROBABILITY_CAP:
        reasons.append(f"Capped at {_pct(PROBABILITY_CAP)}")
    value = min(raw, PROBABILITY_CAP)
    return value, reasons
