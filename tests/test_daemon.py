"""The daemon end to end: a real daemon subprocess, real pytest runs, a real SQLite file."""

from __future__ import annotations

import dataclasses
import os
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from anvild import settings
from tests.conftest import (
    alive,
    anvild,
    executions,
    run_pytest,
    status,
    wait_for,
    write_project,
)

JSON_REPORT = ("--json-report", "--json-report-file=.pytest_cache/report.json")


def test_a_run_is_visible_within_a_second(daemon: int, project: Path) -> None:
    assert not (project / ".pytest_cache").exists()  # the watch waits on the project root
    proc = run_pytest(project, *JSON_REPORT)
    assert proc.returncode == 1
    wait_for(lambda: executions(project), 1.0, "the run in the database")
    (run,) = executions(project)
    assert run[1] == "pytest-json-report" and run[2] == 11
    info = status()
    assert info["runs_ingested"] == 1 and info["rejected"] == 0 and info["pending"] == 0


def test_two_quick_runs_are_two_runs_and_discovery_is_none(daemon: int, project: Path) -> None:
    assert run_pytest(project, "--collect-only", *JSON_REPORT).returncode == 0
    run_pytest(project, *JSON_REPORT)
    run_pytest(project, *JSON_REPORT, "-k", "param")
    wait_for(lambda: len(executions(project)) == 2, 10, "two runs")
    assert [n for _, _, n in executions(project)] == [11, 3]


