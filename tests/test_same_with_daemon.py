"""Commands behave the same with and without a running daemon, as users type them (issue 12).

Each test runs once with no daemon and once with one running (it then owns the databases and
the commands go to it over the control socket) and expects the same output and exit code.
The daemon watches no project here, so it stores nothing by itself.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import alive, anvild, status, wait_for, write_project

ID = re.compile(r"local-\d{8}-\d{6}(-\d+)?")


@pytest.fixture(params=["no daemon", "daemon"])
def mode(request: pytest.FixtureRequest) -> Iterator[str]:
    """Run the test without a daemon, then with one started by hand (watching nothing)."""
    if request.param == "no daemon":
        yield request.param
        return
    started = anvild("start")
    assert started.returncode == 0, started.stderr
    pid = status()["pid"]
    try:
        yield request.param
    finally:
        assert anvild("stop").returncode == 0
        wait_for(lambda: not alive(pid), 30, "the daemon to exit")


@pytest.fixture
def reports(tmp_path: Path, sample_reports: dict) -> Path:
    """A project holding the sample session's three reports."""
    root = tmp_path / "proj"
    root.mkdir()
    for kind in ("json", "junit", "reportlog"):
        shutil.copy(sample_reports[kind], root / sample_reports[kind].name)
    return root


def runs(db: Path) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT count(*) FROM execution").fetchone()[0]


def norm(text: str, root: Path) -> str:
    return ID.sub("ID", text.replace(str(root), "<P>"))


# --- 1, 9: a relative --db is the user's, before or after the command -----------------------


def test_a_relative_db_is_relative_to_where_the_user_is(mode: str, reports: Path) -> None:
    stored = anvild("--db", ".anvil/local-history.db", "ingest", "report.json", cwd=reports)
    assert stored.returncode == 0, stored.stderr
    assert norm(stored.stdout, reports).startswith("stored ID (local): 12 tests")
    assert runs(reports / ".anvil" / "local-history.db") == 1
    after = anvild("ingest", "--db", "sub.db", "junit.xml", cwd=reports)  # after the command
    assert after.returncode == 0 and runs(reports / "sub.db") == 1, after.stderr
    shown = anvild("--db", ".anvil/local-history.db", "history", "--json", cwd=reports)
    assert shown.returncode == 0 and len(json.loads(shown.stdout)) == 1
    report = anvild("report", "test-execution", "--db", "sub.db", "--format", "json", cwd=reports)
    assert report.returncode == 0, report.stderr


# --- 2: a database in a directory that does not exist ---------------------------------------


def test_a_database_in_a_missing_directory_is_one_line_and_nothing_made(
    mode: str, reports: Path, tmp_path: Path
) -> None:
    missing = tmp_path / "nonexistent" / "dir"
    proc = anvild("--db", str(missing / "x.db"), "ingest", "report.json", cwd=reports)
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr == f"anvild: error: no such directory for the database ({missing})\n"
    assert not missing.parent.exists()


# --- 3, 14: a directory with a bad file: every good one stored, a summary, exit 1 ------------


def test_a_directory_ingest_names_each_bad_file_and_stores_the_rest(
    mode: str, reports: Path
) -> None:
    batch = reports / "batch"
    batch.mkdir()
    for name in ("report.json", "junit.xml", "reportlog.jsonl"):
        shutil.copy(reports / name, batch / name)
    shutil.copy(reports / "junit.xml", batch / "junit-copy.xml")  # the same report again
    (batch / "empty.xml").write_text("")
    proc = anvild("ingest", "batch", cwd=reports)
    assert proc.returncode == 1
    # in pytest's summary words and order
    counts = "12 tests, 2 failed, 5 passed, 1 skipped, 1 xfailed, 1 xpassed, 2 errors"
    assert norm(proc.stdout, reports).splitlines() == [
        "stored ID (local): 12 tests, 2 failed, 6 passed, 1 skipped, 1 xfailed, 2 errors"
        " (<P>/batch/junit-copy.xml)",
        "already stored as ID: <P>/batch/junit.xml",
        f"stored ID (local): {counts} (<P>/batch/report.json)",
        f"stored ID (local): {counts} (<P>/batch/reportlog.jsonl)",
    ], proc.stdout
    assert norm(proc.stderr, reports).splitlines() == [
        "anvild: error: empty report file (<P>/batch/empty.xml)",
        "stored 3 runs, 1 already stored, 1 rejected",
    ]
    assert runs(reports / ".anvil" / "history.db") == 3
    empty = reports / "nothing"
    empty.mkdir()
    none = anvild("ingest", "nothing", cwd=reports)
    assert (none.returncode, none.stdout) == (1, "")
    assert none.stderr == f"anvild: error: no reports found ({empty})\n"


# --- 5: --execution-id with several reports --------------------------------------------------


def test_execution_id_with_several_reports_is_refused_before_storing(
    mode: str, reports: Path
) -> None:
    proc = anvild("ingest", "--execution-id", "mine", "junit.xml", "report.json", cwd=reports)
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr.startswith(
        "anvild: error: --execution-id names one run, and these paths hold 2 reports ("
    )
    assert runs(reports / ".anvil" / "history.db") == 0


