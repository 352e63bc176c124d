"""When a result started, as `execution_history.timestamp` keeps it: whole microseconds after its
run's `started_at` (NULL: at it). An offset takes 3 or 4 bytes in a SQLite row (it stores a REAL
without a fraction as an integer), an epoch float 8; microseconds keep every start apart, so a
run's results sort in the order they started."""

from __future__ import annotations

from typing import Any

from peewee import Database, fn

from anvild.store.models import Execution, ExecutionHistory

_PER_SECOND = 1_000_000


def offset(started: float | None, run_start: float) -> int | None:
    """The stored form of a start (epoch seconds) in a run that started at run_start."""
    return None if started is None else round((started - run_start) * _PER_SECOND)


def started(run_start: float | None, stored: float | None) -> float | None:
    """The epoch seconds of a stored start (None where the report told none)."""
    return None if stored is None or run_start is None else run_start + stored / _PER_SECOND


def started_column() -> Any:
    """A query's column of each result's start in epoch seconds (its run's start where the
    report told none); the query joins Execution."""
    return Execution.started_at + fn.COALESCE(ExecutionHistory.timestamp, 0) / float(_PER_SECOND)


def starts_as_offsets(db: Database) -> None:
    """Migration step "starts as offsets": the starts stored before it were epoch seconds."""
    db.execute_sql(
        'UPDATE "execution_history" SET "timestamp" = ROUND(("timestamp" - (SELECT e."started_at"'
        ' FROM "execution" AS e WHERE e."id" = "execution_history"."execution_id"))'
        f' * {_PER_SECOND}) WHERE "timestamp" IS NOT NULL'
    )
