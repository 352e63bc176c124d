"""What every figure of the benchmarks shares: the result row, timing helpers, the machine,
the cached reports and anvild's in-process ingest.

bench/ is not a package: run.py puts this directory on sys.path and the figure modules
import each other by their plain names.
"""

from __future__ import annotations

import gc
import hashlib
import json
import math
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

import generate  # noqa: E402 - bench/ is not a package


def compile_sources() -> None:
    """Byte-compile anvild's sources, as pip and pipx do when they install it: an editable
    checkout run with PYTHONDONTWRITEBYTECODE set would compile every module in every
    measured process (about 0.1 s of each command's time)."""
    import compileall

    for package in ("anvild", "anvild_pytest"):
        if (REPO / package).is_dir():
            compileall.compile_dir(REPO / package, quiet=1)


compile_sources()

PYTHON = sys.executable
ANVILD = str(Path(sys.executable).parent / "anvild")
JSON_LOAD = "import json,sys; json.load(open(sys.argv[1]))"
PG_SERVER = os.environ.get("ANVILD_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")


@dataclass(slots=True)
class Row:
    """One line of the results: anvild's number beside its baseline and the goal."""

    figure: str
    what: str
    measured: float | None
    unit: str
    baseline: float | None = None
    baseline_what: str = ""
    goal: str = ""
    verdict: str = "n/a"
    samples: list[float] = field(default_factory=list)
    baseline_samples: list[float] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    ratio_text: str | None = None  # shown instead of anvild / baseline (e.g. "70x faster")
    ours_label: str = "anvild"  # what `samples` are, in the details

    @property
    def ratio(self) -> float | None:
        if self.measured is None or not self.baseline:
            return None
        return self.measured / self.baseline


class BenchError(Exception):
    """A measurement that could not be taken (anvild failed): reported, not fatal."""


@dataclass(frozen=True, slots=True)
class Mode:
    """Sizes and repetitions: --quick or full."""

    quick: bool

    def pick(self, quick: float, full: float) -> float:
        return quick if self.quick else full

    def count(self, quick: int, full: int) -> int:
        return quick if self.quick else full


# --- helpers -------------------------------------------------------------------------------


def median(values: list[float]) -> float:
    return statistics.median(values)


def percentile(values: list[float], pct: float) -> float:
    """The pct-th percentile by the nearest-rank method (p99 of 100 samples is the 99th)."""
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def verdict(ok: bool) -> str:
    return "meets" if ok else "misses"


