"""Every table of the executive dashboard as CSV rows: the same (cached) block the page
shows, so an export says what the page says. Text a spreadsheet would run as a formula is
neutralised as in the customer export."""

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from analytics.dashboard import DashboardFilters, dashboard_blocks
from crm.http import spreadsheet_safe

CENTS = Decimal("0.01")


@dataclass(frozen=True)
class Table:
    block: str
    title: str
    header: list[str]
    rows: Callable[[dict[str, Any]], Iterable[list[Any]]]


def _rounded(value, digits: int = 2):
    return "" if value is None else round(value, digits)


def _revenue_rows(block):
    for row in block["windows"]:
        yield [row["currency"], row["last_30"], row["last_90"], row["last_365"],
               _rounded(row["average_size"])]  # fmt: skip


def _revenue_by_month_rows(block):
    for entry in block["by_month"]:
        for key in ("last_year", "this_year"):
            for row in entry["rows"]:
                cell = row[key]
                if not cell["future"]:
                    yield [entry["currency"], cell["month"], cell["amount"] or 0, cell["deals"]]


def _pipeline_rows(block):
    for row in block["by_stage"]:
        for cell in row["cells"]:
            yield [row["label"], cell["currency"], cell["deals"], cell["value"]]


def _pipeline_summary_rows(block):
    for row in block["summary"]:
        yield [row["currency"], row["deals"], row["value"], row["closing_soon"],
               row["closing_soon_value"]]  # fmt: skip


def _velocity_row(label, row):
    return [label, row["opportunities"], row["closed"], row["won"], _rounded(row["win_rate"], 4),
            _rounded(row["average_size"]), _rounded(row["cycle_days"], 1),
            _rounded(row["velocity_per_day"])]  # fmt: skip


def _velocity_rows(block):
    velocity = block["velocity"]
    for row in velocity["by_currency"]:
        yield _velocity_row(row["currency"], row)
    if len(velocity["by_currency"]) > 1:
        yield _velocity_row("All currencies", velocity)


def _velocity_trend_rows(block):
    for month in block["velocity_trend"]:
        label = month["month"].strftime("%Y-%m")
        if not month["by_currency"]:
            yield [label, *_velocity_row("", month)]
        for row in month["by_currency"]:
            yield [label, *_velocity_row(row["currency"], row)]


def _stage_duration_rows(block):
    for row in block["stage_durations"]:
        yield [row["label"], _rounded(row["median_days"], 1), _rounded(row["average_days"], 1),
               row["changes"]]  # fmt: skip


def _top_rep_rows(block):
    for row in block["top_reps"]:
        yield [row["name"], row["currency"], row["won"], row["deals"]]


def _churn_rows(block):
    for row in block["churn_risk"]:
        yield [row["id"], row["name"], row["company"], row["owner"], row["lifecycle_stage"],
               row["engagement_level"], row["last_contact_date"] or "",
               _rounded(row["churn_probability"], 3), "; ".join(row["reasons"])]  # fmt: skip


def _clv_rows(block):
    for row in block["high_clv"]:
        yield [row["id"], row["name"], row["company"], row["owner"], row["currency"],
               row["won_count"], _rounded(row["won_average"]),
               _rounded(row["purchases_per_year"], 2), _rounded(row["clv"])]  # fmt: skip


VELOCITY_HEADER = ["opportunities", "closed", "won", "win_rate", "average_size",
                   "cycle_days", "velocity_per_day"]  # fmt: skip

TABLES = {
    "revenue": Table("revenue", "Won revenue",
                     ["currency", "last_30_days", "last_90_days", "last_365_days",
                      "average_deal_size"], _revenue_rows),
    "revenue_by_month": Table("revenue", "Won revenue by month",
                              ["currency", "month", "amount", "deals"], _revenue_by_month_rows),
    "pipeline": Table("pipeline", "Open pipeline by stage",
                      ["stage", "currency", "deals", "value"], _pipeline_rows),
    "pipeline_summary": Table("pipeline", "Open pipeline and deals closing soon",
                              ["currency", "open_deals", "value", "closing_soon",
                               "closing_soon_value"], _pipeline_summary_rows),
    "funnel": Table("pipeline", "Win/loss funnel", ["stage", "deals"],
                    lambda block: ([row["label"], row["deals"]] for row in block["funnel"])),
    "velocity": Table("pipeline", "Sales velocity", ["currency", *VELOCITY_HEADER],
                      _velocity_rows),
    "velocity_trend": Table("pipeline", "Sales velocity by month",
                            ["month", "currency", *VELOCITY_HEADER], _velocity_trend_rows),
    "stage_durations": Table("pipeline", "Days in stage",
                             ["stage", "median_days", "average_days", "stage_changes"],
                             _stage_duration_rows),
    "top_reps": Table("team", "Top reps", ["rep", "currency", "won", "deals"], _top_rep_rows),
    "churn_risk": Table("customers", "Churn risk",
                        ["customer_id", "name", "company", "owner", "lifecycle_stage",
                         "engagement", "last_contact", "churn_probability", "reasons"],
                        _churn_rows),
    "high_clv": Table("customers", "High lifetime value",
                      ["customer_id", "name", "company", "owner", "currency", "won_deals",
                       "average_won", "purchases_per_year", "clv"], _clv_rows),
}  # fmt: skip


def dashboard_table_rows(*, user, filters: DashboardFilters, table: str) -> Iterator[list]:
    """Header then the rows of one dashboard table. Raises at once (not when the rows are
    read): KeyError for an unknown table, crm PermissionDenied when the user may not see it."""
    spec = TABLES[table]
    block = dashboard_blocks(user=user, filters=filters, names=(spec.block,))[spec.block]
    return _safe_rows(spec, block)


def _safe_rows(spec: Table, block: dict[str, Any]) -> Iterator[list]:
    yield spec.header
    for row in spec.rows(block):
        yield [spreadsheet_safe(_money(value)) for value in row]


def _money(value):
    """Amounts with their two decimals whatever the database returned (SQLite drops them)."""
    return value.quantize(CENTS) if isinstance(value, Decimal) else value
