"""Lead scores computed in SQL: two queries score a chunk of leads of any size.

Each field-based factor is a CASE over the managers' ScoringRules; engagement is one
GROUP BY summing activity impacts with exponential decay (half-life HALF_LIFE_DAYS).
Every factor is capped (FACTOR_MAX) so the total stays within 0-100.
"""

from datetime import datetime, timedelta

from django.db.models import (
    Case,
    DateTimeField,
    F,
    FloatField,
    Func,
    IntegerField,
    QuerySet,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Least, Power

from leads.models import FACTOR_MAX, Factor, LeadActivity, ScoringRule

HALF_LIFE_DAYS = 30
# Activities older than this weigh under 0.02% of their impact: left out to keep it fast.
ENGAGEMENT_WINDOW_DAYS = 365

FACTOR_FIELDS = {
    Factor.BUDGET: "budget_range",
    Factor.TIMELINE: "purchase_timeline",
    Factor.AUTHORITY: "decision_authority",
    Factor.SOURCE_QUALITY: "source",
}
FIELD_SCORE_COLUMNS = [
    "company_size_score",
    "budget_score",
    "timeline_score",
    "authority_score",
    "source_quality_score",
]
SCORE_COLUMNS = [*FIELD_SCORE_COLUMNS, "engagement_score"]


class AgeInDays(Func):
    """Days from a datetime column to `now`, as a float, on PostgreSQL and SQLite."""

    output_field = FloatField()

    def __init__(self, field: str, now: datetime):
        super().__init__(Value(now, output_field=DateTimeField()), F(field))

    def as_postgresql(self, compiler, conn, **extra):
        return self.as_sql(
            compiler,
            conn,
            # EXTRACT returns numeric since PostgreSQL 14, and POWER over numeric is ~70x
            # slower than over double precision: 13 s instead of 0.2 s for 1M activities.
            template="(EXTRACT(EPOCH FROM (%(expressions)s))::double precision / 86400.0::float8)",
            arg_joiner=" - ",
            **extra,
        )

    def as_sqlite(self, compiler, conn, **extra):
        return self.as_sql(
            compiler,
            conn,
            template="(julianday(%(expressions)s))",
            arg_joiner=") - julianday(",
            **extra,
        )


def _capped(expression, factor: str):
    return Least(expression, Value(FACTOR_MAX[factor]), output_field=IntegerField())


def _keyed_points(field: str, rules: list[ScoringRule]) -> Case:
    return Case(
        *(When(**{field: rule.key}, then=Value(rule.points)) for rule in rules),
        default=Value(0),
        output_field=IntegerField(),
    )


def _band_points(field: str, rules: list[ScoringRule]) -> Case:
    whens = []
    for rule in rules:
        bounds = {f"{field}__gte": rule.min_value or 0}
        if rule.max_value is not None:
            bounds[f"{field}__lte"] = rule.max_value
        whens.append(When(**bounds, then=Value(rule.points)))
    return Case(*whens, default=Value(0), output_field=IntegerField())


def engagement_by_customer(customer_ids: list[int] | None, *, now: datetime) -> dict[int, int]:
    """{customer id: engagement points} for these customers (None: everyone), from one GROUP
    BY query: the decayed sum of their activity impacts, rounded and capped."""
    decay = Power(Value(0.5), AgeInDays("timestamp", now) / Value(float(HALF_LIFE_DAYS)))
    if customer_ids is None:
        which = {}  # one sequential pass over all activities beats many index walks
    elif len(customer_ids) > 100:
        # An id range walks the (customer, timestamp) index; a long IN list makes PostgreSQL
        # scan every activity. Extra customers in the range are summed and ignored.
        which = {"customer_id__gte": min(customer_ids), "customer_id__lte": max(customer_ids)}
    else:
        which = {"customer_id__in": customer_ids}
    sums = (
        LeadActivity.objects.filter(
            **which,
            timestamp__gt=now - timedelta(days=ENGAGEMENT_WINDOW_DAYS),
            timestamp__lte=now,
        )
        .order_by()
        .values("customer_id")
        .annotate(total=Sum(F("score_impact") * decay, output_field=FloatField()))
        .values_list("customer_id", "total")
    )
    cap = FACTOR_MAX[Factor.ENGAGEMENT]
    return {customer_id: min(round(total or 0), cap) for customer_id, total in sums}


def annotate_scores(customers: QuerySet, *, rules=None) -> QuerySet:
    """Annotate each customer with the five field-based factor scores; engagement comes
    from engagement_by_customer (one GROUP BY for a whole chunk beats a subquery per lead)."""
    rules = list(ScoringRule.objects.all()) if rules is None else rules
    by_factor: dict[str, list[ScoringRule]] = {factor: [] for factor in Factor.values}
    for rule in rules:
        by_factor[rule.factor].append(rule)
    return customers.annotate(
        company_size_score=_capped(
            _band_points("company_size", by_factor[Factor.COMPANY_SIZE]), Factor.COMPANY_SIZE
        ),
        **{
            f"{factor}_score": _capped(_keyed_points(field, by_factor[factor]), factor)
            for factor, field in FACTOR_FIELDS.items()
        },
    )
