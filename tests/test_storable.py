"""What one backend takes the other takes too: a report is stored the same on a real SQLite file
and on the real PostgreSQL server, or refused by both in one line.

PostgreSQL refuses a NUL in a text and, in a SMALLINT, more than 32,767 attempts of one test;
SQLite takes both. Both are made storable before either sees them (records.storable), and what
a database still refuses is a rejection of that report (permanent), never a traceback.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import anvild, pg_query

ATTEMPTS = 40_000
NUL_TEST = "tests/test_x.py::test_a\x00b"
STORED_TEST = "tests/test_x.py::test_a\ufffdb"
MANY = "tests/test_x.py::test_many"


def hostile_report(path: Path) -> Path:
    """A pytest-json-report with a NUL in a test id, its message and its traceback, and one
    test listed 40,000 times (each an attempt of it), the last a failure."""
    failing = {
        "nodeid": NUL_TEST,
        "outcome": "failed",
        "call": {
            "outcome": "failed",
            "duration": 0.5,
            "crash": {"message": "bad\x00message"},
            "longrepr": "trace\x00back",
        },
    }
    rerun = {"nodeid": MANY, "outcome": "rerun", "call": {"outcome": "failed", "duration": 0.1}}
    last = {"nodeid": MANY, "outcome": "failed", "call": {"outcome": "failed", "duration": 0.1}}
    doc = {
        "created": 1_700_000_000.0,
        "duration": 3.0,
        "exitcode": 1,
        "root": "/src\x00x",
        "summary": {"total": 2},
        "tests": [failing, *[rerun] * (ATTEMPTS - 1), last],
    }
    path.write_text(json.dumps(doc))
    return path


HISTORY = (
    'SELECT t."entity_id", t."key", t."file", h."attempt", h."status", h."message", '
    't."last_traceback" FROM "execution_history" h JOIN "test" t ON t."id" = h."test_id" '
    'ORDER BY t."id", h."attempt"'
)


def sqlite_rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchall()


def test_nul_and_40000_attempts_are_stored_the_same_on_sqlite_and_postgresql(
    tmp_path: Path, pg_url: str
) -> None:
    report = hostile_report(tmp_path / "report.json")
    db = tmp_path / "history.db"
    for url in (str(db), pg_url):
        proc = anvild("--project", str(tmp_path), "--db", url, "ingest", str(report))
        assert proc.returncode == 0, proc.stderr
        assert proc.stderr == ""
        assert "2 tests, 2 failed, 39999 rerun" in proc.stdout
    on_sqlite, on_postgres = sqlite_rows(db, HISTORY), pg_query(pg_url, HISTORY)
    assert on_sqlite == on_postgres
    assert len(on_sqlite) == ATTEMPTS + 1
    first = on_sqlite[0]
    assert first[0] == STORED_TEST and first[5] == "bad\ufffdmessage"
    assert first[6] == "trace\ufffdback"
    attempts = [row[3] for row in on_sqlite if row[0] == MANY]
    assert attempts == list(range(ATTEMPTS))
    # read back through anvild: the same answers from both
    shown = [
        json.loads(
            anvild("--project", str(tmp_path), "--db", url, "stats", "show", "--json").stdout
        )
        for url in (str(db), pg_url)
    ]
    assert shown[0] == shown[1]
    assert {row["entity_id"] for row in shown[0]} == {STORED_TEST, MANY}
    runs = [
        json.loads(anvild("--project", str(tmp_path), "--db", url, "history", "--json").stdout)
        for url in (str(db), pg_url)
    ]
    assert [run["counts"] for run in runs[0]] == [run["counts"] for run in runs[1]]


def one_run(project: Path, url: str) -> None:
    """A history at url with one ordinary run in it: its tables made."""
    report = project / "first.json"
    doc = {"created": 1_600_000_000.0, "exitcode": 0, "summary": {"total": 1},
           "tests": [{"nodeid": "tests/test_y.py::test_ok", "outcome": "passed"}]}  # fmt: skip
    report.write_text(json.dumps(doc))
    proc = anvild("--project", str(project), "--db", url, "ingest", str(report))
    assert proc.returncode == 0, proc.stderr


def refusing_sqlite(db: Path, project: Path) -> None:
    """An SQLite history whose database refuses every new test (a trigger aborts the insert)."""
    one_run(project, str(db))
    with sqlite3.connect(db) as conn:
        conn.execute(
            'CREATE TRIGGER "refuse" BEFORE INSERT ON "test" '
            "BEGIN SELECT RAISE(ABORT, 'this database refuses new tests'); END"
        )


def assert_refused_in_one_line(proc: Any, report: Path) -> None:
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("anvild: error: the database refuses it, it can never be stored: ")
    assert lines[0].endswith(f"({report})")
    assert "Traceback" not in proc.stderr


def test_a_report_the_sqlite_database_refuses_is_one_line_and_nothing_is_stored(
    tmp_path: Path,
) -> None:
    report = hostile_report(tmp_path / "report.json")
    db = tmp_path / "history.db"
    refusing_sqlite(db, tmp_path)
    proc = anvild("--project", str(tmp_path), "--db", str(db), "ingest", str(report))
    assert_refused_in_one_line(proc, report)
    assert "this database refuses new tests" in proc.stderr
    assert sqlite_rows(db, 'SELECT count(*) FROM "execution"') == [(1,)]
    assert sqlite_rows(db, 'SELECT count(*) FROM "execution_history"') == [(1,)]


def test_a_report_postgresql_refuses_is_one_line_and_nothing_is_stored(
    tmp_path: Path, pg_url: str
) -> None:
    import psycopg2

    report = hostile_report(tmp_path / "report.json")
    one_run(tmp_path, pg_url)
    with psycopg2.connect(pg_url) as conn, conn.cursor() as cur:
        cur.execute(
            'ALTER TABLE "test" ADD CONSTRAINT "short" CHECK ("entity_id" NOT LIKE \'%test_x%\')'
        )
    conn.close()
    proc = anvild("--project", str(tmp_path), "--db", pg_url, "ingest", str(report))
    assert_refused_in_one_line(proc, report)
    assert 'violates check constraint "short"' in proc.stderr
    assert pg_query(pg_url, 'SELECT count(*) FROM "execution"') == [(1,)]


def test_an_unreachable_server_is_one_line_and_no_refusal(tmp_path: Path) -> None:
    """The server away is transient: one line, nothing said about the report itself."""
    report = hostile_report(tmp_path / "report.json")
    url = "postgresql://postgres@127.0.0.1:9/none"  # the discard port: nothing listens
    pytest.importorskip("psycopg2")
    proc = anvild("--project", str(tmp_path), "--db", url, "ingest", str(report))
    assert proc.returncode == 1
    assert proc.stderr.startswith("anvild: error: cannot connect: ")
    assert len(proc.stderr.splitlines()) == 1 and "refuses" not in proc.stderr
