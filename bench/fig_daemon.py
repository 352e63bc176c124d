"""Figures through a real daemon: f (report closed -> run visible), g (burst of 8 x 25
reports, and the same burst the seed's way), i (idle CPU and memory with 100 projects), k
(start-up with 20,000 reports already in the watched folders: time to READY).

Each daemon is `anvild start` run as a subprocess with HOME and every XDG directory
(config, state, runtime: its control socket) inside a scratch directory, never the user's;
it is stopped with `anvild stop` afterwards (SIGTERM/SIGKILL to its own pid if that fails).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import seed_way
from common import (
    ANVILD,
    PYTHON,
    BenchError,
    Mode,
    Row,
    clean_env,
    median,
    ms,
    percentile,
    report_files,
    temp_dir,
    verdict,
)

MP = multiprocessing.get_context("fork")  # workers inherit the loaded modules; no threads yet


# --- a real daemon -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Project:
    root: Path
    extra_reports: tuple[str, ...] = ()
    database: str | None = None


class RealDaemon:
    """`anvild start` in a private home, with a config listing the given projects."""

    def __init__(self, home: Path, projects: list[Project]) -> None:
        from anvild import settings

        self.home = home
        self.env = clean_env(home)
        self.config_path = Path(self.env["XDG_CONFIG_HOME"]) / "anvild" / "config.toml"
        config = settings.Config(
            projects=tuple(
                settings.ProjectConfig(
                    root=p.root.resolve(),
                    name=p.root.name,
                    reports=(*settings.DEFAULT_REPORTS, *p.extra_reports),
                    database=p.database,
                )
                for p in projects
            )
        )
        settings.save(config, self.config_path)
        self.pid: int | None = None

    def anvild(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [ANVILD, *args], env=self.env, capture_output=True, text=True, timeout=timeout,
            cwd=self.home,
        )  # fmt: skip

    def log_tail(self, lines: int = 15) -> str:
        log = Path(self.env["XDG_STATE_HOME"]) / "anvild" / "anvild.log"
        try:
            return " | ".join(log.read_text().splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def start(self) -> int:
        proc = self.anvild("start")
        if proc.returncode != 0:
            raise BenchError(f"`anvild start` failed: {proc.stderr.strip()} {self.log_tail()}")
        self.pid = int(self.status()["pid"])
        return self.pid

    def status(self) -> dict[str, Any]:
        proc = self.anvild("status", "--json")
        if proc.returncode != 0:
            raise BenchError(f"`anvild status` exited {proc.returncode}: {proc.stderr.strip()}")
        return dict(json.loads(proc.stdout))

    def stop(self) -> None:
        if self.pid is None:
            return
        pid, self.pid = self.pid, None
        proc = self.anvild("stop", timeout=60)
        if proc.returncode == 0 and not _alive(pid):
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):  # our own daemon only, by its pid
            if not _alive(pid):
                return
            os.kill(pid, sig)
            deadline = time.monotonic() + 10
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)

    def __enter__(self) -> RealDaemon:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is gone for our purposes
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except OSError:
        return True


def rss_mb(pid: int) -> float:
    """Resident memory (VmRSS) in MB of 10^6 bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024 / 1e6
    raise BenchError(f"no VmRSS for pid {pid}")