def fmt_value(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "s":
        if value < 0.01:
            return f"{value * 1000:.2f} ms"
        return f"{value * 1000:.1f} ms" if value < 1 else f"{value:.3f} s"
    if unit == "B":
        return f"{value:.1f} B"
    if unit == "%":
        return f"{value:.3f} %"
    if unit == "MB":
        return f"{value:.1f} MB"
    return f"{value:g} {unit}"


def fmt_ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def ms(seconds: float) -> str:
    return fmt_value(seconds, "s")


@contextmanager
def temp_dir(prefix: str = "anvild-bench-") -> Iterator[Path]:
    """A scratch directory outside any git work tree (the project root of an ingest)."""
    with tempfile.TemporaryDirectory(prefix=prefix) as name:
        yield Path(name).resolve()


def clean_env(home: Path) -> dict[str, str]:
    """The environment of the measured processes: HOME and every XDG dir in a scratch place,
    no ANVILD_* variables, so the user's own configuration and daemon never leak in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANVILD_")}
    env["HOME"] = str(home)
    for var, sub in (
        ("XDG_CONFIG_HOME", "config"),
        ("XDG_STATE_HOME", "state"),
        ("XDG_CACHE_HOME", "cache"),
        ("XDG_DATA_HOME", "data"),
        ("XDG_RUNTIME_DIR", "run"),
    ):
        path = home / sub
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        env[var] = str(path)
    return env


@contextmanager
def private_env(env: dict[str, str]) -> Iterator[None]:
    """This process's environment replaced by env for a while (anvild reads XDG dirs)."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def timed(func: Callable[[], object]) -> float:
    gc.collect()
    start = time.perf_counter()
    func()
    return time.perf_counter() - start


def run_process(args: list[str], env: dict[str, str], cwd: Path | None = None) -> float:
    """Wall time of one process, start to exit; a failure stops the benchmark."""
    gc.collect()
    start = time.perf_counter()
    proc = subprocess.run(args, capture_output=True, env=env, check=False, cwd=cwd)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise BenchError(
            f"`{' '.join(args)}` exited {proc.returncode}: {proc.stderr.decode()[-500:]}"
        )
    return elapsed


def json_load(path: Path) -> None:
    """A report read as a reader must at least: json.load, or json.loads per line (.jsonl)."""
    with path.open() as handle:
        if path.suffix == ".jsonl":
            for line in handle:
                json.loads(line)
        else:
            json.load(handle)


def db_bytes(db: Path) -> int:
    """Size of the database once its WAL is checkpointed into it (main file + -wal)."""
    con = sqlite3.connect(db)
    try:
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        con.close()
    wal = db.with_name(db.name + "-wal")
    return db.stat().st_size + (wal.stat().st_size if wal.exists() else 0)


def scalar(db: Path, sql: str) -> int:
    con = sqlite3.connect(db)
    try:
        return int(con.execute(sql).fetchone()[0])
    finally:
        con.close()


def history_rows(db: Path) -> int:
    return scalar(db, 'SELECT COUNT(*) FROM "execution_history"')


# --- the machine ---------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _ram() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024**2:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def _disk() -> str:
    """The filesystem of the temporary directory, where every database of the run lives."""
    try:
        out = (
            subprocess.run(
                ["df", "-hT", tempfile.gettempdir()], capture_output=True, text=True, check=True
            )
            .stdout.splitlines()[-1]
            .split()
        )
        return f"{out[1]} on {out[0]} ({tempfile.gettempdir()})"
    except (OSError, subprocess.CalledProcessError, IndexError):
        return "unknown"


def _git(*args: str) -> str:
    proc = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True)
    return proc.stdout.strip() if proc.returncode == 0 else ""


def machine() -> dict[str, str]:
    commit = _git("rev-parse", "--short", "HEAD") or "unknown"
    if _git("status", "--porcelain", "--", "anvild"):
        commit += " + uncommitted changes in anvild/"
    return {
        "CPU": _cpu_model(),
        "cores": str(os.cpu_count()),
        "RAM": _ram(),
        "disk": _disk(),
        "OS": platform.platform(terse=True),
        "Python": platform.python_version(),
        "SQLite": sqlite3.sqlite_version,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "commit": commit,
        "load average (1 min) at start": load(),
    }


def load() -> str:
    """The 1-minute load average: other work on the machine skews every figure."""
    try:
        return f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} cores"
    except OSError:
        return "unknown"


# --- reports -------------------------------------------------------------------------------


def reports_dir() -> Path:
    """Generated reports, cached per version of generate.py."""
    digest = hashlib.sha256(Path(generate.__file__).read_bytes()).hexdigest()[:10]
    return BENCH / "out" / f"reports-{digest}"


def report_files(n_tests: int, variants: range, kind: str = "json") -> list[Path]:
    """The generated runs of a suite: pytest-json-report documents, or (kind "record") the
    same runs as anvild's session records."""
    directory = reports_dir()
    suffix, write = (
        (".jsonl", generate.write_record) if kind == "record" else (".json", generate.write_report)
    )
    paths = [directory / f"{kind}-{n_tests}-v{v}{suffix}" for v in variants]
    if not all(p.exists() for p in paths):
        suite = generate.build_suite(n_tests)
        for variant, path in zip(variants, paths, strict=True):
            if not path.exists():
                tmp = path.with_suffix(".tmp")
                write(tmp, suite, variant)
                tmp.replace(path)
    return paths


# --- in-process ingest ---------------------------------------------------------------------


