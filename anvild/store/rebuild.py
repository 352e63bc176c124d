"""`stats rebuild`: recompute every statistics row from history and fix what differs."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import groupby
from typing import Any

from peewee import Database

from anvild.records import RERUN, TestResult, outranks
from anvild.store import backend, queries
from anvild.store.columns import ADDED
from anvild.store.models import EntityStatistics
from anvild.store.write import run_outcome, stats_row

_ROW_FIELDS = ("test_id", "space", *queries.STAT_FIELDS)


@dataclass(frozen=True, slots=True)
class Change:
    """One statistics value that history did not support."""

    entity_id: str
    space: str
    field: str
    stored: Any
    recomputed: Any


def combine(old: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
    """Add one run's statistics to the accumulated ones: the upsert of store.write, in Python."""
    if old is None:
        return dict(new)
    out = dict(old)
    for name in ADDED:
        out[name] = old[name] + new[name]
    executed = out["passed"] + out["failed"] + out["errors"]
    out["failure_rate"] = (out["failed"] + out["errors"]) / executed if executed else 0.0
    count = out["duration_count"]
    out["avg_duration"] = out["duration_total"] / count if count else None
    newer = old["last_run"] is None or new["last_run"] >= old["last_run"]
    if newer:
        out["last_run"], out["last_status"] = new["last_run"], new["last_status"]
    if new["last_failure"] is not None and (
        old["last_failure"] is None or new["last_failure"] > old["last_failure"]
    ):
        out["last_failure"] = new["last_failure"]
    if new["last_outcome"] and old["last_outcome"] and new["last_outcome"] != old["last_outcome"]:
        out["flips"] = old["flips"] + 1
    out["last_outcome"] = new["last_outcome"] or old["last_outcome"]
    return out


def _runs(rows: Iterable[tuple[Any, ...]]) -> Iterator[tuple[float, TestResult, bool]]:
    """Per execution: its timestamp, the test's final result, and whether it was rerun."""
    for _, attempts in groupby(rows, key=lambda row: row[2]):
        final: TestResult | None = None
        reran = False
        started = 0.0
        for _test, _space, _exec, started_at, attempt, status, duration in attempts:
            started = started_at
            reran = reran or status == RERUN
            if final is None or outranks(status, final.status):
                final = TestResult("", "", status, duration, attempt)
        assert final is not None
        yield started, final, reran


def recompute(project: int) -> dict[tuple[int, str], dict[str, Any]]:
    """Statistics of every (test, space) of a project, folded from its history."""
    result: dict[tuple[int, str], dict[str, Any]] = {}
    history = queries.history_for_rebuild(project)
    for (test, space), rows in groupby(history, key=lambda row: (row[0], row[1])):
        acc: dict[str, Any] | None = None
        for started, final, reran in _runs(rows):
            values = stats_row(test, space, run_outcome(final, reran), started)
            row = dict(zip(_ROW_FIELDS, values, strict=True))
            acc = combine(acc, row)
        assert acc is not None
        acc.pop("test_id"), acc.pop("space")
        result[(test, space)] = acc
    return result


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return bool(a == b)


def rebuild(db: Database, project: int | None) -> list[Change]:
    """Recompute a project's statistics, write the rows that differ, return what changed."""
    if project is None:
        return []
    with backend.write_transaction(db):
        stored = queries.stored_statistics(project)
        fresh = recompute(project)
        names = queries.entity_names(project)
        changes: list[Change] = []
        wrong: set[tuple[int, str]] = set()
        for key in sorted(set(stored) | set(fresh)):
            old, new = stored.get(key), fresh.get(key)
            for name in queries.STAT_FIELDS:
                before = old[name] if old else None
                after = new[name] if new else None
                if not _same(before, after):
                    changes.append(
                        Change(names.get(key[0], str(key[0])), key[1], name, before, after)
                    )
                    wrong.add(key)
        for test, space in wrong:
            EntityStatistics.delete().where(
                (EntityStatistics.test == test) & (EntityStatistics.space == space)
            ).execute()
            if (test, space) in fresh:
                EntityStatistics.insert(test=test, space=space, **fresh[(test, space)]).execute()
    return changes