def cpu_seconds(pid: int) -> float:
    """utime + stime of the whole process (every thread), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wakeups(pid: int) -> tuple[int, int]:
    """(threads, context switches summed over them): an idle process that polls wakes up."""
    switches = threads = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            text = (task / "status").read_text()
        except OSError:
            continue
        threads += 1
        for line in text.splitlines():
            if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                switches += int(line.split()[1])
    return threads, switches


def inotify_watches(pid: int) -> int:
    """Inotify watches the process holds (lines `inotify wd:` of its fdinfo)."""
    count = 0
    for info in Path(f"/proc/{pid}/fdinfo").iterdir():
        try:
            count += sum(1 for line in info.read_text().splitlines() if line.startswith("inotify"))
        except OSError:
            continue
    return count


# --- reading what the daemon stored --------------------------------------------------------


class Reader:
    """A read-only connection that polls what the daemon committed (SQLite WAL or PG)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.pg = url.startswith("postgres")
        self.con: Any = None

    def _connect(self) -> bool:
        if self.pg:
            import psycopg2

            self.con = psycopg2.connect(self.url)
            self.con.autocommit = True
            self.con.set_session(readonly=True, autocommit=True)
            return True
        if not Path(self.url).exists():
            return False
        self.con = sqlite3.connect(f"file:{self.url}?mode=ro", uri=True, isolation_level=None)
        return True

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        if self.con is None and not self._connect():
            return []
        try:
            if self.pg:
                with self.con.cursor() as cur:
                    cur.execute(sql)
                    return list(cur.fetchall())
            return list(self.con.execute(sql).fetchall())
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return []
            raise

    def runs(self) -> int:
        rows = self.query('SELECT COUNT(*) FROM "execution"')
        return int(rows[0][0]) if rows else 0

    def close(self) -> None:
        if self.con is not None:
            self.con.close()
            self.con = None


def wait_for_runs(
    reader: Reader, expected: int, timeout: float, interval: float = 0.001
) -> float | None:
    """Poll until `expected` runs are visible; the moment (monotonic) they were, or None."""
    deadline = time.monotonic() + timeout
    while True:
        if reader.runs() >= expected:
            return time.monotonic()
        if time.monotonic() > deadline:
            return None
        time.sleep(interval)


def write_like_pytest_json_report(doc: dict[str, Any], target: Path) -> None:
    """As pytest-json-report saves its report: open 'w', json.dump, close."""
    with target.open("w") as out:
        json.dump(doc, out)


# --- f: latency ----------------------------------------------------------------------------


def figure_f(mode: Mode, print_row: Callable[[Row], None]) -> list[Row]:
    runs, warmup, gap = mode.count(50, 100), 3, 0.15
    paths = report_files(1_000, range(1, warmup + runs + 1))
    latencies: list[float] = []
    with temp_dir() as tmp:
        project = tmp / "project"
        (project / ".pytest_cache").mkdir(parents=True)
        target = project / ".pytest_cache" / "report.json"
        db = project / ".anvil" / "history.db"
        with RealDaemon(tmp / "home", [Project(project)]) as daemon:
            reader = Reader(str(db))
            try:
                for i, path in enumerate(paths):
                    with path.open() as handle:
                        doc = json.load(handle)
                    write_like_pytest_json_report(doc, target)
                    closed = time.monotonic()
                    seen = wait_for_runs(reader, i + 1, timeout=30)
                    if seen is None:
                        raise BenchError(
                            f"run {i + 1} not visible after 30 s: {daemon.status()} "
                            f"{daemon.log_tail()}"
                        )
                    if i >= warmup:
                        latencies.append(seen - closed)
                    time.sleep(gap)
            finally:
                reader.close()
            status = daemon.status()
            assert daemon.pid is not None
            rss = rss_mb(daemon.pid)
    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    notes = [
        f"{runs} runs (after {warmup} untimed), one every ~{gap * 1000:.0f} ms plus its "
        f"ingest; p50 {ms(p50)}, p90 {ms(percentile(latencies, 90))}, p99 {ms(p99)}, "
        f"max {ms(max(latencies))}, min {ms(min(latencies))}",
        f"daemon after {len(paths)} runs: runs_ingested {status['runs_ingested']}, rejected "
        f"{status['rejected']}, last_error {status['last_error']!r}; VmRSS {rss:.1f} MB",
    ]
    rows = [
        Row("f", "report closed -> run visible, 1,000 tests, p50", p50, "s", 0.050,
            "goal 50 ms", "<= 50 ms", verdict(p50 <= 0.050), samples=latencies, notes=notes),
        Row("f", "report closed -> run visible, 1,000 tests, p99", p99, "s", 0.250,
            "goal 250 ms", "<= 250 ms", verdict(p99 <= 0.250)),
    ]  # fmt: skip
    for row in rows:
        print_row(row)
    return rows


