"""A deal's stage history as rows, for the bulk writers (demo and benchmark data) that insert
deals with COPY instead of going through sale_create and sale_change_stage: the bookkeeping
those services do (StageChange.left_at, Sale.furthest_stage_rank), done while the rows are
built (the deal's own row takes `Sale.funnel_rank` of the statuses)."""

from collections.abc import Sequence
from datetime import datetime

History = Sequence[tuple[str, datetime]]  # (status entered, when), oldest first


def stage_change_rows(*, sale_id: int, history: History, changed_by_id: int | None) -> list[dict]:
    """StageChange rows for `bulk_insert`: each step from the one before, left when the next
    one came."""
    rows = []
    for index, (status, at) in enumerate(history):
        rows.append(
            {
                "sale_id": sale_id,
                "from_status": history[index - 1][0] if index else "",
                "to_status": status,
                "changed_by_id": changed_by_id,
                "changed_at": at,
                "left_at": history[index + 1][1] if index + 1 < len(history) else None,
            }
        )
    return rows
