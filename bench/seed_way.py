"""The seed's way of recording test runs, reimplemented from its description as a baseline.

Source: ../shared/seed/local-test-tracking.md ("Local Test Execution Tracking"). What it says,
and how each point is rendered here:

- each result is an ``ExecutionHistory(execution_id="local-YYYYMMDD-HHMMSS", entity_id=<node
  id>, entity_type="test", timestamp=datetime.now(), status="PASSED"|..., duration, space=
  "local", metadata={"source": "run_local_tests.py", "pytest_args": ...})`` stored in an
  ``execution_history`` table of ``.anvil/history.db``: one INSERT and one commit per result,
  on a plain ``sqlite3.connect(path, timeout=30)`` with SQLite's defaults (rollback journal,
  ``synchronous=FULL``, no WAL);
- "After each run, statistics are automatically updated" by the StatisticsCalculator:
  ``stats = calc.calculate_all_stats(); [db.update_entity_statistics(s) for s in stats]``:
  a full recompute over all history (one ``SELECT ... GROUP BY entity`` over every row),
  then one upsert per entity, each committed as the database's other writes are;
- concurrent runs share the file; its "Troubleshooting" lists "Database locked".

Assumptions (the description does not say): indexes on ``entity_id`` and ``execution_id``
(a history read per test and per run needs them); the statistics are computed in SQL, not in
Python (the cheaper of the two); a run whose write fails ("database is locked") stops there,
as an uncaught exception ends the seed's script: the rows committed before stay, the
statistics are not updated.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS execution_history (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        execution_id TEXT NOT NULL,
        entity_id TEXT NOT NULL,
        entity_type TEXT NOT NULL,
        timestamp TEXT NOT NULL,
        status TEXT NOT NULL,
        duration REAL,
        space TEXT NOT NULL DEFAULT 'local',
        metadata TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS idx_history_entity ON execution_history (entity_id)",
    "CREATE INDEX IF NOT EXISTS idx_history_execution ON execution_history (execution_id)",
    """CREATE TABLE IF NOT EXISTS entity_statistics (
        entity_id TEXT NOT NULL,
        entity_type TEXT NOT NULL,
        total_runs INTEGER NOT NULL,
        passed INTEGER NOT NULL,
        failed INTEGER NOT NULL,
        skipped INTEGER NOT NULL,
        failure_rate REAL NOT NULL,
        avg_duration REAL,
        last_run TEXT,
        last_failure TEXT,
        PRIMARY KEY (entity_id, entity_type)
    )""",
)

INSERT = (
    "INSERT INTO execution_history (execution_id, entity_id, entity_type, timestamp, status, "
    "duration, space, metadata) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
# StatisticsCalculator.calculate_all_stats(): every row of the history, grouped per entity.
RECOMPUTE = """
    SELECT entity_id, entity_type, COUNT(*),
           SUM(status = 'PASSED'), SUM(status IN ('FAILED', 'ERROR')), SUM(status = 'SKIPPED'),
           AVG(duration), MAX(timestamp),
           MAX(CASE WHEN status IN ('FAILED', 'ERROR') THEN timestamp END)
    FROM execution_history
    GROUP BY entity_id, entity_type
"""
UPSERT = """
    INSERT INTO entity_statistics (entity_id, entity_type, total_runs, passed, failed, skipped,
                                   failure_rate, avg_duration, last_run, last_failure)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (entity_id, entity_type) DO UPDATE SET
        total_runs = excluded.total_runs, passed = excluded.passed, failed = excluded.failed,
        skipped = excluded.skipped, failure_rate = excluded.failure_rate,
        avg_duration = excluded.avg_duration, last_run = excluded.last_run,
        last_failure = excluded.last_failure
"""
SOURCE = "run_local_tests.py"


@dataclass(slots=True)
class Phases:
    """Where one recorded run spent its time."""

    load: float = 0.0  # read + json.load
    inserts: float = 0.0  # one INSERT + commit per result
    recompute: float = 0.0  # SELECT ... GROUP BY over all history
    upserts: float = 0.0  # one upsert + commit per entity
    rows: int = 0
    entities: int = 0

    @property
    def total(self) -> float:
        return self.load + self.inserts + self.recompute + self.upserts


@dataclass(slots=True)
class Outcome:
    """What became of one run recorded the seed's way."""

    execution_id: str
    expected: int
    stored: int = 0
    errors: list[str] = field(default_factory=list)
    stats_updated: bool = False
    phases: Phases = field(default_factory=Phases)