# --- g: burst ------------------------------------------------------------------------------

WORKERS, PER_WORKER = 8, 25


def _targets(project: Path) -> list[list[Path]]:
    return [
        [project / "reports" / f"w{w}-{i}.json" for i in range(PER_WORKER)] for w in range(WORKERS)
    ]


def _sources(n_tests: int) -> list[list[Path]]:
    paths = report_files(n_tests, range(1, WORKERS * PER_WORKER + 1))
    return [paths[w * PER_WORKER : (w + 1) * PER_WORKER] for w in range(WORKERS)]


def _writer(sources: list[Path], targets: list[Path], ready: Any, gate: Any, out: Any) -> None:
    docs = []
    for path in sources:
        with path.open() as handle:
            docs.append(json.load(handle))
    ready.put(os.getpid())
    gate.wait()
    for doc, target in zip(docs, targets, strict=True):
        write_like_pytest_json_report(doc, target)
    out.put(time.monotonic())


@contextmanager
def _workers(target: Callable[..., None], args: list[tuple[Any, ...]]) -> Iterator[Any]:
    """Start one process per args, wait until each is ready, yield (gate, out queue, procs)."""
    ready, out, gate = MP.Queue(), MP.Queue(), MP.Event()
    procs = [MP.Process(target=target, args=(*a, ready, gate, out), daemon=True) for a in args]
    for proc in procs:
        proc.start()
    try:
        for _ in procs:
            ready.get(timeout=120)
        yield gate, out, procs
    finally:
        for proc in procs:  # our own workers only
            if proc.is_alive():
                proc.terminate()
            proc.join(timeout=10)


def daemon_burst(n_tests: int, database: str | None = None, timeout: float = 300) -> dict[str, Any]:
    """8 processes x 25 reports written at once into one watched project; what the daemon
    made of them."""
    sources = _sources(n_tests)
    with temp_dir() as tmp:
        project = tmp / "project"
        (project / "reports").mkdir(parents=True)
        targets = _targets(project)
        url = database or str(project / ".anvil" / "history.db")
        spec = Project(project, ("reports/*.json",), database)
        with RealDaemon(tmp / "home", [spec]) as daemon:
            reader = Reader(url)
            try:
                args = [(sources[w], targets[w]) for w in range(WORKERS)]
                with _workers(_writer, args) as (gate, out, _procs):
                    start = time.monotonic()
                    gate.set()
                    written = max(out.get(timeout=timeout) for _ in range(WORKERS)) - start
                expected = WORKERS * PER_WORKER
                seen = wait_for_runs(reader, expected, timeout=timeout, interval=0.005)
                elapsed = (seen - start) if seen is not None else None
                time.sleep(1.0)  # a late duplicate would show up here
                runs, paths, digests = reader.query(
                    'SELECT COUNT(*), COUNT(DISTINCT "report_path"), '
                    'COUNT(DISTINCT "report_sha256") FROM "execution"'
                )[0]
                results = reader.query('SELECT COUNT(*) FROM "execution_history"')[0][0]
            finally:
                reader.close()
            status = daemon.status()
            assert daemon.pid is not None
            rss = rss_mb(daemon.pid)
    errors = (
        status["rejected"] + len(status["pending_reports"]) + (1 if status["last_error"] else 0)
    )
    return {
        "expected": expected,
        "runs": runs,
        "lost": expected - paths,
        "duplicates": runs - min(paths, digests),
        "results": results,
        "expected_results": expected * n_tests,
        "errors": errors,
        "last_error": status["last_error"],
        "time": elapsed,
        "written": written,
        "rss": rss,
    }


