"""Database faults under a running daemon: reports wait as pending and are stored after
recovery; the daemon never exits on them (same pid throughout)."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import alive, anvild, run_pytest, status, wait_for, write_project

JSON_REPORT = ("--json-report", "--json-report-file=.pytest_cache/report.json")


def runs(db: Path) -> int:
    """Runs in the database at db, read as a foreign reader would (-1: cannot read)."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.1) as conn:
            return int(conn.execute("SELECT count(*) FROM execution").fetchone()[0])
    except sqlite3.Error:
        return -1


def report(project: Path, selection: str) -> None:
    """One real pytest run writing its JSON report into the watched project."""
    run_pytest(project, "-k", selection, *JSON_REPORT)


def waiting(reason: str) -> Callable[[], bool]:
    """Whether a report waits as pending for the given reason (a piece of its message)."""

    def check() -> bool:
        info = status()
        return any(reason in r["reason"].lower() for r in info["pending_reports"])

    return check


@pytest.fixture
def running(daemon: int) -> Iterator[int]:
    """The daemon's pid; at the end it must be the same process, still up."""
    yield daemon
    assert alive(daemon) and status()["pid"] == daemon, "the daemon exited on a fault"


def test_a_removed_database_directory_is_made_again_and_nothing_is_lost(
    running: int, project: Path
) -> None:
    db = project / ".anvil" / "history.db"
    report(project, "passes")
    wait_for(lambda: runs(db) == 1, 10, "the first run")
    shutil.rmtree(project / ".anvil")
    report(project, "fails")
    # stored in a new database at the same path, not into the deleted file
    wait_for(lambda: runs(db) == 1, 10, "the run in a new database")
    # where the directory cannot be made (a file in its way), the report waits
    shutil.rmtree(project / ".anvil")
    (project / ".anvil").write_text("in the way")
    report(project, "param")
    wait_for(waiting("cannot"), 30, "the report pending")
    (project / ".anvil").unlink()
    wait_for(lambda: runs(db) == 1 and status()["pending"] == 0, 90, "the run after recovery")


def test_a_foreign_exclusive_lock_for_30_s_keeps_reports_waiting(
    running: int, project: Path
) -> None:
    db = project / ".anvil" / "history.db"
    report(project, "passes")
    wait_for(lambda: runs(db) == 1, 10, "the first run")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys, time\n"
            "conn = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
            "conn.execute('BEGIN EXCLUSIVE')\n"
            "print('locked', flush=True)\n"
            "time.sleep(30)\n"
            "conn.execute('COMMIT')\n",
            str(db),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        report(project, "fails")
        report(project, "param")
        wait_for(lambda: status()["storing"] or status()["pending"], 10, "the reports waiting")
        assert runs(db) == 1  # readers still read (WAL); the writer waits
        assert holder.poll() is None, "the lock holder ended before the reports came"
        assert holder.wait(timeout=60) == 0
        wait_for(lambda: runs(db) == 3 and status()["pending"] == 0, 90, "both runs stored")
    finally:
        holder.kill()
        holder.wait()


