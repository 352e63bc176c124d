"""The quarantine end to end: `anvild quarantine` commands, and real pytest sessions whose
quarantined failures do not fail them (still run, recorded FAILED, counted in the summary)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from anvild import api, quarantine
from anvild_pytest import quarantine as plugin_side
from tests.conftest import alive, anvild, wait_for, write_project

FAILS = "tests/test_q.py::test_fails"
ALSO_FAILS = "tests/test_q.py::test_also_fails"
PROJECT = {
    "tests/__init__.py": "",
    "tests/test_q.py": """
        def test_passes():
            pass

        def test_fails():
            assert False, "a known flake"

        def test_also_fails():
            assert False, "a real failure"
    """,
}


def pytest_run(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """A real pytest session with anvild's plugin on, as a user runs it."""
    env = {k: v for k, v in os.environ.items() if k != "ANVILD_DISABLE"}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:randomly", "-p", "no:cacheprovider", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = write_project(tmp_path / "proj", PROJECT)
    (root / ".anvil").mkdir()  # the project anvild's commands find
    return root


def q(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    proc = anvild("quarantine", *args, cwd=root)
    assert proc.returncode == 0, proc.stderr
    return proc


def test_a_quarantined_failure_does_not_fail_the_session(project: Path) -> None:
    q(project, "add", FAILS, "--reason", "network flake", "--until", "2999-12-31")
    proc = anvild("pytest", "tests/test_q.py", f"--deselect={ALSO_FAILS}", cwd=project)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 failed, 1 passed" in proc.stdout  # pytest's own summary stays as it was
    assert "anvild: 1 quarantined test failed (not failing the session; the session passes)" in (
        proc.stdout
    )
    # recorded as it was: FAILED, marked quarantined in its run
    history = json.loads(anvild("history", FAILS, "--json", cwd=project).stdout)
    assert [row["status"] for row in history] == ["FAILED"]
    run = json.loads(anvild("show", history[0]["execution_id"], "--json", cwd=project).stdout)
    assert [(f["entity_id"], f["quarantined"]) for f in run["failures"]] == [(FAILS, True)]


def test_any_other_failure_still_fails_the_session(project: Path) -> None:
    q(project, "add", FAILS)
    proc = pytest_run(project, "tests/test_q.py")
    assert proc.returncode == 1, proc.stdout
    assert "anvild: 1 quarantined test failed (not failing the session)" in proc.stdout


def test_an_expired_entry_is_ignored_and_listed_as_expired(project: Path) -> None:
    q(project, "add", FAILS, "--until", "2000-01-01")
    proc = pytest_run(project, "tests/test_q.py", f"--deselect={ALSO_FAILS}")
    assert proc.returncode == 1 and "quarantined" not in proc.stdout
    (row,) = json.loads(q(project, "list", "--json").stdout)
    assert (row["entity_id"], row["until"], row["expired"]) == (FAILS, "2000-01-01", True)
    assert FAILS not in q(project, "list", "--format", "file").stdout


def test_expiry_holds_through_its_last_day_by_a_passed_clock(project: Path) -> None:
    entry = quarantine.Entry(FAILS, until="2026-03-31")
    assert not entry.expired(date(2026, 3, 31)) and entry.expired(date(2026, 4, 1))
    assert not quarantine.Entry(FAILS).expired(date(9999, 1, 1))
    target = api.Target(project.resolve(), str(project.resolve() / ".anvil" / "history.db"))
    last_evening = datetime(2026, 3, 31, 23, 30, tzinfo=UTC).timestamp()
    next_morning = datetime(2026, 4, 1, 0, 30, tzinfo=UTC).timestamp()
    api.quarantine_add(target, [FAILS], "flaky", "2026-03-31", clock=lambda: last_evening)
    api.quarantine_add(target, [ALSO_FAILS], None, None, clock=lambda: last_evening)
    rows = api.quarantine_list(target, clock=lambda: last_evening)
    assert [(r["entity_id"], r["expired"]) for r in rows] == [(ALSO_FAILS, False), (FAILS, False)]
    rows = api.quarantine_list(target, clock=lambda: next_morning)
    assert [(r["entity_id"], r["expired"]) for r in rows] == [(ALSO_FAILS, False), (FAILS, True)]
    assert rows[1]["added_at"].startswith("2026-03-31T23:30")
    assert FAILS in api.quarantine_file(target, clock=lambda: last_evening)
    assert FAILS not in api.quarantine_file(target, clock=lambda: next_morning)


def test_a_session_whose_rootdir_is_below_the_project_honours_its_quarantine(
    project: Path,
) -> None:
    """No pytest config: `cd tests && pytest` makes tests/ pytest's rootdir and names the test
    `test_q.py::test_fails`; the quarantine names it as the project's history does."""
    q(project, "add", FAILS)
    q(project, "add", ALSO_FAILS)
    proc = pytest_run(project / "tests", "-rf")
    assert "FAILED test_q.py::test_fails" in proc.stdout, proc.stdout  # pytest's own name
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "anvild: 2 quarantined tests failed" in proc.stdout


def test_the_committed_file_form_works_without_a_database(project: Path, tmp_path: Path) -> None:
    q(project, "add", FAILS, "--reason", "flaky  on\tCI", "--until", "2999-12-31")
    q(project, "add", ALSO_FAILS)
    text = q(project, "list", "--format", "file").stdout
    ci = write_project(tmp_path / "ci-checkout", PROJECT)  # no .anvil/: a fresh CI checkout
    (ci / ".anvild-quarantine").write_text(text)
    proc = pytest_run(ci, "tests/test_q.py")
    assert proc.returncode == 0, proc.stdout
    assert "anvild: 2 quarantined tests failed" in proc.stdout
    # anvild and the plugin read the file alike
    parsed = quarantine.parse_file(text)
    assert [(e.entity_id, e.until) for e in parsed] == plugin_side.parse_file(text)
    assert parsed[1].reason == "flaky on CI"


def test_works_with_xdist_and_reruns(project: Path) -> None:
    q(project, "add", FAILS, ALSO_FAILS)
    proc = pytest_run(project, "tests/test_q.py", "-n", "2", "--reruns", "1")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 failed, 1 passed, 2 rerun" in proc.stdout
    assert "anvild: 2 quarantined tests failed" in proc.stdout


def test_remove_takes_a_test_out(project: Path) -> None:
    q(project, "add", FAILS, ALSO_FAILS)
    assert "removed 1 test from quarantine" in q(project, "remove", FAILS).stdout
    assert [r["entity_id"] for r in json.loads(q(project, "list", "--json").stdout)] == [ALSO_FAILS]
    mirror = json.loads((project / ".anvil" / "quarantine.json").read_text())
    assert [e["entity_id"] for e in mirror["entries"]] == [ALSO_FAILS]


def test_an_unreadable_quarantine_is_one_warning_never_a_failed_session(project: Path) -> None:
    (project / ".anvil" / "quarantine.json").write_text("{not json")
    proc = pytest_run(project, "tests/test_q.py", f"--deselect={FAILS}", f"--deselect={ALSO_FAILS}")
    assert proc.returncode == 0, proc.stdout
    warnings = [line for line in proc.stdout.splitlines() if "anvild: warning" in line]
    assert len(warnings) == 1 and "quarantine not read (quarantine.json" in warnings[0]


def test_a_postgresql_quarantine_reaches_the_plugin_through_its_mirror(
    project: Path, pg_url: str
) -> None:
    proc = anvild("--db", pg_url, "quarantine", "add", FAILS, cwd=project)
    assert proc.returncode == 0, proc.stderr
    assert not (project / ".anvil" / "history.db").exists()
    listed = json.loads(anvild("--db", pg_url, "quarantine", "list", "--json", cwd=project).stdout)
    assert [row["entity_id"] for row in listed] == [FAILS]
    proc = pytest_run(project, "tests/test_q.py", f"--deselect={ALSO_FAILS}")
    assert proc.returncode == 0 and "1 quarantined test failed" in proc.stdout


def test_sync_adds_what_stats_flaky_finds(project: Path) -> None:
    # test_flip fails on every other run (a counter beside it), test_fails on every run
    (project / "tests" / "test_flip.py").write_text(
        "from pathlib import Path\n"
        "def test_flip():\n"
        "    count = Path(__file__).with_name('count.txt')\n"
        "    n = int(count.read_text()) if count.exists() else 0\n"
        "    count.write_text(str(n + 1))\n"
        "    assert n % 2 == 0\n"
    )
    for _ in range(6):
        anvild("pytest", "tests", cwd=project)
    flip = "tests/test_flip.py::test_flip"
    dry = q(project, "sync", "--dry-run").stdout
    assert f"would add {flip}" in dry and FAILS not in dry  # broken, not flaky
    assert json.loads(q(project, "list", "--json").stdout) == []
    assert f"added {flip}" in q(project, "sync").stdout
    (row,) = json.loads(q(project, "list", "--json").stdout)
    assert (row["entity_id"], row["source"], row["expired"]) == (flip, "sync", False)
    assert "0 flaky tests added" in q(project, "sync").stdout


def test_bad_until_is_one_error_line(project: Path) -> None:
    proc = anvild("quarantine", "add", FAILS, "--until", "next week", cwd=project)
    assert proc.returncode == 2
    assert "--until expects a date like 2026-12-31, got 'next week'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_with_the_daemon_owning_the_database_it_changes_the_quarantine(
    project: Path, daemon: int
) -> None:
    """The daemon owns the database: add, list, sync and remove go through it, print what they
    print without it, and the next session obeys the change."""
    stored = anvild("pytest", "tests/test_q.py", cwd=project)  # through the daemon: it owns
    assert stored.returncode == 1, stored.stderr
    added = q(project, "add", FAILS, "--reason", "flake")
    assert added.stdout == "quarantined 1 test; 1 in quarantine\n"
    listed = json.loads(q(project, "list", "--json").stdout)
    assert [(r["entity_id"], r["reason"]) for r in listed] == [(FAILS, "flake")]
    mirror = json.loads((project / ".anvil" / "quarantine.json").read_text())
    assert FAILS in json.dumps(mirror)
    session = pytest_run(project, "tests/test_q.py", "--deselect", ALSO_FAILS)
    assert session.returncode == 0, session.stdout + session.stderr
    assert "1 quarantined test failed" in session.stdout
    removed = q(project, "remove", FAILS)
    assert json.loads(q(project, "list", "--json").stdout) == []
    anvild("stop")
    wait_for(lambda: not alive(daemon), 30, "the daemon to exit")
    # the same command without a daemon prints the same line
    again = q(project, "add", FAILS, "--reason", "flake")
    assert again.stdout == added.stdout
    assert q(project, "remove", FAILS).stdout == removed.stdout
    assert anvild("start").returncode == 0  # the fixture stops it again


def test_db_copy_carries_the_quarantine(project: Path, pg_url: str) -> None:
    q(project, "add", FAILS, "--reason", "flake", "--until", "2999-12-31")
    anvild("pytest", "tests/test_q.py", cwd=project)
    source = str(project / ".anvil" / "history.db")
    proc = anvild("db", "copy", "--from", source, "--to", pg_url, cwd=project)
    assert proc.returncode == 0, proc.stderr
    listed = json.loads(anvild("--db", pg_url, "quarantine", "list", "--json", cwd=project).stdout)
    assert [(r["entity_id"], r["reason"], r["until"]) for r in listed] == [
        (FAILS, "flake", "2999-12-31")
    ]
