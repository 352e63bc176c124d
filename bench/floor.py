"""The floor of an SQLite ingest: a throwaway loader that writes the same rows into the same
schema (anvild's tables and indexes, anvild's pragmas) with nothing but msgspec and one sorted
`executemany` per table, so anvild's in-process ingest has a ratio to what SQLite and Python
can do at all.

It knows only what bench/generate.py writes (no odd types, no reruns, no collectors, no
provenance, no clipping, no incremental statistics: a fresh database's rows are computed
directly), so it is a floor, not an ingest.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import msgspec


class _Crash(msgspec.Struct):
    message: str | None = None


class _Phase(msgspec.Struct):
    duration: float | None = None
    outcome: str | None = None
    crash: _Crash | None = None
    longrepr: str | None = None


class _Test(msgspec.Struct, array_like=False):
    nodeid: str
    outcome: str
    setup: _Phase | None = None
    call: _Phase | None = None
    teardown: _Phase | None = None


class _Report(msgspec.Struct):
    created: float
    duration: float
    tests: list[_Test]


_DECODER = msgspec.json.Decoder(_Report)
_STATUS = {"passed": "PASSED", "failed": "FAILED", "error": "ERROR", "skipped": "SKIPPED",
           "xfailed": "XFAILED", "xpassed": "XPASSED"}  # fmt: skip


def _key(node_id: str) -> str:
    path, bracket, params = node_id.partition("[")
    head, _, rest = path.partition("::")
    module = head.removesuffix(".py").replace("/", ".")
    names = rest.split("::")
    return f"{module}.{'.'.join(names[:-1])}::{names[-1]}{bracket}{params}" if len(names) > 1 \
        else f"{module}::{rest}{bracket}{params}"  # fmt: skip


def load(db_path: Path, report: Path) -> int:
    """Store report into the (anvild-created, empty) database at db_path; the rows written."""
    import sqlite3

    data = report.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    doc = _DECODER.decode(data)
    at = doc.created - doc.duration
    tests = []
    for test in doc.tests:
        node = test.nodeid
        status = _STATUS[test.outcome]
        total, message = 0.0, None
        for phase in (test.setup, test.call, test.teardown):
            if phase is not None:
                total += phase.duration or 0.0
                if message is None and phase.outcome not in (None, "passed"):
                    message = phase.crash.message if phase.crash is not None else None
        tests.append((_key(node), node, status, total, message))
    tests.sort()
    con = sqlite3.connect(db_path, isolation_level=None)
    # anvild's pragmas (anvild/store/backend.py): foreign keys declared, not checked
    for pragma in ("journal_mode=wal", "synchronous=normal", "cache_size=-65536",
                   "temp_store=memory", "foreign_keys=0"):  # fmt: skip
        con.execute(f"PRAGMA {pragma}")
    con.execute("BEGIN IMMEDIATE")
    project = con.execute(
        "INSERT INTO project (name, root) VALUES ('floor', ?) RETURNING id", (str(db_path),)
    ).fetchone()[0]
    execution = con.execute(
        "INSERT INTO execution (execution_id, project_id, space, source, started_at, "
        "report_sha256, metadata, state, passed, failed, errors, skipped, xfailed, xpassed, rerun)"
        " VALUES (?, ?, 'local', 'pytest-json-report', ?, ?, '{}', 'complete', 0, 0, 0, 0, 0, 0, 0)"
        " RETURNING id",
        (f"floor-{time.time()}", project, at, digest),
    ).fetchone()[0]
    con.executemany(
        "INSERT INTO test (project_id, entity_id, entity_type, file, key) VALUES (?, ?, 'test', ?, ?)",
        [(project, node, node.partition("::")[0], key) for key, node, _, _, _ in tests],
    )
    first = con.execute("SELECT MAX(id) FROM test").fetchone()[0] - len(tests) + 1
    con.executemany(
        "INSERT INTO execution_history (project_id, execution_id, test_id, attempt, timestamp, "
        "status, duration, message) VALUES (?, ?, ?, 0, NULL, ?, ?, ?)",
        [(project, execution, first + i, t[2], t[3], t[4]) for i, t in enumerate(tests)],
    )
    stats = []
    for i, (_, _, status, took, _) in enumerate(tests):
        passed = int(status in ("PASSED", "XPASSED"))
        failed, errors = int(status == "FAILED"), int(status == "ERROR")
        skipped = int(status in ("SKIPPED", "XFAILED"))
        ran = not skipped
        stats.append((project, first + i, passed, failed, skipped, errors, float(failed or errors),
                      took if ran else 0.0, int(ran), took if ran else None, at,
                      at if failed or errors else None, status,
                      None if skipped else ("pass" if passed else "fail")))  # fmt: skip
    con.executemany(
        "INSERT INTO entity_statistics (project_id, test_id, space, total_runs, passed, failed, "
        "skipped, errors, reruns, passed_on_retry, failure_rate, duration_total, duration_count, "
        "avg_duration, last_run, last_failure, last_status, last_outcome, flips) "
        "VALUES (?, ?, 'local', 1, ?, ?, ?, ?, 0, 0, ?, ?, ?, ?, ?, ?, ?, ?, 0)",
        stats,
    )
    con.execute("COMMIT")
    con.close()
    return len(tests)


def fresh_floor(report: Path, tmp: Path) -> float:
    """Time of the floor's load of report into a new database with anvild's schema."""
    from anvild.store.database import forget, open_database

    db = tmp / "floor.db"
    url = str(db)
    open_database(url).close()  # anvild's schema, made before the clock starts as anvild's is
    forget(url)
    start = time.perf_counter()
    load(db, report)
    return time.perf_counter() - start
