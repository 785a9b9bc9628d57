"""Labels and point-in-time features for lead scoring, built with pandas from a handful of
set-based queries (one per table, never one per lead).

The label: a lead converted when it had a deal won (the first WON deal's closed_at) or,
without one, reached the customer stage (its updated_at stands in for the moment: the CRM
keeps no stage history). A lead is labelled once its window (`AI_LABEL_WINDOW_DAYS` after
it was created) has passed: positive if it converted within the window, else negative.
(A lead still inside its window has no label yet, even if it already converted: labelling
only the quick converters of the last months would inflate the newest leads' rate.)

Point in time: each labelled lead is described as of its prediction moment, its creation
plus `AI_FEATURE_DAYS` (the "cut-off"); leads converted before that moment are left out
(the outcome was already known). A lead scored today is described as of now. Every count
below takes only rows stamped before the cut-off. Firmographic fields (size, industry, ...)
are the customer's current values: the CRM keeps no history of them.

The counts, recency, engagement points, email rates and deal history are aggregated in
PostgreSQL (one GROUP BY per table, each row filtered by its own customer's cut-off), so
1,000,000 activities come back as one row per lead.
"""

import functools
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from django.conf import settings
from django.db import connection
from django.db.models import (
    Count,
    DateTimeField,
    ExpressionWrapper,
    F,
    FloatField,
    Func,
    Max,
    Min,
    Q,
    QuerySet,
    Sum,
    Value,
)
from django.db.models.functions import Power

from campaigns.models import EmailMessage
from crm.models import TeamMembership
from customers.models import (
    BudgetRange,
    Customer,
    DecisionAuthority,
    Industry,
    PurchaseTimeline,
    Region,
)
from leads.models import FACTOR_MAX, ActivityType, Factor, LeadActivity
from leads.scoring import FIELD_SCORE_COLUMNS, HALF_LIFE_DAYS, AgeInDays, annotate_scores
from sales.models import Sale

WINDOWS = (7, 30, 90)
RECENCY_CAP_DAYS = 365.0
CATEGORICAL = {
    "industry": [c for c in Industry.values],
    "region": [c for c in Region.values],
    "source": [c for c in Customer.Source.values],
    "decision_authority": [c for c in DecisionAuthority.values if c],
    "budget_range": [c for c in BudgetRange.values if c],
    "purchase_timeline": [c for c in PurchaseTimeline.values if c],
}
CATEGORY_LABELS = {
    "industry": dict(Industry.choices),
    "region": dict(Region.choices),
    "source": dict(Customer.Source.choices),
    "decision_authority": dict(DecisionAuthority.choices),
    "budget_range": dict(BudgetRange.choices),
    "purchase_timeline": dict(PurchaseTimeline.choices),
}
RULE_COLUMNS = [*FIELD_SCORE_COLUMNS, "engagement_score"]
# An id list longer than this is queried as an id range (an IN list of thousands makes
# PostgreSQL scan the table; extra rows in the range are dropped in pandas).
ID_RANGE_FROM = 100


def feature_columns() -> list[str]:
    """The model's inputs, in a stable order (stored with every model)."""
    columns = ["company_size", "log_revenue"]
    for field, values in CATEGORICAL.items():
        columns += [f"{field}={value}" for value in values]
    for kind in ActivityType.values:
        columns += [f"{kind}_{days}d" for days in WINDOWS]
    columns += ["activities_90d", "days_since_activity"]
    columns += ["emails_received", "open_rate", "click_rate"]
    columns += ["deals_before", "deals_lost_before", "log_open_deal_amount"]
    columns += [*RULE_COLUMNS, "rule_score"]
    return columns


@dataclass(frozen=True)
class LabelDefinition:
    window_days: int
    feature_days: int

    @classmethod
    def from_settings(cls) -> "LabelDefinition":
        return cls(settings.AI_LABEL_WINDOW_DAYS, settings.AI_FEATURE_DAYS)

    def as_dict(self) -> dict:
        return {
            "converted": "a deal won, or the customer stage reached, within the window",
            "window_days": self.window_days,
            "prediction_moment": f"the lead's creation + {self.feature_days} days",
        }