class SeedDatabase:
    """The seed's ExecutionDatabase: a plain sqlite3 connection, a commit per write."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.con = sqlite3.connect(path, timeout=30)
        for statement in SCHEMA:
            self.con.execute(statement)
        self.con.commit()

    def insert_execution(self, row: Sequence[Any]) -> None:
        self.con.execute(INSERT, row)
        self.con.commit()

    def calculate_all_stats(self) -> list[tuple[Any, ...]]:
        stats = []
        for entity, kind, total, passed, failed, skipped, avg, last, last_fail in self.con.execute(
            RECOMPUTE
        ):
            rate = failed / total if total else 0.0
            stats.append((entity, kind, total, passed, failed, skipped, rate, avg, last, last_fail))
        return stats

    def update_entity_statistics(self, stats: Sequence[Any]) -> None:
        self.con.execute(UPSERT, stats)
        self.con.commit()

    def close(self) -> None:
        self.con.close()


def status_of(outcome: str) -> str:
    """pytest-json-report's outcome as the seed's status."""
    return outcome.upper()


def duration_of(test: dict[str, Any]) -> float:
    return sum(
        test[phase].get("duration", 0.0) for phase in ("setup", "call", "teardown") if phase in test
    )


def execution_id(at: float | None = None) -> str:
    """`local-YYYYMMDD-HHMMSS`: the seed names a run by the second it was recorded."""
    moment = datetime.now() if at is None else datetime.fromtimestamp(at)
    return "local-" + moment.strftime("%Y%m%d-%H%M%S")


def history_rows(
    report: dict[str, Any], run_id: str, at: float | None = None, pytest_args: str = ""
) -> Iterator[tuple[Any, ...]]:
    """The execution_history rows of one report, as the seed writes them."""
    metadata = json.dumps({"source": SOURCE, "pytest_args": pytest_args})
    for test in report.get("tests", ()):
        stamp = (datetime.now() if at is None else datetime.fromtimestamp(at)).isoformat()
        yield (run_id, test["nodeid"], "test", stamp, status_of(test["outcome"]),
               duration_of(test), "local", metadata)  # fmt: skip


def record_run(db: SeedDatabase, report_path: Path, pytest_args: str = "") -> Outcome:
    """One `run_local_tests.py` after pytest: store every result, then update statistics.

    A sqlite3 error ends the run as an uncaught exception ends the seed's script: what was
    committed stays, the rest of the run and the statistics update are lost.
    """
    phases = Phases()
    start = time.perf_counter()
    with report_path.open() as handle:
        report = json.load(handle)
    phases.load = time.perf_counter() - start
    run_id = execution_id()
    outcome = Outcome(run_id, len(report.get("tests", ())), phases=phases)
    try:
        start = time.perf_counter()
        for row in history_rows(report, run_id, pytest_args=pytest_args):
            db.insert_execution(row)
            outcome.stored += 1
        phases.inserts = time.perf_counter() - start
        start = time.perf_counter()
        stats = db.calculate_all_stats()
        phases.recompute = time.perf_counter() - start
        start = time.perf_counter()
        for entity in stats:
            db.update_entity_statistics(entity)
        phases.upserts = time.perf_counter() - start
        phases.rows, phases.entities = outcome.stored, len(stats)
        outcome.stats_updated = True
    except sqlite3.Error as exc:
        outcome.errors.append(str(exc))
        with contextlib.suppress(sqlite3.Error):
            db.con.rollback()
    return outcome


def preload(db: SeedDatabase, reports: Iterable[tuple[dict[str, Any], float]]) -> int:
    """Earlier runs, stored in bulk (setup, not timed): the rows record_run would have
    written for each (report, time), the run named by that time, in one transaction.
    Returns the rows stored; `preload_statistics` then brings the statistics up to date."""
    rows = 0
    with db.con:
        for report, at in reports:
            batch = list(history_rows(report, execution_id(at), at))
            db.con.executemany(INSERT, batch)
            rows += len(batch)
    return rows


def preload_statistics(db: SeedDatabase) -> None:
    """The statistics after the preloaded runs: one recompute, upserted in one transaction."""
    with db.con:
        db.con.executemany(UPSERT, db.calculate_all_stats())