# --- 6: anvild pytest exits with pytest's code; nothing to store is no error -----------------


@pytest.fixture
def suite(tmp_path: Path) -> Path:
    return write_project(
        tmp_path / "suite",
        {
            "tests/test_a.py": "def test_one():\n    pass\n",
            "tests/test_slow.py": (
                "import os, pathlib, time\n"
                "def test_waits():\n"
                "    pathlib.Path(os.environ['STARTED']).write_text('')\n"
                "    time.sleep(60)\n"
            ),
        },
    )


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["tests/test_missing.py"], 4),
        (["--co", "tests/test_a.py"], 0),
        (["-k", "nothing_matches", "tests/test_a.py"], 5),
        (["tests/test_a.py"], 0),
    ],
    ids=["missing file", "collect-only", "no tests", "one test"],
)
def test_anvild_pytest_exits_with_pytests_code(
    mode: str, suite: Path, args: list[str], code: int
) -> None:
    proc = anvild("pytest", "-q", "-p", "no:randomly", *args, cwd=suite)
    assert proc.returncode == code, proc.stdout + proc.stderr
    assert "anvild: error" not in proc.stderr, proc.stderr
    stored = [line for line in proc.stdout.splitlines() if line.startswith("stored ")]
    assert len(stored) == (1 if args == ["tests/test_a.py"] else 0), proc.stdout
    # a session that ran no test is no news, through the daemon too (the event says so)
    assert "skipped" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr


def test_anvild_pytest_takes_its_own_options_before_pytests(mode: str, suite: Path) -> None:
    proc = anvild("pytest", "--db", "mine.db", "-q", "tests/test_a.py", cwd=suite)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert runs(suite / "mine.db") == 1 and not (suite / ".anvil" / "history.db").exists()


def test_ctrl_c_shows_pytests_interrupt_summary_and_records_the_run(
    mode: str, suite: Path, tmp_path: Path
) -> None:
    started = tmp_path / "started"
    proc = subprocess.Popen(
        [sys.executable, "-m", "anvild", "pytest", "-p", "no:randomly", "tests/test_slow.py"],
        cwd=suite,
        env={**os.environ, "STARTED": str(started)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )
    try:
        wait_for(started.exists, 60, "the test to start")
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does: the whole foreground group
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 2, out + err
    assert "KeyboardInterrupt" in out and "anvild: aborted" not in err, out + err
    shown = anvild("history", "--json", cwd=suite)
    assert [run["state"] for run in json.loads(shown.stdout)] == ["interrupted"], shown.stderr


# --- 8: queries where no history exists ------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        ["stats", "show"],
        ["history"],
        ["report", "test-execution", "--format", "json"],
        ["stats", "rebuild"],
    ],
    ids=" ".join,
)
def test_a_query_without_history_says_where_it_looked(
    mode: str, tmp_path: Path, command: list[str]
) -> None:
    where = tmp_path / "nowhere"
    where.mkdir()
    proc = anvild(*command, cwd=where)
    assert (proc.returncode, proc.stdout) == (1, "")
    assert proc.stderr == (
        f"anvild: error: no history here: no database at {where / '.anvil' / 'history.db'}"
        f" ({where})\n"
    )
    assert not (where / ".anvil").exists()


# --- 10: usage errors are one line -----------------------------------------------------------


def test_a_usage_error_is_one_line_with_its_hint(mode: str, tmp_path: Path) -> None:
    proc = anvild("ingest", "--exection-id", "x", "a.json", cwd=tmp_path)
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr == (
        "anvild: error: No such option '--exection-id'. Did you mean '--execution-id'?"
        " (anvild ingest --help)\n"
    )


# --- 12: one database whatever its spelling ------------------------------------------------


def test_one_database_under_two_names_is_one_owner(mode: str, reports: Path) -> None:
    assert anvild("ingest", "report.json", cwd=reports).returncode == 0
    spelled = f"sqlite:///{reports / '.anvil' / 'history.db'}"
    started = time.monotonic()
    proc = anvild("--db", spelled, "ingest", "junit.xml", cwd=reports, timeout=20)
    assert proc.returncode == 0, proc.stderr
    (reports / "link").symlink_to(reports / ".anvil")
    again = anvild("--db", "link/history.db", "ingest", "reportlog.jsonl", cwd=reports)
    assert again.returncode == 0, again.stderr
    assert time.monotonic() - started < 10
    assert runs(reports / ".anvil" / "history.db") == 3
    assert not (reports / "sqlite:").exists()


# --- 13: a daemon lost under a command -----------------------------------------------------