def _fetch(queryset: QuerySet, columns: list[str]) -> pd.DataFrame:
    """A queryset's rows straight into a DataFrame (no model instances)."""
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return pd.DataFrame.from_records(rows, columns=columns)


def _which(field: str, ids: list[int] | None) -> Q:
    if ids is None:
        return Q()
    if len(ids) > ID_RANGE_FROM:
        return Q(**{f"{field}__gte": min(ids), f"{field}__lte": max(ids)})
    return Q(**{f"{field}__in": ids})


def _customers(ids: list[int] | None, ref: datetime) -> pd.DataFrame:
    fields = [
        "company_size", "annual_revenue", "industry", "region", "source",
        "decision_authority", "budget_range", "purchase_timeline", "lifecycle_stage",
    ]  # fmt: skip
    queryset = (
        annotate_scores(Customer.objects.filter(_which("pk", ids)).order_by())
        .annotate(
            created_age=AgeInDays("created_at", ref), updated_age=AgeInDays("updated_at", ref)
        )
        .values_list("pk", "owner_id", "created_age", "updated_age", *fields, *FIELD_SCORE_COLUMNS)
    )
    frame = _fetch(queryset, ["customer_id", "owner_id", "created_age", "updated_age", *fields,
                              *FIELD_SCORE_COLUMNS])  # fmt: skip
    if ids is not None and len(ids) > ID_RANGE_FROM:
        frame = frame[frame["customer_id"].isin(ids)]
    teams = dict(TeamMembership.objects.values_list("user_id", "team_id"))
    frame["team_id"] = frame["owner_id"].map(teams)
    return frame.set_index("customer_id")


def _converted_age(frame: pd.DataFrame, ids: list[int] | None, ref: datetime) -> pd.Series:
    """Days before `ref` each customer converted (NaN: not converted)."""
    won = _fetch(
        Sale.objects.filter(_which("customer_id", ids), status="WON")
        .order_by()
        .values("customer_id")
        .annotate(first=Min("closed_at"))
        .annotate(age=AgeInDays("first", ref))
        .values_list("customer_id", "age"),
        ["customer_id", "age"],
    ).set_index("customer_id")["age"]
    converted = won.reindex(frame.index)
    staged = frame["lifecycle_stage"] == Customer.LifecycleStage.CUSTOMER
    return converted.where(converted.notna() | ~staged, frame["updated_age"])


class DaysBetween(Func):
    """Days from `earlier` to `later` (two datetime expressions), as a float."""

    output_field = FloatField()

    def __init__(self, later, earlier):
        super().__init__(later, earlier)

    def as_postgresql(self, compiler, conn, **extra):
        return self.as_sql(
            compiler, conn, arg_joiner=" - ",
            template="(EXTRACT(EPOCH FROM (%(expressions)s))::double precision / 86400.0::float8)",
            **extra,
        )  # fmt: skip

    def as_sqlite(self, compiler, conn, **extra):
        return self.as_sql(compiler, conn, template="(julianday(%(expressions)s))",
                           arg_joiner=") - julianday(", **extra)  # fmt: skip


class Cutoff:
    """Each customer's prediction moment, in SQL: its creation + feature_days (training),
    or one moment for all (scoring). `before(days)` is that moment minus `days`."""

    def __init__(self, *, at: datetime | None = None, feature_days: int | None = None):
        self.at, self.feature_days = at, feature_days

    def before(self, days: float = 0, prefix: str = "customer__"):
        if self.at is not None:
            return self.at - timedelta(days=days)
        return ExpressionWrapper(
            F(f"{prefix}created_at") + timedelta(days=self.feature_days - days),
            output_field=DateTimeField(),
        )


