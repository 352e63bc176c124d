"""When a result started, as `execution_history.start_offset` keeps it: whole microseconds after
its run's `started_at` (NULL: the report told none). An offset takes 3 bytes in a SQLite row for
a session of up to 8 s, 4 up to 35 minutes, 6 beyond (SQLite stores a REAL without a fraction
as an integer), where an epoch float takes 8; microseconds keep every start apart, so a run's
results sort in the order they started.

Before schema step 10 (`start offsets`) a start went into `timestamp` as epoch seconds; such
rows keep it there, and an owner of that version still running beside this one on a shared
database goes on writing it so: both are read."""

from __future__ import annotations

from typing import Any

from peewee import Database, fn

from anvild.store.models import Execution, ExecutionHistory

_PER_SECOND = 1_000_000


def offset(started: float, run_start: float) -> int:
    """The stored form of a start (epoch seconds) in a run that started at run_start."""
    return round((started - run_start) * _PER_SECOND)


def started_column(told_only: bool = False) -> Any:
    """A query's column of each result's start in epoch seconds; where the report told none,
    its run's start (told_only: None). The query joins Execution."""
    told = fn.COALESCE(
        Execution.started_at + ExecutionHistory.start_offset / float(_PER_SECOND),
        ExecutionHistory.timestamp,
    )
    return told if told_only else fn.COALESCE(told, Execution.started_at)


def start_offsets(db: Database) -> None:
    """Schema step 10, `start offsets`: the column of the starts as offsets."""
    if "start_offset" not in {column.name for column in db.get_columns("execution_history")}:
        db.execute_sql('ALTER TABLE "execution_history" ADD COLUMN "start_offset" DOUBLE PRECISION')
