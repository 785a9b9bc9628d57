"""The executive dashboard: the spec's four blocks (revenue, pipeline health, team
performance, customer insights) assembled from the analytics.selectors modules.

Each block is cached per (whose data, filters) with the "deals" generation (crm.cache) it
was computed at; sales bumps the generation after every deal change commits. A block is
fresh while its generation is current and it is younger than ANALYTICS_CACHE_SECONDS.
A block that is no longer fresh is still shown (with its "as of" time) while a worker
computes it again: at most one refresh per block and filters every
ANALYTICS_REFRESH_SECONDS, however many deals change meanwhile. A busy team moves deals
every few seconds, and the blocks read the whole history (about a second of database time
at 100k deals), so recomputing them on the request after every change would make the
dashboard the page that starves the server. Only a dashboard never computed (or kept past
ANALYTICS_KEEP_SECONDS) is computed on the request.

Blocks hold plain values (dicts, lists, Decimals, dates) so they pickle small; chart series
are floats ready for JSON.
"""

import calendar
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone

from analytics.expressions import Median
from analytics.selectors.churn import CHURN_RISK_THRESHOLD, churn_risk_customers
from analytics.selectors.clv import (
    clv_by_currency,
    expected_lifespan_years,
    high_clv_customers,
    segment_clv,
)
from analytics.selectors.deal_flow import deal_flow, stage_durations
from analytics.selectors.pipeline import open_pipeline
from analytics.selectors.reps import top_reps
from analytics.selectors.revenue import won_revenue
from crm import cache as crm_cache
from crm.errors import ValidationFailed
from crm.forms import person_name
from crm.permissions.analytics import (
    AnalyticsScope,
    access_dashboard_scope,
    dashboard_view_key,
    require_dashboard,
)
from sales.models import Sale

PERIODS = (30, 90, 365)
DEFAULT_PERIOD = 90
BLOCKS = ("revenue", "pipeline", "team", "customers")
TREND_MONTHS = 6
TOP_REPS = 10
CHURN_ROWS = 20
CLV_ROWS = 10
CACHE_PREFIX = "analytics:dashboard:v2"


@dataclass(frozen=True)
class DashboardFilters:
    """Period (days) and whose deals: everyone the user sees, one team or one rep."""

    period: int = DEFAULT_PERIOD
    team_id: int | None = None
    rep_id: int | None = None

    @property
    def scope(self) -> AnalyticsScope:
        return AnalyticsScope(team_id=self.team_id, rep_id=self.rep_id)

    @property
    def cache_key(self) -> str:
        return f"p{self.period}:t{self.team_id or ''}:r{self.rep_id or ''}"

    def query(self) -> dict[str, Any]:
        """The filters as GET parameters (for links and exports)."""
        params = {"period": self.period, "team": self.team_id, "rep": self.rep_id}
        return {name: value for name, value in params.items() if value}

    def querystring(self) -> str:
        return urlencode(self.query())


# Access -------------------------------------------------------------------------------------


def dashboard_access_check(*, user, filters: DashboardFilters) -> None:
    """Managers and admins only, a known period, and a team and rep the user may pick
    (crm.permissions.analytics). Raises PermissionDenied (403, or 404 for a scope out of
    reach) or, for an unknown period, ValidationFailed (400)."""
    require_dashboard(user)
    if filters.period not in PERIODS:
        raise ValidationFailed("Unknown period.", field="period")
    access_dashboard_scope(user, team_id=filters.team_id, rep_id=filters.rep_id)


# The dashboard ------------------------------------------------------------------------------


def executive_dashboard(
    *, user, filters: DashboardFilters, use_cache: bool = True, now: datetime | None = None
) -> dict[str, Any]:
    """The four blocks, from the cache where they are fresh. Uncached it is about 15
    queries whatever the amount of data (pinned in tests/analytics/test_dashboard.py)."""
    blocks = dashboard_blocks(user=user, filters=filters, names=BLOCKS, use_cache=use_cache,
                              now=now)  # fmt: skip
    return {
        **blocks,
        "filters": filters,
        "as_of": min(block["computed_at"] for block in blocks.values()),
        "refreshing": any(block.get("refreshing") for block in blocks.values()),
        "cache_seconds": settings.ANALYTICS_CACHE_SECONDS,
    }