def _activity_aggregates(ids: list[int] | None, cutoff: Cutoff) -> pd.DataFrame:
    """Per customer, in one GROUP BY: counts per activity type over each window, recency
    and the decayed engagement points, all as of the customer's cut-off."""
    moment = cutoff.before(0)
    before = DaysBetween(moment, F("timestamp"))
    counts = {
        f"{kind}_{days}d": Count("pk", filter=Q(activity_type=kind,
                                                timestamp__gte=cutoff.before(days)))
        for kind in ActivityType.values
        for days in WINDOWS
    }  # fmt: skip
    queryset = (
        LeadActivity.objects.filter(_which("customer_id", ids))
        .filter(timestamp__lt=moment, timestamp__gte=cutoff.before(365))
        .order_by()
        .values("customer_id")
        .annotate(
            **counts,
            activities_90d=Count("pk", filter=Q(timestamp__gte=cutoff.before(90))),
            days_since_activity=Min(before),
            engagement=Sum(
                F("score_impact") * Power(Value(0.5), before / Value(float(HALF_LIFE_DAYS))),
                output_field=FloatField(),
            ),
        )
    )
    columns = ["customer_id", *counts, "activities_90d", "days_since_activity", "engagement"]
    return _fetch(queryset.values_list(*columns), columns).set_index("customer_id")


def _email_aggregates(ids: list[int] | None, cutoff: Cutoff) -> pd.DataFrame:
    moment = cutoff.before(0)
    queryset = (
        EmailMessage.objects.filter(_which("customer_id", ids), sent_at__lt=moment)
        .order_by()
        .values("customer_id")
        .annotate(
            received=Count("pk"),
            opened=Count("pk", filter=Q(opened_at__lt=moment)),
            clicked=Count("pk", filter=Q(clicked_at__lt=moment)),
        )
        .values_list("customer_id", "received", "opened", "clicked")
    )
    columns = ["customer_id", "received", "opened", "clicked"]
    return _fetch(queryset, columns).set_index("customer_id")


def _deal_aggregates(ids: list[int] | None, cutoff: Cutoff) -> pd.DataFrame:
    moment = cutoff.before(0)
    still_open = Q(closed_at__isnull=True) | Q(closed_at__gte=moment)
    queryset = (
        Sale.objects.filter(_which("customer_id", ids), created_at__lt=moment)
        .order_by()
        .values("customer_id")
        .annotate(
            deals=Count("pk"),
            lost=Count("pk", filter=Q(status="LOST", closed_at__lt=moment)),
            open_amount=Max("amount", filter=still_open),
        )
        .values_list("customer_id", "deals", "lost", "open_amount")
    )
    columns = ["customer_id", "deals", "lost", "open_amount"]
    return _fetch(queryset, columns).set_index("customer_id")


def build_features(customers: pd.DataFrame, cutoff: Cutoff, *, ids) -> pd.DataFrame:
    """The feature matrix of `customers` (indexed by id), each as of its cut-off: three
    GROUP BY queries (activities, emails, deals) and the customer rows. Rows dated after
    a customer's cut-off are never read."""
    index = customers.index
    out = pd.DataFrame(index=index)
    out["company_size"] = pd.to_numeric(customers["company_size"], errors="coerce").fillna(-1)
    revenue = pd.to_numeric(customers["annual_revenue"], errors="coerce").astype(float)
    out["log_revenue"] = np.log1p(revenue.fillna(0).clip(lower=0))
    for field, values in CATEGORICAL.items():
        column = customers[field].fillna("")
        for value in values:
            out[f"{field}={value}"] = (column == value).astype(np.float32)

    activities = _activity_aggregates(ids, cutoff).reindex(index)
    for kind in ActivityType.values:
        for days in WINDOWS:
            out[f"{kind}_{days}d"] = activities[f"{kind}_{days}d"].fillna(0)
    out["activities_90d"] = activities["activities_90d"].fillna(0)
    out["days_since_activity"] = (
        activities["days_since_activity"].astype(float).fillna(RECENCY_CAP_DAYS).clip(upper=365)
    )
    engagement = activities["engagement"].astype(float).fillna(0).round()
    engagement = engagement.clip(upper=FACTOR_MAX[Factor.ENGAGEMENT])

    emails = _email_aggregates(ids, cutoff).reindex(index).fillna(0)
    received = emails["received"].astype(float)
    denominator = received.where(received > 0, 1)
    out["emails_received"] = received
    out["open_rate"] = emails["opened"].astype(float) / denominator
    out["click_rate"] = emails["clicked"].astype(float) / denominator

    deals = _deal_aggregates(ids, cutoff).reindex(index)
    out["deals_before"] = deals["deals"].fillna(0)
    out["deals_lost_before"] = deals["lost"].fillna(0)
    amount = pd.to_numeric(deals["open_amount"], errors="coerce").astype(float).fillna(0)
    out["log_open_deal_amount"] = np.log1p(amount.clip(lower=0))

    for column in FIELD_SCORE_COLUMNS:
        out[column] = customers[column].astype(float)
    out["engagement_score"] = engagement.astype(float)
    out["rule_score"] = out[RULE_COLUMNS].sum(axis=1).clip(0, 100)
    return out[feature_columns()].astype(np.float32)


