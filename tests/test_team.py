"""Team mode around the database: privacy, moving history, and nothing lost while it is away."""

from __future__ import annotations

import contextlib
import json
import os
import select
import socket
import sqlite3
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from anvild import settings
from tests.conftest import SAMPLE_TESTS, anvild, run_pytest, status, wait_for, write_project
from tests.conftest import pg_query as query

JSON_REPORT = ("--json-report", "--json-report-file=.pytest_cache/report.json")


def _watch(project: Path, **options: object) -> None:
    path = Path(os.environ["XDG_CONFIG_HOME"]) / "anvild" / "config.toml"
    config = settings.load(path)
    entry = settings.ProjectConfig(project.resolve(), project.name, **options)  # type: ignore[arg-type]
    settings.save(settings.with_project(config, entry), path)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return write_project(
        tmp_path / "proj", {"tests/test_a.py": SAMPLE_TESTS["tests/test_outcomes.py"]}
    )


def test_local_runs_stay_home_when_the_project_shares_ci_only(
    pg_url: str, project: Path, pg_reports: list[Path]
) -> None:
    _watch(project, database=pg_url, share="ci")
    local = anvild("ingest", str(pg_reports[0]), cwd=project)
    assert local.returncode == 0 and "not sent: this project shares 'ci' runs only" in local.stderr
    ci = anvild("ingest", "--space", "ci", str(pg_reports[1]), cwd=project)
    assert ci.returncode == 0 and ci.stdout.startswith("stored ")
    assert query(pg_url, "SELECT space FROM execution") == [("ci",)]


def test_failure_messages_can_stay_home(pg_url: str, project: Path, pg_reports: list[Path]) -> None:
    _watch(project, database=pg_url, messages=False)
    failing = next(p for p in pg_reports if json.loads(p.read_text())["summary"].get("failed"))
    assert anvild("ingest", str(failing), cwd=project).returncode == 0
    assert query(pg_url, "SELECT count(*) FROM execution_history WHERE message IS NOT NULL") == [
        (0,)
    ]
    assert query(pg_url, "SELECT count(*) FROM test WHERE last_traceback IS NOT NULL") == [(0,)]
    assert query(pg_url, "SELECT count(*) FROM execution_history WHERE status = 'FAILED'") != [(0,)]


def test_db_copy_moves_a_laptops_history_without_duplicates(
    pg_url: str, project: Path, pg_reports: list[Path]
) -> None:
    for report in pg_reports[:4]:
        assert anvild("ingest", str(report), cwd=project).returncode == 0
    laptop = str(project / ".anvil" / "history.db")
    # one run is in the team database already (stored there by CI, say)
    assert anvild("--db", pg_url, "ingest", str(pg_reports[0]), cwd=project).returncode == 0
    copy = anvild("db", "copy", "--from", laptop, "--to", pg_url, cwd=project)
    assert copy.returncode == 0, copy.stderr
    assert copy.stdout.strip() == "copied 3 runs; 1 were there already"
    again = anvild("db", "copy", "--from", laptop, "--to", pg_url, cwd=project)
    assert again.stdout.strip() == "copied 0 runs; 4 were there already"
    with sqlite3.connect(laptop) as conn:
        local_rows = sorted(
            conn.execute(
                "SELECT e.execution_id, t.entity_id, h.status, h.attempt FROM execution_history h "
                "JOIN execution e ON e.id = h.execution_id JOIN test t ON t.id = h.test_id"
            ).fetchall()
        )
        local_stats = sorted(
            conn.execute(
                "SELECT t.entity_id, s.total_runs, s.passed, s.failed, s.errors, s.skipped FROM entity_statistics s "
                "JOIN test t ON t.id = s.test_id"
            ).fetchall()
        )
    team_rows = sorted(
        query(
            pg_url,
            "SELECT e.execution_id, t.entity_id, h.status, h.attempt FROM execution_history h "
            "JOIN execution e ON e.id = h.execution_id JOIN test t ON t.id = h.test_id",
        )
    )
    assert len(team_rows) == len(local_rows)
    assert {r[1:] for r in team_rows} == {r[1:] for r in local_rows}
    team_stats = sorted(
        query(
            pg_url,
            "SELECT t.entity_id, s.total_runs, s.passed, s.failed, s.errors, s.skipped FROM entity_statistics s "
            "JOIN test t ON t.id = s.test_id",
        )
    )
    assert team_stats == local_stats
    rebuild = anvild("--db", pg_url, "stats", "rebuild", "--json", cwd=project)
    assert json.loads(rebuild.stdout) == []