def dashboard_blocks(
    *,
    user,
    filters: DashboardFilters,
    names: tuple[str, ...] = BLOCKS,
    use_cache: bool = True,
    now: datetime | None = None,
) -> dict[str, dict[str, Any]]:
    """Some blocks of the dashboard: one cache round trip for them all; stale ones are
    returned as they are (marked "refreshing") with a refresh queued; missing ones are
    computed (after the access check, which a block in the cache passed already: its key is
    the user's own, or shared by admins who see everything) and stored."""
    require_dashboard(user)
    unknown = set(names) - set(BLOCKS)
    if unknown:
        raise ValueError(f"Unknown dashboard blocks: {sorted(unknown)}")
    if not use_cache:
        dashboard_access_check(user=user, filters=filters)
        return _computed(user=user, filters=filters, names=names, now=now)
    generation = crm_cache.generation(crm_cache.DEALS)
    keys = _cache_keys(user, filters, names)
    found = cache.get_many(list(keys.values()))
    moment = now or timezone.now()
    blocks, stale = {}, []
    for name, key in keys.items():
        entry = found.get(key)
        if entry is None:
            continue
        block = entry["block"]
        age = (moment - block["computed_at"]).total_seconds()
        if entry["generation"] != generation or age >= settings.ANALYTICS_CACHE_SECONDS:
            stale.append(name)
            block = {**block, "refreshing": True}
        blocks[name] = block
    missing = tuple(name for name in names if name not in blocks)
    if missing:
        dashboard_access_check(user=user, filters=filters)
        blocks.update(_computed_and_stored(user=user, filters=filters, names=missing, now=now,
                                           generation=generation))  # fmt: skip
    if stale:
        _refresh_later(user=user, filters=filters, names=tuple(stale))
    return {name: blocks[name] for name in names}


def dashboard_refresh(*, user, filters: DashboardFilters, names: tuple[str, ...] = BLOCKS):
    """Compute the blocks again and store them (the worker's side of a stale block)."""
    dashboard_access_check(user=user, filters=filters)
    generation = crm_cache.generation(crm_cache.DEALS)  # read first: a later change re-stales
    _computed_and_stored(user=user, filters=filters, names=names, now=None, generation=generation)


def _cache_keys(user, filters: DashboardFilters, names) -> dict[str, str]:
    prefix = f"{CACHE_PREFIX}:{dashboard_view_key(user)}:{filters.cache_key}"
    return {name: f"{prefix}:{name}" for name in names}


def _computed(*, user, filters: DashboardFilters, names, now) -> dict[str, dict[str, Any]]:
    moment = now or timezone.now()
    return {name: BUILDERS[name](user=user, filters=filters, now=moment) for name in names}


def _computed_and_stored(*, user, filters, names, now, generation) -> dict[str, dict[str, Any]]:
    computed = _computed(user=user, filters=filters, names=names, now=now)
    keys = _cache_keys(user, filters, names)
    cache.set_many(
        {keys[name]: {"block": block, "generation": generation}
         for name, block in computed.items()},
        timeout=settings.ANALYTICS_KEEP_SECONDS,
    )  # fmt: skip
    return computed


def _refresh_later(*, user, filters: DashboardFilters, names: tuple[str, ...]) -> None:
    """Queue one refresh of these blocks, unless one was queued within
    ANALYTICS_REFRESH_SECONDS (the lock is never released early: that is the rate limit)."""
    from analytics import tasks  # the task module imports this one

    lock = f"{CACHE_PREFIX}:refresh:{dashboard_view_key(user)}:{filters.cache_key}"
    if cache.add(lock, 1, timeout=settings.ANALYTICS_REFRESH_SECONDS):
        transaction.on_commit(
            lambda: tasks.refresh_dashboard.delay(
                user.pk, filters.period, filters.team_id, filters.rep_id, list(names)
            )
        )


def _money(value) -> float:
    return float(value or 0)