def _seed_worker(db: Path, sources: list[Path], ready: Any, gate: Any, out: Any) -> None:
    ready.put(os.getpid())
    gate.wait()
    outcomes = []
    for path in sources:  # each run is a new `run_local_tests.py` process: a new connection
        try:
            seed = seed_way.SeedDatabase(db)
        except sqlite3.Error as exc:
            outcomes.append({"id": None, "expected": -1, "stored": 0, "errors": [str(exc)],
                             "stats": False})  # fmt: skip
            continue
        try:
            result = seed_way.record_run(seed, path)
        finally:
            seed.close()
        outcomes.append({"id": result.execution_id, "expected": result.expected,
                         "stored": result.stored, "errors": result.errors,
                         "stats": result.stats_updated})  # fmt: skip
    out.put((time.monotonic(), outcomes))


def seed_burst(n_tests: int, timeout: float) -> dict[str, Any]:
    """The same 8 x 25 runs recorded the seed's way by 8 processes into one SQLite file."""
    sources = _sources(n_tests)
    with temp_dir() as tmp:
        db = tmp / "project" / ".anvil" / "history.db"
        seed_way.SeedDatabase(db).close()  # the project has used it before: the schema exists
        outcomes: list[dict[str, Any]] = []
        finished: list[float] = []
        with _workers(_seed_worker, [(db, sources[w]) for w in range(WORKERS)]) as (
            gate,
            out,
            procs,
        ):
            start = time.monotonic()
            gate.set()
            deadline = start + timeout
            for _ in procs:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    done, results = out.get(timeout=remaining)
                except Exception:  # queue.Empty: the deadline passed
                    break
                finished.append(done)
                outcomes += results
        stored = seed_way_rows(db)
    expected_runs = WORKERS * PER_WORKER
    unfinished = expected_runs - len(outcomes)
    locked = sum(1 for o in outcomes for e in o["errors"] if "locked" in e)
    other = sum(1 for o in outcomes for e in o["errors"] if "locked" not in e)
    incomplete = sum(1 for o in outcomes if o["stored"] < n_tests) + unfinished
    ids = {o["id"] for o in outcomes if o["id"]}
    return {
        "expected": expected_runs,
        "locked": locked,
        "other_errors": other,
        "incomplete": incomplete,
        "unfinished": unfinished,
        "results": stored,
        "expected_results": expected_runs * n_tests,
        "stats_missed": sum(1 for o in outcomes if not o["stats"]) + unfinished,
        "run_ids": len(ids),
        "time": (max(finished) - start) if len(finished) == WORKERS else None,
        "timeout": timeout,
    }


def seed_way_rows(db: Path) -> int:
    con = sqlite3.connect(db, timeout=30)
    try:
        return int(con.execute("SELECT COUNT(*) FROM execution_history").fetchone()[0])
    finally:
        con.close()