def test_a_report_written_slowly_in_pieces_is_stored_once_complete(
    daemon: int, project: Path, tmp_path: Path
) -> None:
    source = tmp_path / "whole.json"
    assert run_pytest(project, "--json-report", f"--json-report-file={source}").returncode == 1
    data = source.read_bytes()
    target = project / ".report.json"
    with target.open("wb") as stream:
        for n in range(5):
            stream.write(data[n * len(data) // 5 : (n + 1) * len(data) // 5])
            stream.flush()
            # longer than the settle time: the daemon sees a stable, broken file
            time.sleep(0.4)
            if n < 4:  # once the last piece is in, a settled file is complete and may go in
                assert executions(project) == []
    wait_for(lambda: executions(project), 10, "the complete report")
    time.sleep(0.3)  # any duplicate would arrive with the same events
    (run,) = executions(project)
    assert run[2] == 11


def test_reports_written_while_stopped_are_caught_up(project: Path) -> None:
    assert anvild("watch", str(project), "--no-start").returncode == 0
    run_pytest(project, *JSON_REPORT)
    run_pytest(project, "--junitxml=junit-ci.xml")
    assert anvild("status").returncode == 3
    assert anvild("start").returncode == 0
    try:
        wait_for(lambda: len(executions(project)) == 2, 10, "both reports")
        assert sorted(source for _, source, _ in executions(project)) == [
            "junit",
            "pytest-json-report",
        ]
        # a restart rescans again and stores nothing twice
        assert anvild("restart").returncode == 0
        wait_for(lambda: status()["pending"] == 0, 10, "the rescan")
        assert len(executions(project)) == 2
    finally:
        anvild("stop")


def test_stop_leaves_no_process_and_status_exits_3(daemon: int) -> None:
    assert anvild("stop").returncode == 0
    wait_for(lambda: not alive(daemon), 10, "the daemon to exit")
    proc = anvild("status")
    assert proc.returncode == 3 and proc.stdout.strip() == "anvild is not running"
    assert not (Path(os.environ["XDG_RUNTIME_DIR"]) / "anvild" / "control.sock").exists()


def test_kill_9_then_start_works(daemon: int, project: Path) -> None:
    os.kill(daemon, signal.SIGKILL)
    wait_for(lambda: not alive(daemon), 10, "the daemon to die")
    assert anvild("status").returncode == 3  # the stale pidfile does not count
    started = anvild("start")
    assert started.returncode == 0, started.stderr
    run_pytest(project, *JSON_REPORT)
    wait_for(lambda: executions(project), 10, "a run after the restart")


def test_sighup_adds_a_project(daemon: int, tmp_path: Path) -> None:
    other = write_project(tmp_path / "other", {"test_b.py": "def test_b():\n    pass\n"})
    path = Path(os.environ["XDG_CONFIG_HOME"]) / "anvild" / "config.toml"
    config = settings.load(path)
    settings.save(settings.with_project(config, settings.ProjectConfig(other, "other")), path)
    os.kill(daemon, signal.SIGHUP)
    wait_for(lambda: len(status()["projects"]) == 2, 10, "the reload")
    run_pytest(other, *JSON_REPORT)
    wait_for(lambda: executions(other), 10, "the new project's run")


def test_an_xdist_run_is_one_run_with_all_tests(daemon: int, project: Path) -> None:
    proc = run_pytest(project, "-n", "2", *JSON_REPORT)
    assert "2 workers" in proc.stdout or "gw1" in proc.stdout, proc.stdout
    wait_for(lambda: executions(project), 10, "the xdist run")
    time.sleep(0.3)
    assert [n for _, _, n in executions(project)] == [11]


def test_a_reportlog_run_is_visible_while_it_goes_on(daemon: int, project: Path) -> None:
    gate = project / "gate"
    write_project(
        project,
        {
            "tests/test_slow.py": f"""
        import pathlib, time
        def test_first():
            pass
        def test_waits_for_the_gate():
            deadline = time.monotonic() + 60
            while not pathlib.Path({str(gate)!r}).exists() and time.monotonic() < deadline:
                time.sleep(0.01)
    """
        },
    )
    runner = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:anvild",
            "tests/test_slow.py",
            "--report-log=.pytest_cache/reportlog.jsonl",
        ],
        cwd=project,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        progress = wait_for(
            lambda: [p for p in status()["in_progress"] if p["tests_so_far"] >= 1],
            30,
            "the run in progress",
        )
        assert progress[0]["path"].endswith("reportlog.jsonl")
        assert progress[0]["tests_so_far"] >= 1
        assert executions(project) == []
    finally:
        gate.touch()
        runner.wait(timeout=60)
    wait_for(lambda: executions(project), 10, "the finished run")
    assert executions(project)[0][1:] == ("reportlog", 2)
    assert status()["in_progress"] == []


def test_broken_reports_are_rejected_and_the_daemon_stays_up(daemon: int, project: Path) -> None:
    (project / "junit-broken.xml").write_text("<testsuite><testcase name='a'>")
    wait_for(lambda: status()["rejected"] == 1, 10, "the rejection")
    assert "junit-broken.xml" in status()["last_error"]
    run_pytest(project, *JSON_REPORT)
    wait_for(lambda: executions(project), 10, "a good run after a bad one")


def test_symlinks_out_of_the_root_are_not_followed(
    daemon: int, project: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside.xml"
    assert run_pytest(project, f"--junitxml={outside}").returncode == 1
    (project / "junit-link.xml").symlink_to(outside)
    run_pytest(project, *JSON_REPORT)
    wait_for(lambda: executions(project), 10, "the real run")
    time.sleep(0.3)
    assert [source for _, source, _ in executions(project)] == ["pytest-json-report"]


def test_ingest_and_rebuild_go_through_the_running_daemon(
    daemon: int, project: Path, tmp_path: Path
) -> None:
    report = tmp_path / "elsewhere.json"
    run_pytest(project, "--json-report", f"--json-report-file={report}")
    proc = anvild("ingest", str(report), cwd=project)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("stored local-")
    assert status()["runs_ingested"] == 1  # the daemon stored it, as the owner
    again = anvild("ingest", str(report), cwd=project)
    assert again.stdout.startswith("already stored as ")
    rebuild = anvild("stats", "rebuild", cwd=project)
    assert rebuild.returncode == 0, rebuild.stderr
    assert rebuild.stdout.strip() == "statistics match the history: nothing to change"


def test_control_socket_is_private(daemon: int) -> None:
    directory = Path(os.environ["XDG_RUNTIME_DIR"]) / "anvild"
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert stat.S_IMODE((directory / "control.sock").stat().st_mode) == 0o600


SMALL_JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" tests="2" failures="1" errors="0" skipped="0" time="0.1">
<testcase classname="tests.test_a" name="test_ok" time="0.01"/>
<testcase classname="tests.test_a" name="test_bad" time="0.02"><failure message="no">no</failure>
</testcase></testsuite></testsuites>
"""


def test_without_xdg_runtime_dir_the_socket_is_in_a_private_fallback(
    project: Path, tmp_path: Path, private_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """cron, containers, macOS: no $XDG_RUNTIME_DIR, the socket goes to the state directory."""
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    fallback = private_home / ".local" / "state" / "anvild"
    fallback.mkdir(parents=True, exist_ok=True)
    fallback.chmod(0o755)  # made by an earlier command, not private yet
    assert anvild("watch", str(project), "--no-start").returncode == 0
    started = anvild("start")
    assert started.returncode == 0, started.stderr
    pid = status()["pid"]
    try:
        assert anvild("status").returncode == 0
        sock = fallback / "control.sock"
        assert stat.S_ISSOCK(sock.stat().st_mode)
        assert stat.S_IMODE(fallback.stat().st_mode) == 0o700
        assert stat.S_IMODE(sock.stat().st_mode) == 0o600
        assert not (private_home / "run" / "anvild").exists()
        report = tmp_path / "elsewhere.xml"  # outside the project: only ingest reads it
        report.write_text(SMALL_JUNIT)
        proc = anvild("ingest", str(report), cwd=project)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.startswith("stored local-")
        assert status()["runs_ingested"] == 1  # through the daemon, the owner
    finally:
        stopped = anvild("stop")
        assert stopped.returncode == 0, stopped.stderr
        wait_for(lambda: not alive(pid), 30, "the daemon to exit")
    assert not (fallback / "control.sock").exists()


def test_a_relative_xdg_runtime_dir_is_ignored(
    private_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from anvild import control

    monkeypatch.setenv("XDG_RUNTIME_DIR", "run")
    assert control.socket_dir() == private_home / ".local" / "state" / "anvild"
    monkeypatch.setenv("XDG_RUNTIME_DIR", "")
    assert control.socket_dir() == private_home / ".local" / "state" / "anvild"


def test_foreground_speaks_sd_notify(project: Path, tmp_path: Path) -> None:
    assert anvild("watch", str(project), "--no-start").returncode == 0
    address = str(tmp_path / "notify.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(address)
    listener.settimeout(30)
    proc = subprocess.Popen(
        [sys.executable, "-m", "anvild", "start", "--foreground"],
        env={**os.environ, "NOTIFY_SOCKET": address},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        ready = listener.recv(4096).decode()
        assert ready.startswith("READY=1") and "STATUS=watching 1 project" in ready
        assert status()["pid"] == proc.pid
        proc.send_signal(signal.SIGHUP)
        assert listener.recv(4096).decode() == "RELOADING=1"
        assert listener.recv(4096).decode().startswith("READY=1")
        proc.terminate()
        assert listener.recv(4096).decode() == "STOPPING=1"
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert "anvild started" in err and "SIGTERM: stopping" in err  # logs go to stderr
    finally:
        listener.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_ci_runs_keep_their_ci_names_through_the_daemon(
    daemon: int, project: Path, tmp_path: Path
) -> None:
    report = tmp_path / "junit.xml"
    run_pytest(project, f"--junitxml={report}")
    env = {
        **os.environ,
        "GITHUB_ACTIONS": "true",
        "GITHUB_RUN_ID": "4242",
        "GITHUB_JOB": "tests",
        "GITHUB_RUN_ATTEMPT": "1",
        "GITHUB_REPOSITORY": "o/r",
        "GITHUB_SERVER_URL": "https://github.com",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "anvild", "ingest", "--space", "ci", str(report)],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("stored ci-4242-tests (ci)")
    assert status()["runs_ingested"] == 1


def _reportlog_lines(root: Path, tmp_path: Path, name: str, *selection: str) -> list[bytes]:
    """The lines of a real pytest-reportlog file of the sample project."""
    log = tmp_path / f"{name}.jsonl"
    run_pytest(root, *selection, f"--report-log={log}")
    return log.read_bytes().splitlines(keepends=True)


def test_a_reportlog_run_without_session_finish_is_closed_as_interrupted(
    project: Path, tmp_path: Path
) -> None:
    lines = _reportlog_lines(project, tmp_path, "whole", "-k", "param")
    path = Path(os.environ["XDG_CONFIG_HOME"]) / "anvild" / "config.toml"
    assert anvild("watch", str(project), "--no-start").returncode == 0
    settings.save(dataclasses.replace(settings.load(path), reportlog_timeout=0.5), path)
    assert anvild("start").returncode == 0
    try:
        target = project / ".pytest_cache" / "reportlog.jsonl"
        target.parent.mkdir(exist_ok=True)
        # the run dies after its first test: no SessionFinish ever comes
        cut = next(i for i, line in enumerate(lines) if b'"when": "teardown"' in line) + 1
        target.write_bytes(b"".join(lines[:cut]))
        wait_for(lambda: executions(project), 10, "the interrupted run")
        with sqlite3.connect(project / ".anvil" / "history.db") as conn:
            (state,) = conn.execute("SELECT state FROM execution").fetchone()
        assert state == "interrupted" and executions(project)[0][1:] == ("reportlog", 1)
    finally:
        anvild("stop")


def test_a_reportlog_that_shrinks_was_restarted(daemon: int, project: Path, tmp_path: Path) -> None:
    first = _reportlog_lines(project, tmp_path, "first", "-k", "param")
    second = _reportlog_lines(project, tmp_path, "second", "-k", "passes or fails")
    target = project / ".pytest_cache" / "reportlog.jsonl"
    target.parent.mkdir(exist_ok=True)
    with target.open("wb") as stream:  # a session that writes half its log...
        cut = next(i for i, line in enumerate(first) if b'"when": "teardown"' in line) + 1
        stream.writelines(first[:cut])
        stream.flush()
        wait_for(
            lambda: [p for p in status()["in_progress"] if p["tests_so_far"] >= 1], 10, "progress"
        )
    with target.open("wb") as stream:  # ...then pytest starts over: truncated, a new session
        stream.writelines(second)
    wait_for(lambda: executions(project), 10, "the second session")
    time.sleep(0.3)
    # only the complete second session is a run: the half first one is gone
    assert [row[1:] for row in executions(project)] == [("reportlog", 4)]