def lock_holder(db: Path) -> subprocess.Popen[str]:
    """A foreign process holding the database's write lock until its stdin closes."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys\n"
            "conn = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
            "conn.execute('BEGIN EXCLUSIVE')\n"
            "print('locked', flush=True)\n"
            "sys.stdin.read()\n"
            "conn.execute('COMMIT')\n",
            str(db),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
    return holder


def test_a_stop_while_the_database_is_locked_keeps_every_report(
    project: Path, sample_reports: dict
) -> None:
    """SIGTERM finishes the report in hand and keeps the ones read but not stored for the next
    start, without waiting for each one to time out on the lock; nothing is lost even when
    their files are gone by then."""
    db = project / ".anvil" / "history.db"
    assert anvild("watch", str(project)).returncode == 0
    pid = status()["pid"]
    report(project, "passes")
    wait_for(lambda: runs(db) == 1, 10, "the first run")
    holder = lock_holder(db)
    try:
        template = json.loads(Path(sample_reports["json"]).read_text())
        targets = [project / ".report.json", project / ".pytest_cache" / "report.json"]
        targets.append(project / "junit-x.xml")
        for n, target in enumerate(targets[:2]):
            target.write_text(json.dumps({**template, "created": 1.7e9 + n}))
        targets[2].write_bytes(Path(sample_reports["junit"]).read_bytes())
        wait_for(lambda: status()["pending"] == 3, 10, "three reports waiting on the lock")
        assert anvild("stop").returncode == 0  # one busy timeout (30 s) at most, not three
        assert not alive(pid)
        state = Path(os.environ["XDG_STATE_HOME"]) / "anvild"
        kept = json.loads((state / "pending.json").read_text())
        assert sorted(p["path"] for p in kept) == sorted(map(str, targets))
        for target in targets:
            target.unlink()  # only the daemon's own copies are left
    finally:
        holder.communicate("", timeout=30)
    assert anvild("start").returncode == 0
    try:
        wait_for(lambda: runs(db) == 4 and status()["pending"] == 0, 60, "every run stored")
        assert list((state / "spool").iterdir()) == []
    finally:
        anvild("stop")


def start_without_override() -> None:
    """Start the daemon so that file permissions bind it, root or not."""
    proc = anvild("start", bound=True)
    assert proc.returncode == 0, proc.stderr


@pytest.fixture
def history(project: Path) -> Iterator[Path]:
    """The project watched, one run stored, no daemon yet; the database's path. Permissions
    are given back and the daemon stopped at the end."""
    assert anvild("watch", str(project), "--no-start").returncode == 0
    report(project, "passes")
    assert anvild("ingest", ".pytest_cache/report.json", cwd=project).returncode == 0
    db = project / ".anvil" / "history.db"
    assert runs(db) == 1
    yield db
    db.parent.chmod(0o700)
    db.chmod(0o600)
    anvild("stop")


@pytest.mark.parametrize("what", ["file", "directory"])
def test_a_read_only_database_keeps_reports_pending(
    project: Path, history: Path, what: str
) -> None:
    history.chmod(0o400)
    if what == "directory":
        history.parent.chmod(0o500)
    start_without_override()
    pid = status()["pid"]
    report(project, "fails")
    wait_for(lambda: status()["pending_reports"], 30, "the report pending")
    report(project, "param")  # a second run at the same path, while the first waits
    wait_for(lambda: len(status()["pending_reports"]) == 2, 30, "both pending")
    assert runs(history) == 1
    told = [line for line in anvild("status").stdout.splitlines() if "pending: /" in line]
    assert len(told) == 2 and all("report.json: " in line for line in told), told
    history.parent.chmod(0o700)
    history.chmod(0o600)
    wait_for(lambda: runs(history) == 3, 90, "both stored after recovery")
    wait_for(lambda: status()["pending"] == 0, 30, "nothing pending")
    assert status()["pid"] == pid and status()["rejected"] == 0


def test_pending_reports_survive_a_restart_with_their_bytes(project: Path, history: Path) -> None:
    """A pending report is kept in the state dir: its file overwritten by the next run and the
    daemon restarted while the database is read-only, it is still stored afterwards."""
    history.chmod(0o400)
    history.parent.chmod(0o500)
    start_without_override()
    report(project, "fails")
    wait_for(lambda: len(status()["pending_reports"]) == 1, 30, "one pending")
    assert anvild("stop").returncode == 0
    report(project, "param")  # overwrites the pending report's file
    start_without_override()
    wait_for(lambda: len(status()["pending_reports"]) == 2, 30, "two pending")
    state = Path(os.environ["XDG_STATE_HOME"]) / "anvild"
    pending = json.loads((state / "pending.json").read_text())
    assert all((state / "spool" / p["digest"]).is_file() for p in pending)
    history.parent.chmod(0o700)
    history.chmod(0o600)
    wait_for(lambda: runs(history) == 3, 90, "every run stored")
    wait_for(lambda: status()["pending"] == 0, 30, "nothing pending")
    assert list((state / "spool").iterdir()) == []


def test_writes_failing_for_want_of_room_keep_reports_pending(project: Path) -> None:
    """Disk full for anyone, no mount needed: the running daemon's file-size limit
    (RLIMIT_FSIZE) is lowered to what its files hold, so the database cannot grow: its writes
    really fail (EFBIG). Raised again, the report is stored. (tests/test_team.py fills a real
    tmpfs where mounting is allowed.)"""
    resource = pytest.importorskip("resource")
    if not hasattr(resource, "prlimit"):
        pytest.skip("no prlimit on this platform")
    db = project / ".anvil" / "history.db"
    assert anvild("watch", str(project)).returncode == 0
    pid = status()["pid"]
    try:
        report(project, "passes")
        wait_for(lambda: runs(db) == 1 and status()["pending"] == 0, 10, "the first run")
        files = [db, Path(f"{db}-wal"), Path(f"{db}-shm")]
        room = max(f.stat().st_size for f in files if f.exists()) + 16 * 1024
        resource.prlimit(pid, resource.RLIMIT_FSIZE, (room, resource.RLIM_INFINITY))
        write_project(
            project,
            {
                "tests/test_many.py": "import pytest\n"
                "@pytest.mark.parametrize('n', range(3000))\n"
                "def test_n(n):\n    assert n % 7\n"
            },
        )
        report(project, "test_n")
        wait_for(lambda: status()["pending_reports"], 30, "the report pending")
        (waits,) = status()["pending_reports"]
        assert "disk" in waits["reason"] or "full" in waits["reason"], waits  # the real reason
        assert runs(db) == 1
        resource.prlimit(pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY,) * 2)
        wait_for(lambda: runs(db) == 2 and status()["pending"] == 0, 90, "stored with room")
        assert status()["pid"] == pid
    finally:
        anvild("stop")