@pytest.fixture
def dying_daemon(tmp_path: Path) -> Iterator[Path]:
    """A pidfile held and a control socket that answers one event, then closes: a daemon that
    died in the middle of its answer."""
    from anvild import config, control, lifecycle, protocol

    path = control.socket_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(4)

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn, conn.makefile("rwb") as stream:
                request = protocol.decode_request(stream.readline())
                if isinstance(request, protocol.Ingest):
                    stream.write(protocol.encode_reply(protocol.Event("first.json", "local-x")))
                stream.flush()

    thread = threading.Thread(target=serve)
    thread.start()
    with lifecycle.PidFile(config.pidfile_path()):
        yield path
    server.shutdown(socket.SHUT_RDWR)
    server.close()
    thread.join(timeout=10)
    path.unlink(missing_ok=True)


@pytest.fixture
def stored(reports: Path) -> Path:
    """The project with one run stored (before any daemon)."""
    assert anvild("ingest", "junit.xml", cwd=reports).returncode == 0
    return reports


@pytest.mark.parametrize("command", [["ingest", "report.json"], ["stats", "rebuild"]], ids=str)
def test_a_daemon_lost_under_a_command_is_one_error_line(
    stored: Path, dying_daemon: Path, command: list[str]
) -> None:
    reports = stored
    proc = anvild(*command, cwd=reports, timeout=30)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("anvild: error: ")]
    assert errors == [f"anvild: error: the daemon went away before it answered ({dying_daemon})"]
    assert "Traceback" not in proc.stderr


# --- 7: a broken config never takes the running daemon down ----------------------------------


def test_restart_and_sighup_with_a_broken_config_keep_the_running_daemon(
    daemon: int, project: Path
) -> None:
    from anvild.config import config_file, state_dir

    config = config_file()
    good = config.read_text()
    config.write_text("bogus = 1\n" + good)
    restarted = anvild("restart")
    assert (restarted.returncode, restarted.stdout) == (1, "")
    assert restarted.stderr.splitlines()[-1] == f"anvild: error: unknown key 'bogus' ({config})"
    assert status()["pid"] == daemon
    os.kill(daemon, signal.SIGHUP)
    log = state_dir() / "anvild.log"
    wait_for(lambda: "config not reloaded" in log.read_text(), 20, "the reload refused")
    assert alive(daemon) and status()["pid"] == daemon
    watched = anvild("watch", str(project))  # a reload over the socket: the same error
    assert watched.returncode == 1 and "unknown key 'bogus'" in watched.stderr
    config.write_text(good)
    assert status()["last_error"] is not None and status()["pid"] == daemon


# --- 14: projects lists globs as text; a nested watch warns ----------------------------------


def test_projects_lists_globs_as_text_and_a_nested_watch_warns(project: Path) -> None:
    assert anvild("watch", str(project), "--no-start").returncode == 0
    listed = anvild("projects")
    assert "[" not in listed.stdout and ".report.json, " in listed.stdout, listed.stdout
    (project / "tests").mkdir(exist_ok=True)
    nested = anvild("watch", "tests", "--no-start", cwd=project)
    assert nested.returncode == 0
    assert nested.stderr == (
        f"anvild: warning: {project / 'tests'} is inside the watched project {project}\n"
    )


def test_ingest_of_a_session_that_ran_no_test_is_a_skip(mode: str, tmp_path: Path) -> None:
    """The record of a session that ran no test (exit 5) is not a run: `anvild ingest` says it
    skipped it and exits 0, storing nothing, with the daemon and without."""
    root = write_project(tmp_path / "proj", {"test_a.py": "def test_one():\n    pass\n"})
    record = tmp_path / "session.jsonl"
    env = {k: v for k, v in os.environ.items() if k != "ANVILD_DISABLE"}
    session = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-k", "nothing", f"--anvild-record={record}"],
        cwd=root, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert session.returncode == 5 and record.is_file(), session.stdout + session.stderr
    proc = anvild("--project", str(root), "ingest", str(record), cwd=root)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    assert proc.stderr == (f"skipped {record}: none collected or all deselected (no tests ran): not a run\n"), (
        proc.stderr
    )
    assert runs(root / ".anvil" / "history.db") == 0


def test_a_test_id_typed_in_a_subdirectory_is_the_users_relative_path(
    mode: str, suite: Path
) -> None:
    """`history` and `show` take a test id whose file part is relative to the directory the
    user types in (or absolute), as pytest itself does, and print the test's real id."""
    ran = anvild("pytest", "-q", "-p", "no:randomly", "tests/test_a.py", cwd=suite)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    inside = suite / "tests"
    for typed in ("../tests/test_a.py::test_one", "./test_a.py::test_one",
                  f"{inside / 'test_a.py'}::test_one", "test_a.py::test_one"):  # fmt: skip
        history = anvild("history", typed, cwd=inside)
        assert history.returncode == 0, (typed, history.stderr)
        assert history.stdout.splitlines()[0] == "tests/test_a.py::test_one", history.stdout
        assert "PASSED" in history.stdout
        shown = anvild("show", typed, cwd=inside)
        assert shown.returncode == 0, (typed, shown.stderr)
        assert "tests/test_a.py::test_one" in shown.stdout.splitlines()[0], shown.stdout