def _revenue_block(*, user, filters: DashboardFilters, now: datetime) -> dict[str, Any]:
    """Won revenue over the last 30/90/365 days per currency (with the average deal size),
    and by month this year against last year. One query."""
    scope = filters.scope
    local = timezone.localtime(now)
    this_year, last_year = local.year, local.year - 1
    revenue = won_revenue(user=user, scope=scope, months=12 + local.month, now=now)
    amounts = {}
    for row in revenue["by_month"]:  # at most 24 months x currencies, already summed in SQL
        month = (
            timezone.localtime(row["month"]) if timezone.is_aware(row["month"]) else row["month"]
        )
        amounts[(row["currency"], month.year, month.month)] = row
    currencies = sorted({currency for currency, _, _ in amounts})
    per_currency = []
    for currency in currencies:
        rows = []
        for number in range(1, 13):
            cells = {}
            for key, year in (("this_year", this_year), ("last_year", last_year)):
                found = amounts.get((currency, year, number), {})
                cells[key] = {"month": f"{year}-{number:02d}", "amount": found.get("amount"),
                              "deals": found.get("deals", 0),
                              "future": (year, number) > (local.year, local.month)}  # fmt: skip
            rows.append({"label": calendar.month_abbr[number], **cells})
        per_currency.append({
            "currency": currency,
            "rows": rows,
            "this_year_total": sum((r["this_year"]["amount"] or Decimal(0)) for r in rows),
            "last_year_total": sum((r["last_year"]["amount"] or Decimal(0)) for r in rows),
        })  # fmt: skip
    chart = {
        "labels": [calendar.month_abbr[number] for number in range(1, 13)],
        "datasets": [
            {"label": f"{entry['currency']} {year}", "currency": entry["currency"],
             "this_year": key == "this_year",
             "data": [None if row[key]["future"] else _money(row[key]["amount"])
                      for row in entry["rows"]]}
            for entry in per_currency
            for key, year in (("last_year", last_year), ("this_year", this_year))
        ],
    }  # fmt: skip
    return {
        "computed_at": now,
        "windows": revenue["windows"],
        "this_year": this_year,
        "last_year": last_year,
        "by_month": per_currency,
        "chart": chart,
    }


def _pipeline_block(*, user, filters: DashboardFilters, now: datetime) -> dict[str, Any]:
    """Open pipeline by stage, deals closing within the period, the win/loss funnel of
    deals created in the period, velocity and its trend, days in each stage. Four queries."""
    scope, days = filters.scope, filters.period
    open_stages = [status for status in Sale.Status if status.value in Sale.OPEN_STATUSES]
    pipeline = open_pipeline(user=user, scope=scope, closing_days=days, now=now)
    found = {(row["status"], row["currency"]): row for row in pipeline["by_stage"]}
    currencies = sorted({currency for _, currency in found})
    none = {"deals": 0, "value": Decimal(0)}
    by_stage = [
        {"status": status.value, "label": status.label,
         "cells": [{"currency": currency,
                    "deals": found.get((status.value, currency), none)["deals"],
                    "value": found.get((status.value, currency), none)["value"]}
                   for currency in currencies]}
        for status in open_stages
    ]  # fmt: skip
    flow = deal_flow(user=user, scope=scope, days=days, months=TREND_MONTHS, now=now)
    funnel, velocity, trend = flow["funnel"], flow["velocity"], flow["trend"]
    trend_currencies = sorted({row["currency"] for month in trend for row in month["by_currency"]})
    chart_stages = {
        "labels": [status.label for status in open_stages],
        "datasets": [
            {"label": currency, "data": [_money(row["cells"][index]["value"]) for row in by_stage],
             "deals": [row["cells"][index]["deals"] for row in by_stage]}
            for index, currency in enumerate(currencies)
        ],
    }  # fmt: skip
    chart_funnel = {
        "labels": [row["label"] for row in funnel],
        "datasets": [{"label": "Deals", "data": [row["deals"] for row in funnel]}],
    }
    chart_trend = {
        "labels": [row["month"].strftime("%b %Y") for row in trend],
        "datasets": [
            {"label": f"{currency} per day",
             "data": [next((round(c["velocity_per_day"], 2) for c in row["by_currency"]
                            if c["currency"] == currency), 0) for row in trend]}
            for currency in trend_currencies
        ],
    }  # fmt: skip
    return {
        "computed_at": now,
        "closing_days": days,
        "currencies": currencies,
        "by_stage": by_stage,
        "summary": pipeline["summary"],
        "funnel": funnel,
        "velocity": velocity,
        "velocity_trend": trend,
        "stage_durations": stage_durations(user=user, scope=scope, days=days, now=now),
        "has_medians": Median.available(connection),
        "charts": {"stages": chart_stages, "funnel": chart_funnel, "trend": chart_trend},
    }


