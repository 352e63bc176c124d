"""A real daemon across restarts: what `status` counts, what it drops and logs, and a start-up
that is ready before its rescan has looked at every report already there."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.conftest import anvild, executions, run_pytest, status, wait_for

JSON_REPORT = ("--json-report", "--json-report-file=.pytest_cache/report.json")


def state_dir() -> Path:
    return Path(os.environ["XDG_STATE_HOME"]) / "anvild"


def daemon_log() -> str:
    try:
        return (state_dir() / "anvild.log").read_text()
    except FileNotFoundError:
        return ""


def junit_run(sample_reports: dict[str, Any], n: int) -> str:
    """The sample JUnit report as run number n (its time stamp differs from the others')."""
    stamp = f'timestamp="2026-01-01T{n // 3600:02d}:{n // 60 % 60:02d}:{n % 60:02d}+00:00"'
    return re.sub(r'timestamp="[^"]*"', stamp, Path(sample_reports["junit"]).read_text(), count=1)


def junit_runs(sample_reports: dict[str, Any], directory: Path, count: int) -> list[Path]:
    """count JUnit reports of distinct runs in directory."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for n in range(count):
        path = directory / f"junit-{n:05d}.xml"
        path.write_text(junit_run(sample_reports, n))
        paths.append(path)
    return paths


def test_status_after_a_restart_counts_the_runs_stored_as_well_as_those_since_start(
    project: Path, sample_reports: dict[str, Any]
) -> None:
    assert anvild("watch", str(project), "--no-start").returncode == 0
    junit_runs(sample_reports, project / "reports", 5)
    assert anvild("start").returncode == 0
    try:
        wait_for(lambda: len(executions(project)) == 5, 30, "the five runs")
        assert anvild("restart").returncode == 0
        wait_for(lambda: status()["pending"] == 0, 30, "the rescan")

        info = status()
        assert info["runs_ingested"] == 0  # since this start: every report was there before
        assert info["runs_stored"] == 5
        assert [p["runs_stored"] for p in info["projects"]] == [5]
        told = anvild("status").stdout
        assert "runs stored: 0 since start, 5 in all;" in told, told
        assert f"{project.name}: {project} [local], 5 runs stored" in told, told

        run_pytest(project, *JSON_REPORT)
        wait_for(lambda: status()["runs_ingested"] == 1, 30, "the new run")
        assert status()["runs_stored"] == 6
        assert "runs stored: 1 since start, 6 in all;" in anvild("status").stdout
    finally:
        anvild("stop")


def test_a_pending_report_of_a_project_no_longer_watched_is_dropped_with_one_log_line(
    project: Path,
) -> None:
    assert anvild("watch", str(project), "--no-start").returncode == 0
    run_pytest(project, "-k", "passes", *JSON_REPORT)
    assert anvild("ingest", ".pytest_cache/report.json", cwd=project).returncode == 0
    (project / ".pytest_cache" / "report.json").unlink()  # stored: the rescan has nothing
    db = project / ".anvil" / "history.db"
    db.chmod(0o400)
    db.parent.chmod(0o500)
    try:
        assert anvild("start", bound=True).returncode == 0
        run_pytest(project, "-k", "fails", *JSON_REPORT)
        wait_for(lambda: len(status()["pending_reports"]) == 1, 30, "the report pending")
        assert anvild("stop").returncode == 0
    finally:
        db.parent.chmod(0o700)
        db.chmod(0o600)
    assert json.loads((state_dir() / "pending.json").read_text()) != []
    assert anvild("unwatch", str(project)).returncode == 0

    assert anvild("start").returncode == 0
    try:
        report = project / ".pytest_cache" / "report.json"
        wait_for(lambda: "pending report dropped" in daemon_log(), 30, "the drop logged")
        dropped = [line for line in daemon_log().splitlines() if "pending report dropped" in line]
        assert dropped == [dropped[0]] and " WARNING " in dropped[0], dropped
        assert f"{project} is no longer watched ({report})" in dropped[0], dropped
        assert status()["pending"] == 0
        assert json.loads((state_dir() / "pending.json").read_text()) == []
        assert len(executions(project)) == 1  # nothing stored for a project not watched
    finally:
        anvild("stop")


@contextmanager
def owner_lock_held(db: Path) -> Iterator[None]:
    """A foreign process holds the database's owner lock: a daemon that needs to write, or to
    ask it whether a report is stored, waits until the block ends."""
    lock = db.with_name(db.name + ".owner.lock")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys\n"
            "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)\n"
            "fcntl.flock(fd, fcntl.LOCK_EX)\n"
            "print('locked', flush=True)\n"
            "sys.stdin.read()\n",
            str(lock),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        yield
    finally:
        holder.communicate("", timeout=30)


def rescan_done() -> dict[str, Any] | None:
    rescan = status()["rescan"]
    return None if rescan["running"] else rescan


# The daemon waits this long for the owner lock held in these tests (the default is 30 s).
PATIENT = {"ANVILD_OWNER_TIMEOUT": "300"}


def test_the_daemon_is_ready_before_its_rescan_ends_and_reads_only_changed_reports(
    project: Path, sample_reports: dict[str, Any], tmp_path: Path
) -> None:
    assert anvild("watch", str(project), "--no-start").returncode == 0
    reports = junit_runs(sample_reports, project / "reports", 200)
    db = project / ".anvil" / "history.db"
    assert anvild("start").returncode == 0
    try:
        first = wait_for(rescan_done, 120, "the first start's rescan")
        assert first == {"running": False, "files": 200, "left": 0, "read": 200, "unchanged": 0}
        assert len(executions(project)) == 200
    finally:
        assert anvild("stop").returncode == 0

    # A run rewrote one report while no daemon ran. The daemon cannot finish its rescan while
    # another process owns the database (the changed report must be looked up): it is ready
    # (`anvild start` has returned) all the same, the rescan going on behind.
    reports[0].write_text(junit_run(sample_reports, 1000))
    with owner_lock_held(db):
        assert anvild("start", env=PATIENT).returncode == 0
        going = status()["rescan"]
        assert going["running"], going
        assert " of 200 report files looked at (" in anvild("status").stdout
    try:
        done = wait_for(rescan_done, 120, "the rescan after the lock")
        assert done == {"running": False, "files": 200, "left": 0, "read": 1, "unchanged": 199}
        assert len(executions(project)) == 201
        assert status()["runs_ingested"] == 1
    finally:
        assert anvild("stop").returncode == 0

    # The same through systemd's READY=1, from `anvild start --foreground`.
    reports[1].write_text(junit_run(sample_reports, 1001))
    address = str(tmp_path / "notify.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(address)
    listener.settimeout(60)
    proc: subprocess.Popen[str] | None = None
    try:
        with owner_lock_held(db):
            proc = subprocess.Popen(
                [sys.executable, "-m", "anvild", "start", "--foreground"],
                env={**os.environ, **PATIENT, "NOTIFY_SOCKET": address},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            assert listener.recv(4096).decode().startswith("READY=1")
            going = status()["rescan"]
            assert going["running"], going
        done = wait_for(rescan_done, 120, "the rescan after the lock")
        assert done["read"] == 1 and done["unchanged"] == 199, done
        assert len(executions(project)) == 202
    finally:
        listener.close()
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
