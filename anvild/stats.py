"""Per-test statistics as users see them: spaces merged or apart, sorted, the slowest."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from anvild.store import fold
from anvild.store.columns import ADDED

SORT_KEYS = {
    "rate": lambda row: (-row["failure_rate"], -row["failed"] - row["errors"], row["entity_id"]),
    "duration": lambda row: (-(row["avg_duration"] or 0.0), row["entity_id"]),
    "runs": lambda row: (-row["total_runs"], row["entity_id"]),
}

_SUMMED = (*ADDED, "flips")


def merge_spaces(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per test over every space (`--space all`)."""
    merged: dict[str, dict[str, Any]] = {}
    for row in rows:
        seen = merged.get(row["entity_id"])
        if seen is None:
            merged[row["entity_id"]] = {**row, "space": "all"}
            continue
        for name in _SUMMED:
            seen[name] += row[name]
        if (row["last_run"] or 0) >= (seen["last_run"] or 0):
            seen["last_run"], seen["last_status"] = row["last_run"], row["last_status"]
        if row["last_failure"] and (seen["last_failure"] or 0) < row["last_failure"]:
            seen["last_failure"] = row["last_failure"]
    return [fold.derive(row) for row in merged.values()]


def select(
    rows: list[dict[str, Any]], space: str, sort: str = "rate", limit: int | None = None
) -> list[dict[str, Any]]:
    """The statistics a `stats show` asks for: merged for `all`, sorted, limited."""
    chosen = merge_spaces(rows) if space == "all" else [r for r in rows if r["space"] == space]
    chosen.sort(key=SORT_KEYS[sort])
    return chosen[:limit] if limit else chosen


def slowest(rows: list[dict[str, Any]], space: str, limit: int) -> list[dict[str, Any]]:
    """The tests with the highest average duration."""
    timed = [r for r in select(rows, space, "duration") if r["avg_duration"] is not None]
    return timed[:limit]