def burst_row(figure: str, label: str, ours: dict[str, Any], seed: dict[str, Any] | None) -> Row:
    ok = (
        ours["errors"] == 0 and ours["lost"] == 0 and ours["duplicates"] == 0
        and ours["runs"] == ours["expected"] and ours["results"] == ours["expected_results"]
        and ours["time"] is not None
    )  # fmt: skip
    what = (
        f"{label}: {ours['runs']}/{ours['expected']} runs, {ours['errors']} errors, "
        f"{ours['lost']} lost, {ours['duplicates']} duplicates"
    )
    row = Row(figure, what, ours["time"], "s", goal="0 errors, 0 lost, 0 duplicates",
              verdict=verdict(ok))  # fmt: skip
    row.notes.append(
        f"anvild: {ours['runs']} runs, {ours['results']:,} of {ours['expected_results']:,} "
        f"results; writers done after {ms(ours['written'])}, every run visible after "
        f"{ms(ours['time']) if ours['time'] is not None else 'never (timeout)'}; "
        f"last_error {ours['last_error']!r}; daemon VmRSS {ours['rss']:.1f} MB"
    )
    if seed is not None:
        row.baseline = seed["time"]
        row.baseline_what = "the seed's way"
        if seed["time"] is not None and ours["time"]:
            row.ratio_text = f"{seed['time'] / ours['time']:.0f}x faster"
        row.notes.append(
            f"the seed's way: {seed['locked']} 'database is locked' errors, "
            f"{seed['other_errors']} other errors, {seed['incomplete']} runs incomplete "
            f"({seed['expected_results'] - seed['results']:,} of "
            f"{seed['expected_results']:,} results missing), statistics not updated after "
            f"{seed['stats_missed']} runs, {seed['run_ids']} distinct run ids for "
            f"{seed['expected']} runs (runs recorded within the same second share "
            f"`local-YYYYMMDD-HHMMSS` and merge), "
            + (
                f"time {ms(seed['time'])}"
                if seed["time"] is not None
                else f"not finished after {seed['timeout']:.0f} s ({seed['unfinished']} runs "
                "never recorded)"
            )
        )
    return row


def figure_g(mode: Mode, print_row: Callable[[Row], None]) -> list[Row]:
    small = mode.count(50, 100)
    rows = []
    ours = daemon_burst(small)
    seed = seed_burst(small, timeout=mode.pick(300, 600))
    rows.append(burst_row("g", f"burst 8 x 25 reports of {small} tests, daemon", ours, seed))
    if mode.quick:
        rows[-1].notes.insert(0, f"--quick: {small} tests per report instead of 100")
    print_row(rows[-1])
    big = daemon_burst(1_000)
    rows.append(burst_row("g", "burst 8 x 25 reports of 1,000 tests, daemon", big, None))
    rows[-1].notes.append(
        "the seed's way is not run at this size: 200,000 commits of ~1 ms on this disk"
    )
    print_row(rows[-1])
    return rows


# --- i: idle -------------------------------------------------------------------------------


def figure_i(mode: Mode, print_row: Callable[[Row], None]) -> list[Row]:
    seconds, settle, count = mode.count(30, 60), 5.0, 100
    with temp_dir() as tmp:
        projects = []
        for n in range(count):
            root = tmp / "projects" / f"p{n:03d}"
            for sub in (".pytest_cache", "reports", "tests"):
                (root / sub).mkdir(parents=True)
            projects.append(Project(root))
        with RealDaemon(tmp / "home", projects) as daemon:
            assert daemon.pid is not None
            pid = daemon.pid
            time.sleep(settle)  # the start-up rescan and watch set-up are done
            watched = len(daemon.status()["projects"])
            watches = inotify_watches(pid)
            cpu0, (threads, switches0), t0 = cpu_seconds(pid), wakeups(pid), time.monotonic()
            time.sleep(seconds)
            cpu1, (_, switches1), t1 = cpu_seconds(pid), wakeups(pid), time.monotonic()
            rss = rss_mb(pid)
    elapsed = t1 - t0
    cpu = (cpu1 - cpu0) / elapsed * 100
    per_second = (switches1 - switches0) / elapsed
    notes = [
        f"{watched} projects in the config, each with .pytest_cache/, reports/ and tests/; "
        f"{watches} inotify watches, {threads} threads; measured {elapsed:.1f} s after "
        f"{settle:.0f} s of settling; CPU {cpu1 - cpu0:.2f} s (utime+stime from "
        f"/proc/<pid>/stat, {os.sysconf('SC_CLK_TCK')} ticks/s)",
        f"context switches of all its threads: {switches1 - switches0} in {elapsed:.0f} s "
        f"({per_second:.1f}/s): an idle daemon that polled would wake up far more often",
    ]
    if mode.quick:
        notes.insert(0, f"--quick: {seconds} s instead of 60")
    rows = [
        Row("i", f"idle daemon, {count} projects: CPU over {seconds} s", cpu, "%", 0.5,
            "goal 0.5 %", "<= 0.5 %", verdict(cpu <= 0.5), notes=notes),
        Row("i", f"idle daemon, {count} projects: resident memory (VmRSS)", rss, "MB", 80.0,
            "goal 80 MB", "<= 80 MB", verdict(rss <= 80.0)),
    ]  # fmt: skip
    for row in rows:
        print_row(row)
    return rows


