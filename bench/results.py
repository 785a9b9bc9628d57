"""bench/results.json: one row per scenario, updated in place, and the summary table."""

import json
import os
from collections.abc import Iterable
from pathlib import Path

from bench.registry import Row

COLUMNS = ["scenario", "n", "seconds", "p50_ms", "p95_ms", "queries", "ratio", "passed"]


def load(path: Path) -> list[Row]:
    if not path.exists():
        return []
    return json.loads(path.read_text())


def merge(old: list[Row], new: Iterable[Row], order: list[str]) -> list[Row]:
    """Old rows with the new ones replacing those of the same scenario, in registry order."""
    rows = {row["scenario"]: row for row in old}
    rows.update({row["scenario"]: row for row in new})
    rank = {name: i for i, name in enumerate(order)}
    return sorted(
        rows.values(), key=lambda row: (rank.get(row["scenario"], len(rank)), row["scenario"])
    )


def save(path: Path, rows: list[Row]) -> None:
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(rows, indent=2, ensure_ascii=False) + "\n")
    os.replace(temporary, path)


def _cell(row: Row, column: str) -> str:
    value = row.get(column)
    if column == "passed":
        return "error" if row.get("error") else ("pass" if value else "FAIL")
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def _targets(row: Row) -> str:
    return ", ".join(f"{key}={value:g}" for key, value in row.get("targets", {}).items())


def table(rows: list[Row]) -> str:
    headers = [*COLUMNS, "targets"]
    cells = [[_cell(row, column) for column in COLUMNS] + [_targets(row)] for row in rows]
    widths = [max(len(line[i]) for line in [headers, *cells]) for i in range(len(headers))]
    numeric = set(COLUMNS[1:-1])

    def render(line: list[str]) -> str:
        return "  ".join(
            text.rjust(width) if header in numeric else text.ljust(width)
            for text, width, header in zip(line, widths, headers, strict=True)
        ).rstrip()

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([render(headers), rule, *(render(line) for line in cells)])
