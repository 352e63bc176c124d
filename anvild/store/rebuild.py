"""`stats rebuild`: recompute every statistics row from history and fix what differs."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import groupby
from typing import Any

from peewee import Database

from anvild.store import backend, fold, queries
from anvild.store.models import EntityStatistics


@dataclass(frozen=True, slots=True)
class Change:
    """One statistics value that history did not support."""

    entity_id: str
    space: str
    field: str
    stored: Any
    recomputed: Any


def _runs(rows: Iterable[tuple[Any, ...]]) -> Iterator[tuple[float, fold.RunOutcome]]:
    """Per execution: its timestamp and the test's outcome there."""
    for _, attempts in groupby(rows, key=lambda row: row[2]):
        started = 0.0
        pairs = []
        for _test, _space, _exec, started_at, _attempt, status, duration in attempts:
            started = started_at
            pairs.append((status, duration))
        outcome = fold.settle(pairs)
        assert outcome is not None
        yield started, outcome


def recompute(project: int) -> dict[tuple[int, str], dict[str, Any]]:
    """Statistics of every (test, space) of a project, folded from its history."""
    result: dict[tuple[int, str], dict[str, Any]] = {}
    history = queries.history_for_rebuild(project)
    for (test, space), rows in groupby(history, key=lambda row: (row[0], row[1])):
        acc: dict[str, Any] | None = None
        for started, outcome in _runs(rows):
            values = fold.stats_row(test, space, outcome, started)
            acc = fold.combine(acc, dict(zip(fold.COLUMNS, values, strict=True)))
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
                (EntityStatistics.project == project)
                & (EntityStatistics.test == test)
                & (EntityStatistics.space == space)
            ).execute()
            if (test, space) in fresh:
                EntityStatistics.insert(
                    project=project, test=test, space=space, **fresh[(test, space)]
                ).execute()
    return changes