# --- k: start-up with many reports already there -----------------------------------------

START_FOLDERS = 20  # reports/r<NN>/, each with files // START_FOLDERS JUnit reports


def _tiny_junit(n: int) -> str:
    """A one-test JUnit report of run n (each run its own time stamp and duration)."""
    return (
        '<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" errors="0" '
        f'failures="0" skipped="0" tests="1" time="0.{n % 1000:03d}" '
        f'timestamp="2026-01-01T{n // 3600 % 24:02d}:{n // 60 % 60:02d}:{n % 60:02d}+00:00" '
        'hostname="bench"><testcase classname="tests.test_start" name="test_one" '
        f'time="0.{n % 1000:03d}"/></testsuite></testsuites>'
    )


class Foreground:
    """`anvild start --foreground` with NOTIFY_SOCKET: the time from spawning it to READY=1."""

    def __init__(self, daemon: RealDaemon, notify: Path) -> None:
        self.daemon = daemon
        self.notify = notify

    def start(self) -> tuple[subprocess.Popen[bytes], float]:
        import socket

        self.notify.unlink(missing_ok=True)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        listener.bind(str(self.notify))
        listener.settimeout(120)
        try:
            started = time.monotonic()
            proc = subprocess.Popen(
                [ANVILD, "start", "--foreground"],
                env={**self.daemon.env, "NOTIFY_SOCKET": str(self.notify)},
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=self.daemon.home,
            )  # fmt: skip
            try:
                while not listener.recv(4096).startswith(b"READY=1"):
                    pass
            except OSError as exc:
                proc.kill()
                proc.wait()
                raise BenchError(
                    f"no READY=1 within 120 s: {exc} {self.daemon.log_tail()}"
                ) from None
            return proc, time.monotonic() - started
        finally:
            listener.close()