class LoopbackProxy:
    """A TCP proxy to the PostgreSQL server that a test can cut and restore."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self._listener: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()

    def open(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        self.port = listener.getsockname()[1]
        listener.listen(64)
        self._listener = listener
        thread = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        thread.start()
        self._threads.append(thread)

    def cut(self) -> None:
        """Stop listening and break every connection, as a server that went away."""
        if self._listener is not None:
            self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        with self._lock:
            for conn in self._conns:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
                conn.close()
            self._conns.clear()
        for thread in self._threads:
            thread.join(timeout=10)
        self._threads = [t for t in self._threads if t.is_alive()]

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, server]
            thread = threading.Thread(target=self._pipe, args=(client, server), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _pipe(self, a: socket.socket, b: socket.socket) -> None:
        try:
            while True:
                ready, _, _ = select.select([a, b], [], [], 5)
                for sock in ready:
                    data = sock.recv(65536)
                    if not data:
                        return
                    (b if sock is a else a).sendall(data)
        except OSError:
            return
        finally:
            a.close()
            b.close()


def test_reports_wait_for_a_database_that_went_away(
    pg_url: str, project: Path, tmp_path: Path
) -> None:
    proxy = LoopbackProxy(("127.0.0.1", 5432))
    proxy.open()
    via_proxy = pg_url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
    _watch(project, database=via_proxy)
    try:
        started = anvild("start", cwd=project)
        assert started.returncode == 0, started.stderr
        selections = ["passes", "fails", "param", "Group", "xfails", "skipped"]
        for name in selections[:3]:
            run_pytest(project, "-k", name, "--junitxml", f"junit-{name}.xml")
        wait_for(
            lambda: len(query(pg_url, "SELECT 1 FROM execution")) == 3, 30, "the first three runs"
        )
        proxy.cut()
        for name in selections[3:]:
            run_pytest(project, "-k", name, "--junitxml", f"junit-{name}.xml")
        wait_for(lambda: len(status()["pending_reports"]) == 3, 30, "three reports pending")
        info = status()
        assert "cannot connect" in info["last_error"] or "connection" in info["last_error"].lower()
        pending_file = Path(os.environ["XDG_STATE_HOME"]) / "anvild" / "pending.json"
        assert len(json.loads(pending_file.read_text())) == 3  # kept on disk, too
        # a restart while the database is away forgets nothing; the first three, settled as
        # stored before it (by size, mtime and inode), are not read again, so they do not wait
        assert anvild("restart", cwd=project).returncode == 0
        wait_for(
            lambda: not (info := status()).get("rescan", {}).get("running")
            and len(info["pending_reports"]) == 3,
            30,
            "the start-up rescan over, the three reports pending again",
        )
        assert status()["rescan"]["unchanged"] >= 3
        proxy.open()  # the server is back, on the same address
        wait_for(lambda: len(query(pg_url, "SELECT 1 FROM execution")) == 6, 90, "every run stored")
        wait_for(lambda: status()["pending"] == 0, 30, "nothing pending")
        assert query(pg_url, "SELECT count(DISTINCT report_sha256) FROM execution") == [(6,)]
    finally:
        anvild("stop", cwd=project)
        proxy.cut()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MB tmpfs of the test's own, to make read-only or full (needs mount rights: root)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(disk)],
                             capture_output=True, text=True)  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip() or 'not permitted'}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def _sqlite_runs(db: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            return conn.execute("SELECT count(*) FROM execution").fetchone()[0]
    except sqlite3.Error:
        return -1


def test_a_full_disk_keeps_reports_pending(project: Path, small_disk: Path) -> None:
    db = small_disk / "history.db"
    _watch(project, database=str(db))
    filler = small_disk / "filler"
    try:
        assert anvild("start", cwd=project).returncode == 0
        run_pytest(project, "-k", "param", *JSON_REPORT)
        wait_for(lambda: _sqlite_runs(db) == 1, 10, "the first run")
        # fill the disk to the last byte; unbuffered, so that closing has nothing left to write
        with filler.open("wb", buffering=0) as stream:
            try:
                while stream.write(b"\0" * 65536):
                    pass
            except OSError:
                pass
        big = write_project(
            project,
            {
                "tests/test_many.py": "import pytest\n@pytest.mark.parametrize('n', range(3000))\ndef test_n(n):\n    assert n % 7\n"
            },
        )
        run_pytest(big, *JSON_REPORT)
        wait_for(lambda: status()["pending"] >= 1, 30, "the report pending")
        assert "full" in status()["last_error"].lower()
        filler.unlink()
        wait_for(lambda: _sqlite_runs(db) == 2, 90, "the run stored once there is room")
        wait_for(lambda: status()["pending"] == 0, 30, "nothing pending")
    finally:
        filler.unlink(missing_ok=True)
        anvild("stop", cwd=project)
