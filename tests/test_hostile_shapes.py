"""Report shapes that used to take quadratic time, through the real `anvild ingest` into a real
SQLite file: each is stored as what it means, or refused in one line. (How long they take is
measured in bench/fig_hostile.py, figure k, never here.)
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from anvild.limits import MESSAGE_LIMIT, NAME_LIMIT
from tests.conftest import anvild

COPIES = 40_000
MB = 1024 * 1024


def ingest(tmp_path: Path, report: Path) -> tuple[int, str, str]:
    proc = anvild("--project", str(tmp_path), "--db", str(tmp_path / "h.db"), "ingest", str(report))
    return proc.returncode, proc.stdout, proc.stderr


def history(tmp_path: Path) -> list[tuple[str, int, str, str | None]]:
    db = tmp_path / "h.db"
    if not db.exists():
        return []
    with sqlite3.connect(db) as conn:
        return conn.execute(
            'SELECT t."entity_id", h."attempt", h."status", h."message" FROM "execution_history" h'
            ' JOIN "test" t ON t."id" = h."test_id" ORDER BY t."entity_id", h."attempt"'
        ).fetchall()


def collector(outcome: str, longrepr: str = "E   ImportError: no module named x") -> dict:
    return {"nodeid": "tests/test_x.py", "outcome": outcome, "longrepr": longrepr}


def test_one_collector_listed_40000_times_in_a_json_report_is_one_error(tmp_path: Path) -> None:
    doc = {
        "created": 1_700_000_000.0,
        "exitcode": 2,
        "summary": {"total": 0},
        "tests": [],
        "collectors": [
            collector("skipped", "('tests/test_x.py', 1, 'Skipped: no x')"),
            *[collector("failed")] * COPIES,
            collector("failed", "E   a later, different failure"),
        ],
    }
    report = tmp_path / "report.json"
    report.write_text(json.dumps(doc))
    code, stdout, stderr = ingest(tmp_path, report)
    assert code == 0, stderr
    assert "1 test, 1 error" in stdout
    # the failure wins over the skip listed first; the first failure is the one kept
    assert history(tmp_path) == [
        ("tests/test_x.py", 0, "ERROR", "ImportError: no module named x")
    ]


def test_one_collector_reported_40000_times_in_a_reportlog_is_one_error(tmp_path: Path) -> None:
    lines = [
        {"$report_type": "SessionStart", "pytest_version": "8.3.0"},
        {"$report_type": "CollectReport", **collector("skipped", "")},
        *[{"$report_type": "CollectReport", **collector("failed")}] * COPIES,
        {"$report_type": "SessionFinish", "exitstatus": 2},
    ]
    report = tmp_path / "reportlog.jsonl"
    report.write_text("".join(json.dumps(line) + "\n" for line in lines))
    code, stdout, stderr = ingest(tmp_path, report)
    assert code == 0, stderr
    assert "1 test, 1 error" in stdout
    assert history(tmp_path) == [
        ("tests/test_x.py", 0, "ERROR", "ImportError: no module named x")
    ]


def junit(path: Path, *names: bytes) -> Path:
    cases = b"".join(b'<testcase classname="c" name="' + name + b'"/>' for name in names)
    path.write_bytes(b"<testsuite>" + cases + b"</testsuite>")
    return path


def test_a_junit_testcase_name_of_50_mb_is_refused_in_one_line(tmp_path: Path) -> None:
    report = junit(tmp_path / "junit.xml", b"n" * (50 * MB))
    code, stdout, stderr = ingest(tmp_path, report)
    assert code == 1 and stdout == ""
    assert stderr == f"anvild: error: XML with a tag or comment over 8 MB is refused ({report})\n"
    assert history(tmp_path) == []


def test_junit_testcase_names_of_5_mb_are_stored_as_two_tests(tmp_path: Path) -> None:
    """Names long as no real test has: kept by their start and a hash of the whole, so two
    names differing only at the end stay two tests."""
    report = junit(tmp_path / "junit.xml", b"n" * (5 * MB) + b"1", b"n" * (5 * MB) + b"2")
    code, stdout, stderr = ingest(tmp_path, report)
    assert code == 0, stderr
    assert "2 tests, 2 passed" in stdout
    rows = history(tmp_path)
    assert len(rows) == 2 and rows[0][0] != rows[1][0]
    assert all(len(name) <= NAME_LIMIT and name.startswith("c::nnnn") for name, *_ in rows)


def test_one_failing_junit_testcase_written_40000_times_is_one_failure(tmp_path: Path) -> None:
    """Its messages are joined up to what a result keeps (2 KB), the first ones first."""
    case = b'<testcase classname="c" name="t"><failure message="boom %d">E   trace %d</failure>'
    report = tmp_path / "junit.xml"
    report.write_bytes(
        b"<testsuite>"
        + b"".join(case % (n, n) + b"</testcase>" for n in range(COPIES))
        + b"</testsuite>"
    )
    code, stdout, stderr = ingest(tmp_path, report)
    assert code == 0, stderr
    assert "1 test, 1 failed" in stdout
    ((name, attempt, status, message),) = history(tmp_path)
    assert (name, attempt, status) == ("c::t", 0, "FAILED")
    assert message is not None and message.startswith("boom 0\nboom 1\nboom 2\n")
    assert len(message) == MESSAGE_LIMIT