def _stop_foreground(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _socket_status(daemon: RealDaemon) -> dict[str, Any]:
    """The daemon's status asked over its control socket from this process: polling it costs
    the daemon one answer, not a Python process per look on a 2-core machine."""
    from anvild import control, protocol

    sock = Path(daemon.env["XDG_RUNTIME_DIR"]) / "anvild" / control.SOCKET_NAME
    return control.ask(protocol.Status(), sock)


def _rescan_end(
    daemon: RealDaemon, timeout: float, interval: float = 0.02
) -> tuple[float, dict[str, Any]]:
    """Poll the status until the rescan is done: the moment (monotonic) and its counts."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rescan = _socket_status(daemon).get("rescan")
        if rescan is None:
            raise BenchError("the daemon's status has no rescan field")
        if not rescan["running"]:
            return time.monotonic(), rescan
        time.sleep(interval)
    raise BenchError(f"the rescan did not end within {timeout:.0f} s: {daemon.log_tail()}")


def figure_k(mode: Mode, print_row: Callable[[Row], None], files: int | None = None) -> list[Row]:
    files = files or mode.count(5_000, 20_000)
    restarts = mode.count(3, 5)
    with temp_dir() as tmp:
        project = tmp / "project"
        for n in range(files):
            folder = project / "reports" / f"r{n % START_FOLDERS:02d}"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"junit-{n:05d}.xml").write_text(_tiny_junit(n))
        daemon = RealDaemon(tmp / "home", [Project(project)])
        foreground = Foreground(daemon, tmp / "notify.sock")
        settled = Path(daemon.env["XDG_STATE_HOME"]) / "anvild" / "settled.jsonl"

        def one_start(
            forget: bool = False, interval: float = 0.02
        ) -> tuple[float, float, dict[str, Any]]:
            if forget:
                settled.unlink(missing_ok=True)
            proc, ready = foreground.start()
            spawned = time.monotonic() - ready
            try:
                ended, rescan = _rescan_end(daemon, timeout=3600, interval=interval)
                info = _socket_status(daemon)
            finally:
                _stop_foreground(proc)
            if info["rejected"] or info["pending"]:
                raise BenchError(f"rejected {info['rejected']}, pending {info['pending']}")
            return ready, ended - spawned, rescan

        # Bytecode compiled beforehand, as an installed package has it (this environment may
        # set PYTHONDONTWRITEBYTECODE: each start would compile anvild's modules again).
        import anvild

        subprocess.run([PYTHON, "-m", "compileall", "-q", str(Path(anvild.__file__).parent)],
                       check=True)  # fmt: skip
        first_ready, first_rescan, first = one_start(interval=0.5)
        readies, rescans, counts = [], [], []
        for _ in range(restarts):
            ready, rescan_time, rescan = one_start()
            readies.append(ready)
            rescans.append(rescan_time)
            counts.append(rescan)
        lost_ready, lost_rescan, lost = one_start(forget=True)
        stored = Reader(str(project / ".anvil" / "history.db"))
        try:
            runs = stored.runs()
        finally:
            stored.close()
        detached = []
        for _ in range(restarts):  # what a user waits for: `anvild start` as a process
            started = time.monotonic()
            proc = daemon.anvild("start")
            detached.append(time.monotonic() - started)
            if proc.returncode != 0:
                raise BenchError(f"`anvild start` failed: {proc.stderr.strip()}")
            daemon.pid = int(daemon.status()["pid"])
            _rescan_end(daemon, timeout=600)
            daemon.stop()
    ready = median(readies)
    notes = [
        *([f"--quick: {files:,} files instead of 20,000"] if mode.quick else []),
        f"{files:,} one-test JUnit reports in {START_FOLDERS} folders (`reports/**/*.xml`), "
        f"{runs:,} runs stored; READY = spawn of `anvild start --foreground` until its "
        "READY=1 datagram on NOTIFY_SOCKET (interpreter start and imports included); the "
        "rescan goes on after READY, through the worker's queue",
        f"restarts, every report settled before: READY {', '.join(ms(r) for r in readies)}; "
        f"rescan over after {', '.join(ms(r) for r in rescans)} "
        f"(read {counts[-1]['read']}, passed by size/mtime/inode {counts[-1]['unchanged']:,})",
        f"first start (nothing stored): READY {ms(first_ready)}, rescan over after "
        f"{ms(first_rescan)} (read {first['read']:,}: every run stored)",
        f"restart with the list of settled reports lost (`settled.jsonl` removed): READY "
        f"{ms(lost_ready)}, rescan over after {ms(lost_rescan)} (read {lost['read']:,}, "
        "each known stored by its sha256)",
        f"`anvild start` (detached; it returns when the control socket answers): "
        f"{', '.join(ms(d) for d in detached)}",
        "bytecode compiled before the first start (`compileall`), as pip leaves an installed "
        "package",
        "the machine was shared with other jobs while this ran: times are noisy",
    ]
    rows = [
        Row("k", f"daemon start with {files:,} report files in watched folders: time to READY",
            ready, "s", 1.0, "goal 1 s", "<= 1 s", verdict(ready <= 1.0), samples=readies,
            notes=notes),
        Row("k", "the same: `anvild start` returns (detached)", median(detached), "s", 1.0,
            "goal 1 s", "<= 1 s", verdict(median(detached) <= 1.0), samples=detached),
    ]  # fmt: skip
    for row in rows:
        print_row(row)
    return rows
