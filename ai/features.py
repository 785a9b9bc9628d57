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

All times are handled as "days before a reference moment" (floats from the database, see
leads.scoring.AgeInDays), so the frames stay numeric and small.
"""

import functools
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from django.conf import settings
from django.db import connection
from django.db.models import Min, Q, QuerySet

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


def _activities(ids: list[int] | None, ref: datetime, oldest_age: float) -> pd.DataFrame:
    queryset = (
        LeadActivity.objects.filter(_which("customer_id", ids))
        .filter(timestamp__gte=ref - timedelta(days=oldest_age + 1))
        .order_by()
        .annotate(age=AgeInDays("timestamp", ref))
        .values_list("customer_id", "activity_type", "age", "score_impact")
    )
    return _fetch(queryset, ["customer_id", "activity_type", "age", "score_impact"])


def _emails(ids: list[int] | None, ref: datetime) -> pd.DataFrame:
    queryset = (
        EmailMessage.objects.filter(_which("customer_id", ids), sent_at__isnull=False)
        .order_by()
        .annotate(
            sent=AgeInDays("sent_at", ref),
            opened=AgeInDays("opened_at", ref),
            clicked=AgeInDays("clicked_at", ref),
        )
        .values_list("customer_id", "sent", "opened", "clicked")
    )
    return _fetch(queryset, ["customer_id", "sent", "opened", "clicked"])


def _deals(ids: list[int] | None, ref: datetime) -> pd.DataFrame:
    queryset = (
        Sale.objects.filter(_which("customer_id", ids))
        .order_by()
        .annotate(created=AgeInDays("created_at", ref), closed=AgeInDays("closed_at", ref))
        .values_list("customer_id", "created", "closed", "status", "amount")
    )
    return _fetch(queryset, ["customer_id", "created", "closed", "status", "amount"])


def _relative(rows: pd.DataFrame, cutoff: pd.Series, column: str) -> pd.Series:
    """Days from each row's `column` to its customer's cut-off (positive: before it; NaN
    for customers not in `cutoff`)."""
    return rows[column] - rows["customer_id"].map(cutoff)


def build_features(customers: pd.DataFrame, cutoff: pd.Series, *, ids, ref) -> pd.DataFrame:
    """The feature matrix of `customers` (indexed by id), each as of its cut-off (days before
    `ref`). Rows dated after a customer's cut-off are ignored."""
    index = customers.index
    out = pd.DataFrame(index=index)
    out["company_size"] = pd.to_numeric(customers["company_size"], errors="coerce").fillna(-1)
    revenue = pd.to_numeric(customers["annual_revenue"], errors="coerce").astype(float)
    out["log_revenue"] = np.log1p(revenue.fillna(0).clip(lower=0))
    for field, values in CATEGORICAL.items():
        column = customers[field].fillna("")
        for value in values:
            out[f"{field}={value}"] = (column == value).astype(np.float32)

    oldest = float(cutoff.max()) + max(WINDOWS[-1], 365) if len(cutoff) else 0.0
    activities = _activities(ids, ref, oldest)
    activities["before"] = _relative(activities, cutoff, "age")
    activities = activities[activities["before"] > 0]  # strictly before the cut-off
    for kind in ActivityType.values:
        of_kind = activities[activities["activity_type"] == kind]
        for days in WINDOWS:
            counts = of_kind[of_kind["before"] <= days].groupby("customer_id").size()
            out[f"{kind}_{days}d"] = counts.reindex(index, fill_value=0).astype(np.float32)
    recent = activities[activities["before"] <= 90].groupby("customer_id").size()
    out["activities_90d"] = recent.reindex(index, fill_value=0)
    last = activities.groupby("customer_id")["before"].min()
    out["days_since_activity"] = last.reindex(index).fillna(RECENCY_CAP_DAYS).clip(upper=365)
    decayed = activities[activities["before"] <= 365].assign(
        points=lambda a: a["score_impact"] * np.power(0.5, a["before"] / HALF_LIFE_DAYS)
    )
    engagement = decayed.groupby("customer_id")["points"].sum().round()
    engagement = engagement.reindex(index, fill_value=0).clip(upper=FACTOR_MAX[Factor.ENGAGEMENT])

    emails = _emails(ids, ref)
    emails["before"] = _relative(emails, cutoff, "sent")
    emails = emails[emails["before"] > 0]
    cut = emails["customer_id"].map(cutoff)
    emails = emails.assign(
        was_opened=(emails["opened"] > cut).astype(float),
        was_clicked=(emails["clicked"] > cut).astype(float),
    )
    by_customer = emails.groupby("customer_id")
    received = by_customer.size().reindex(index, fill_value=0)
    out["emails_received"] = received
    denominator = received.where(received > 0, 1)
    out["open_rate"] = by_customer["was_opened"].sum().reindex(index, fill_value=0) / denominator
    out["click_rate"] = by_customer["was_clicked"].sum().reindex(index, fill_value=0) / denominator

    deals = _deals(ids, ref)
    deals["before"] = _relative(deals, cutoff, "created")
    deals = deals[deals["before"] > 0]
    closed_before = deals["closed"] > deals["customer_id"].map(cutoff)
    out["deals_before"] = deals.groupby("customer_id").size().reindex(index, fill_value=0)
    lost = deals[closed_before & (deals["status"] == "LOST")].groupby("customer_id").size()
    out["deals_lost_before"] = lost.reindex(index, fill_value=0)
    open_deals = deals[~closed_before]
    amount = pd.to_numeric(open_deals["amount"], errors="coerce").astype(float)
    biggest = amount.groupby(open_deals["customer_id"]).max()
    out["log_open_deal_amount"] = np.log1p(biggest.reindex(index, fill_value=0).clip(lower=0))

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
    cutoff = created - definition.feature_days  # days before now
    days_to_conversion = created - converted  # NaN: never converted
    positive = days_to_conversion <= definition.window_days
    window_over = created >= definition.window_days
    known_before_cutoff = days_to_conversion < definition.feature_days
    # Only leads whose whole window has passed: counting the recent leads that already
    # converted, but not their peers still inside the window, would inflate the conversion
    # rate of the most recent leads, which are the held-out ones.
    keep = window_over & ~known_before_cutoff.fillna(False)
    customers = customers[keep]
    cutoff = cutoff[keep]
    features = build_features(customers, cutoff, ids=None, ref=now)
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
    cutoff = pd.Series(0.0, index=customers.index)
    return build_features(customers, cutoff, ids=customer_ids, ref=now), customers["team_id"]


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