def _team_block(*, user, filters: DashboardFilters, now: datetime) -> dict[str, Any]:
    """The top reps by won revenue in the period (per currency). One query."""
    rows = [
        {"rep_id": row["assigned_to"], "currency": row["currency"], "won": row["won"],
         "deals": row["deals"], "name": _rep_name(row)}
        for row in top_reps(user=user, scope=filters.scope, days=filters.period,
                            limit=TOP_REPS, now=now)
    ]  # fmt: skip
    several = len({row["currency"] for row in rows}) > 1
    chart = {
        "labels": [f"{row['name']} ({row['currency']})" if several else row["name"]
                   for row in rows],
        "datasets": [{"label": "Won", "data": [_money(row["won"]) for row in rows]}],
    }  # fmt: skip
    return {"computed_at": now, "top_reps": rows, "chart": chart}


def _rep_name(row: dict) -> str:
    full = f"{row['assigned_to__first_name']} {row['assigned_to__last_name']}".strip()
    return full or row["assigned_to__username"]


def _customers_block(*, user, filters: DashboardFilters, now: datetime) -> dict[str, Any]:
    """Churn-risk customers with their reasons, the highest-CLV customers of each currency,
    and the CLV of the whole book per currency. Six queries."""
    scope = filters.scope
    lifespan, lifespan_source = expected_lifespan_years()
    churn = [
        {"id": customer.pk, "name": customer.name, "company": customer.company,
         "owner": person_name(customer.owner) if customer.owner else "",
         "lifecycle_stage": customer.get_lifecycle_stage_display(),
         "engagement_level": customer.engagement_level,
         "last_contact_date": customer.last_contact_date,
         "churn_probability": customer.churn_probability, "reasons": customer.churn_reasons}
        for customer in churn_risk_customers(user=user, scope=scope, limit=CHURN_ROWS, now=now)
    ]  # fmt: skip
    ranking = clv_by_currency(user=user, lifespan_years=lifespan, scope=scope,
                              limit=CLV_ROWS, now=now)  # fmt: skip
    high = [
        {"id": customer.pk, "name": customer.name, "company": customer.company,
         "owner": person_name(customer.owner) if customer.owner else "",
         "currency": customer.currency, "won_count": customer.won_count,
         "won_average": customer.won_average,
         "purchases_per_year": customer.purchases_per_year, "clv": customer.clv}
        for customer in high_clv_customers(user=user, scope=scope, ranking=ranking, now=now)
    ]  # fmt: skip
    clv = segment_clv(user=user, scope=scope, lifespan=(lifespan, lifespan_source),
                      ranking=ranking, now=now)  # fmt: skip
    return {
        "computed_at": now,
        "churn_risk": churn,
        "high_clv": high,
        "clv": clv,
        "churn_threshold": CHURN_RISK_THRESHOLD,
    }


BUILDERS = {
    "revenue": _revenue_block,
    "pipeline": _pipeline_block,
    "team": _team_block,
    "customers": _customers_block,
}


def dashboard_charts(dashboard: dict[str, Any]) -> dict[str, Any]:
    """The chart series of a dashboard, for the page's JSON (static/js/analytics.js)."""
    pipeline = dashboard["pipeline"]["charts"]
    return {
        "revenue": dashboard["revenue"]["chart"],
        "stages": pipeline["stages"],
        "funnel": pipeline["funnel"],
        "trend": pipeline["trend"],
        "reps": dashboard["team"]["chart"],
    }