@dataclass
class Dataset:
    features: pd.DataFrame  # indexed by customer id
    labels: pd.Series  # 1 converted, 0 not
    created_age: pd.Series  # days before `ref` each lead was created (larger: older)
    team_id: pd.Series
    definition: LabelDefinition


def labelled_dataset(*, now: datetime, definition: LabelDefinition | None = None) -> Dataset:
    """Every lead whose outcome is known, described as of its prediction moment."""
    definition = definition or LabelDefinition.from_settings()
    customers = _customers(None, now)
    converted = _converted_age(customers, None, now)
    created = customers["created_age"].astype(float)
    days_to_conversion = created - converted  # NaN: never converted
    positive = days_to_conversion <= definition.window_days
    window_over = created >= definition.window_days
    known_before_cutoff = days_to_conversion < definition.feature_days
    # Only leads whose whole window has passed: counting the recent leads that already
    # converted, but not their peers still inside the window, would inflate the conversion
    # rate of the most recent leads, which are the held-out ones.
    keep = window_over & ~known_before_cutoff.fillna(False)
    customers = customers[keep]
    features = build_features(customers, Cutoff(feature_days=definition.feature_days), ids=None)
    return Dataset(
        features=features,
        labels=positive[keep].astype(int),
        created_age=created[keep],
        team_id=customers["team_id"],
        definition=definition,
    )


def current_features(customer_ids: list[int], *, now: datetime) -> tuple[pd.DataFrame, pd.Series]:
    """Features of these leads as of now, and each lead's team."""
    customers = _customers(customer_ids, now)
    features = build_features(customers, Cutoff(at=now), ids=customer_ids)
    return features, customers["team_id"]


def describe(column: str, value: float) -> str:
    """A feature's value in words, for the explanations."""
    return describer(column)(value)


@functools.cache
def describer(column: str):
    """A function putting a value of `column` into words (made once per column)."""
    if "=" in column:
        field, key = column.split("=", 1)
        label = CATEGORY_LABELS[field].get(key, key)
        name = {
            "industry": "Industry", "region": "Region", "source": "Source",
            "decision_authority": "Authority", "budget_range": "Budget",
            "purchase_timeline": "Timeline",
        }[field]  # fmt: skip
        return lambda v: f"{name} is {label}" if v >= 0.5 else f"{name} is not {label}"
    for kind, label in ActivityType.choices:
        for days in WINDOWS:
            if column == f"{kind}_{days}d":
                return lambda v, label=label, days=days: f"{label}: {int(v)} in {days} days"
    words = {
        "company_size": lambda v: f"{int(v)} employees" if v >= 0 else "Company size unknown",
        "log_revenue": lambda v: f"Annual revenue about {np.expm1(v):,.0f}",
        "activities_90d": lambda v: f"{int(v)} activities in 90 days",
        "days_since_activity": lambda v: (
            "No activity in the last year" if v >= 365 else f"Last active {round(v)} days ago"
        ),
        "emails_received": lambda v: f"{int(v)} emails received",
        "open_rate": lambda v: f"Opened {v:.0%} of emails",
        "click_rate": lambda v: f"Clicked in {v:.0%} of emails",
        "deals_before": lambda v: f"{int(v)} earlier deals",
        "deals_lost_before": lambda v: f"{int(v)} lost deals",
        "log_open_deal_amount": lambda v: f"Open deal of about {np.expm1(v):,.0f}",
        "rule_score": lambda v: f"Rule score {int(v)}",
    }
    if column in words:
        return words[column]
    if column.endswith("_score"):
        name = column[: -len("_score")].replace("_", " ").capitalize()
        return lambda v: f"{name} points: {int(v)}"
    return lambda v: f"{column}: {v:g}"