class InProcess:
    """anvild's ingest in this process as `anvild ingest` and the daemon's remote ingest do it
    (store_all): an open owner, then per report read + parse + one store_run transaction
    (history and statistics)."""

    def __init__(self, project: Path, db: Path | str, state: Path | None = None) -> None:
        """state: the owner's state directory (its lock), else `project/state`."""
        from anvild.ingest import IngestOptions
        from anvild.store.owner import Owner

        # the size cap (max_report_mb) raised past figure m's 700 MB report, as its user would
        self.options = IngestOptions(project, report_limit=4 << 30)
        self.owner = Owner(str(db), state or project / "state").open(timeout=5.0)

    def ingest(self, path: Path) -> None:
        """The report at path read, parsed and stored as `anvild ingest` does it (store_all:
        its bytes let go once parsed)."""
        from anvild.ingest import store_all

        (event,) = store_all(self.owner, [path], self.options)
        if event.stored is None or event.stored.already_stored or event.stored.tests == 0:
            raise BenchError(f"{path} was not stored: {event}")

    def ingest_bytes(self, name: str, data: bytes) -> None:
        from anvild.ingest import ReportSource, no_gc, prepare
        from anvild.store.write import store_run

        with no_gc():  # as the daemon and `anvild ingest` do
            source = ReportSource(name, data, explicit=True)
            submission = prepare(source, self.options)
            stored = self.owner.run(lambda db: store_run(db, submission))
        if stored.already_stored or stored.tests == 0:
            raise BenchError(f"{name} was not stored: {stored}")

    def settle(self) -> tuple[float, int]:
        """Let the owner do what it does when it idles between runs (the write-ahead log copied
        into the database, the page cache given back), and wait for it: its time, and the
        pages the log held (written by the commits since the last idle moment)."""
        from anvild.store import backend

        def idle(db: Any) -> int:
            frames = db.execute_sql("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1]
            backend.checkpoint_when_idle(db)
            return int(frames)

        start = time.perf_counter()
        frames = self.owner.run(idle)
        return time.perf_counter() - start, frames

    def close(self) -> None:
        self.owner.close()

    def __enter__(self) -> InProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def fresh_ingest(path: Path) -> float:
    """Time of one ingest of path into a new, empty database (opening it not counted)."""
    with temp_dir() as tmp:
        project = tmp / "project"
        project.mkdir()
        anvild = InProcess(project, tmp / "history.db")
        try:
            return timed(lambda: anvild.ingest(path))
        finally:
            anvild.close()


# --- where an ingest's statements spend their time -----------------------------------------


@contextmanager
def statement_times() -> Iterator[dict[str, list[float]]]:
    """Time each bulk statement of anvild's ingest transaction (anvild.store.backend's
    bulk_execute, called by store_run for the tests, history, statistics and tracebacks),
    by table and verb. Measures only: the statements run unchanged."""
    from anvild.store import backend

    times: dict[str, list[float]] = {}
    original = backend.bulk_execute

    def timed_bulk(db: object, sql: str, rows: Any, **options: Any) -> None:
        # rows made as they are written (a generator) are counted as they pass
        count = [len(rows)] if isinstance(rows, list | tuple) else [0]

        def counted() -> Iterator[Any]:
            for row in rows:
                count[0] += 1
                yield row

        start = time.perf_counter()
        try:
            original(db, sql, rows if isinstance(rows, list | tuple) else counted(), **options)  # type: ignore[arg-type]
        finally:
            verb = sql.split(None, 1)[0]
            table = sql.split('"')[1] if '"' in sql else "?"
            key = f"{verb} {table} ({count[0]} rows)"
            times.setdefault(key, []).append(time.perf_counter() - start)

    backend.bulk_execute = timed_bulk  # type: ignore[assignment]
    try:
        yield times
    finally:
        backend.bulk_execute = original  # type: ignore[assignment]


def statements_note(times: dict[str, list[float]], total: float) -> str:
    parts = [
        f"{key} {fmt_value(median(values), 's')}"
        for key, values in sorted(times.items(), key=lambda kv: -median(kv[1]))
        if median(values) >= 0.0005
    ]
    spent = sum(median(values) for values in times.values())
    return (
        f"where the time goes (medians): the bulk statements of store_run take "
        f"{fmt_value(spent, 's')} of {fmt_value(total, 's')}: " + ", ".join(parts)
    )
