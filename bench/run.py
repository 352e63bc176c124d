"""anvild's benchmarks (SPEC section 10): prints a table and writes bench/RESULTS.md.

    .venv/bin/python bench/run.py [--quick]

Every figure is measured against its baseline in the same run, on the same machine, with
the repetitions of both interleaved; times are medians. Reports come from bench/generate.py
and are cached under bench/out/ (gitignored); databases live in temporary directories.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
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
from functools import partial
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))

import generate  # noqa: E402 - bench/ is not a package

PYTHON = sys.executable
ANVILD = str(Path(sys.executable).parent / "anvild")
JSON_LOAD = "import json,sys; json.load(open(sys.argv[1]))"


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

    @property
    def ratio(self) -> float | None:
        if self.measured is None or not self.baseline:
            return None
        return self.measured / self.baseline


class BenchError(Exception):
    """A measurement that could not be taken (anvild failed): reported, not fatal."""


# --- helpers -------------------------------------------------------------------------------


def median(values: list[float]) -> float:
    return statistics.median(values)


def verdict(ok: bool) -> str:
    return "meets" if ok else "misses"


def fmt_value(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "s":
        return f"{value * 1000:.1f} ms" if value < 1 else f"{value:.3f} s"
    if unit == "B":
        return f"{value:.1f} B"
    return f"{value:g} {unit}"


def fmt_ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


@contextmanager
def temp_dir() -> Iterator[Path]:
    """A scratch directory outside any git work tree (the project root of an ingest)."""
    with tempfile.TemporaryDirectory(prefix="anvild-bench-") as name:
        yield Path(name)


def clean_env(home: Path) -> dict[str, str]:
    """The environment of the measured processes: XDG dirs in a scratch place, no CI vars."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANVILD_")}
    env.update(
        XDG_CONFIG_HOME=str(home / "config"),
        XDG_STATE_HOME=str(home / "state"),
        XDG_CACHE_HOME=str(home / "cache"),
    )
    return env


def timed(func: Callable[[], object]) -> float:
    gc.collect()
    start = time.perf_counter()
    func()
    return time.perf_counter() - start


def run_process(args: list[str], env: dict[str, str]) -> float:
    """Wall time of one process, start to exit; a failure stops the benchmark."""
    gc.collect()
    start = time.perf_counter()
    proc = subprocess.run(args, capture_output=True, env=env, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise BenchError(
            f"`{' '.join(args)}` exited {proc.returncode}: {proc.stderr.decode()[-500:]}"
        )
    return elapsed


def json_load(path: Path) -> None:
    with path.open() as handle:
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


def history_rows(db: Path) -> int:
    con = sqlite3.connect(db)
    try:
        return int(con.execute('SELECT COUNT(*) FROM "execution_history"').fetchone()[0])
    finally:
        con.close()


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


def report_files(n_tests: int, variants: range) -> list[Path]:
    directory = reports_dir()
    paths = [directory / f"report-{n_tests}-v{v}.json" for v in variants]
    if not all(p.exists() for p in paths):
        suite = generate.build_suite(n_tests)
        for variant, path in zip(variants, paths, strict=True):
            if not path.exists():
                tmp = path.with_suffix(".tmp")
                generate.write_report(tmp, suite, variant)
                tmp.replace(path)
    return paths


# --- in-process ingest ---------------------------------------------------------------------


class InProcess:
    """anvild's ingest in this process as the daemon does it: an open owner, then per report
    read + parse (prepare) + one store_run transaction (history and statistics)."""

    def __init__(self, project: Path, db: Path) -> None:
        from anvild.ingest import IngestOptions
        from anvild.store.owner import Owner

        self.options = IngestOptions(project)
        self.owner = Owner(str(db), project / "state").open(timeout=5.0)

    def ingest(self, path: Path) -> None:
        from anvild.ingest import ReportSource, prepare
        from anvild.store.write import store_run

        source = ReportSource(str(path), path.read_bytes(), explicit=True)
        submission = prepare(source, self.options)
        stored = self.owner.run(lambda db: store_run(db, submission))
        if stored.already_stored or stored.tests == 0:
            raise BenchError(f"{path} was not stored: {stored}")

    def close(self) -> None:
        self.owner.close()


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


def figure_a(sizes: list[int], reps: dict[int, int]) -> list[Row]:
    rows = []
    for n in sizes:
        (path,) = report_files(n, range(1, 2))
        fresh_ingest(path)  # warm-up: imports, page cache
        ours, theirs = [], []
        for _ in range(reps[n]):
            theirs.append(timed(partial(json_load, path)))
            ours.append(fresh_ingest(path))
        row = Row(
            "a", f"in-process ingest, {n:,} tests ({path.stat().st_size / 1e6:.1f} MB)",
            median(ours), "s", median(theirs), "json.load", samples=ours, baseline_samples=theirs,
        )  # fmt: skip
        if n == 100_000:
            row.goal = "<= 1.0x json.load"
            row.verdict = verdict(row.ratio is not None and row.ratio <= 1.0)
        else:
            row.goal = "(goal is for 100k)"
        rows.append(row)
        print_row(row)
    return rows


# --- ingest as a process -------------------------------------------------------------------


def figure_b(sizes: list[int], reps: dict[int, int]) -> list[Row]:
    rows = []
    for n in sizes:
        (path,) = report_files(n, range(1, 2))
        ours, theirs = [], []
        for rep in range(reps[n] + 1):
            with temp_dir() as tmp:
                project = tmp / "project"
                project.mkdir()
                env = clean_env(tmp)
                db = str(tmp / "history.db")
                base = run_process([PYTHON, "-c", JSON_LOAD, str(path)], env)
                args = [ANVILD, "--db", db, "--project", str(project), "ingest", str(path)]
                mine = run_process(args, env)
                if rep:  # the first round warms the page cache and .pyc files
                    theirs.append(base)
                    ours.append(mine)
        row = Row(
            "b", f"`anvild ingest` process, {n:,} tests", median(ours), "s", median(theirs),
            "python -c json.load", samples=ours, baseline_samples=theirs,
        )  # fmt: skip
        if n == 100_000:
            row.goal = "<= 1.5x"
            row.verdict = verdict(row.ratio is not None and row.ratio <= 1.5)
        else:
            row.goal = "(goal is for 100k)"
        rows.append(row)
        print_row(row)
    return rows


# --- a suite the database already knows ----------------------------------------------------


def table_bytes(db: Path) -> dict[str, int]:
    """Bytes per table and index (SQLite's dbstat), empty when this SQLite lacks it."""
    con = sqlite3.connect(db)
    try:
        query = "SELECT name, SUM(pgsize) FROM dbstat GROUP BY name"
        return {name: int(size) for name, size in con.execute(query)}
    except sqlite3.Error:
        return {}
    finally:
        con.close()


def figure_c(n_tests: int, runs: int) -> list[Row]:
    paths = report_files(n_tests, range(1, runs + 2))
    with temp_dir() as tmp:
        project = tmp / "project"
        project.mkdir()
        db = tmp / "history.db"
        anvild = InProcess(project, db)
        try:
            first = timed(partial(anvild.ingest, paths[0]))
        finally:
            anvild.close()
        size_before, rows_before, tables_before = db_bytes(db), history_rows(db), table_bytes(db)
        anvild = InProcess(project, db)
        again, loads = [], []
        try:
            for path in paths[1:]:
                loads.append(timed(partial(json_load, path)))
                again.append(timed(partial(anvild.ingest, path)))
        finally:
            anvild.close()
        size_after, rows_after, tables_after = db_bytes(db), history_rows(db), table_bytes(db)
    added = rows_after - rows_before
    if added != runs * n_tests:
        raise BenchError(f"expected {runs * n_tests} new results, found {added}")
    per_result = (size_after - size_before) / added
    time_row = Row(
        "c", f"ingest of a known suite, {n_tests:,} tests (median of {runs} runs)",
        median(again), "s", median(loads), "json.load", "(no goal)", samples=again,
        baseline_samples=loads, notes=[f"first ingest (empty database): {first * 1000:.1f} ms"],
    )  # fmt: skip
    size_row = Row(
        "c", f"growth per stored result, {n_tests:,} tests x {runs} runs",
        per_result, "B", 64.0, "goal 64 B", "<= 64 B", verdict(per_result <= 64.0),
        notes=[f"{size_after - size_before:,} B for {added:,} results"],
    )  # fmt: skip
    growth = {
        name: tables_after.get(name, 0) - tables_before.get(name, 0)
        for name in tables_after.keys() | tables_before.keys()
    }
    for name, grown in sorted(growth.items(), key=lambda item: -item[1]):
        if grown:
            size_row.notes.append(f"`{name}`: {grown:,} B = {grown / added:.1f} B/result")
    for row in (time_row, size_row):
        print_row(row)
    return [time_row, size_row]


# --- stats show ----------------------------------------------------------------------------


def figure_d(reps: int, n_tests: int = 100, runs: int = 5) -> list[Row]:
    paths = report_files(n_tests, range(1, runs + 1))
    with temp_dir() as tmp:
        project = tmp / "project"
        project.mkdir()
        db = tmp / "history.db"
        anvild = InProcess(project, db)
        try:
            for path in paths:
                anvild.ingest(path)
        finally:
            anvild.close()
        db_bytes(db)
        env = clean_env(tmp)
        args = [ANVILD, "--db", str(db), "--project", str(project), "stats", "show"]
        bare = [PYTHON, "-c", "pass"]
        run_process(args, env)  # warm-up
        ours, floor = [], []
        for _ in range(reps):
            floor.append(run_process(bare, env))
            ours.append(run_process(args, env))
    measured = median(ours)
    row = Row(
        "d", f"`anvild stats show`, whole process ({n_tests} tests x {runs} runs)",
        measured, "s", 0.150, "goal 150 ms", "<= 150 ms", verdict(measured <= 0.150),
        samples=ours, baseline_samples=floor,
    )  # fmt: skip
    row.notes.append(f"for scale, `python -c pass`: {median(floor) * 1000:.1f} ms (median)")
    print_row(row)
    print(f"   ({row.notes[0]})")
    return [row]


# --- output --------------------------------------------------------------------------------

HEADER = ("fig", "what", "anvild", "baseline", "ratio", "goal", "verdict")


def cells(row: Row) -> tuple[str, ...]:
    baseline = fmt_value(row.baseline, row.unit)
    if row.baseline_what and row.baseline is not None:
        baseline = f"{baseline} ({row.baseline_what})"
    return (
        row.figure, row.what, fmt_value(row.measured, row.unit), baseline,
        fmt_ratio(row.ratio), row.goal, row.verdict,
    )  # fmt: skip


def print_row(row: Row) -> None:
    print_cells(cells(row))


def print_cells(values: tuple[str, ...]) -> None:
    fig, what, ours, base, ratio, goal, verdict_ = values
    print(f"{fig:<3} {what:<70} {ours:>10}  {base:<32} {ratio:>7}  {goal:<20} {verdict_}")


def markdown(rows: list[Row], info: dict[str, str], quick: bool, elapsed: float) -> str:
    lines = [
        "# anvild benchmark results",
        "",
        f"Written by `python bench/run.py{' --quick' if quick else ''}` "
        f"({'quick' if quick else 'full'} mode, {elapsed:.0f} s). "
        "See bench/README.md for what each figure means.",
        "",
        "| machine | |",
        "|---|---|",
        *(f"| {key} | {value} |" for key, value in info.items()),
        "",
        "| " + " | ".join(HEADER) + " |",
        "|" + "---|" * len(HEADER),
        *("| " + " | ".join(cells(row)) + " |" for row in rows),
        "",
        "Times are medians; the baseline of a row was measured in the same run, its repetitions",
        "interleaved with anvild's. The ratio is anvild / baseline (for c and d: measured / goal).",
        "",
        "## Details",
        "",
    ]
    for row in rows:
        lines.append(f"- {row.figure}, {row.what}")
        lines += [f"  - {note}" for note in row.notes]
        if row.samples:
            ours = ", ".join(fmt_value(v, row.unit) for v in row.samples)
            lines.append(
                f"  - anvild samples: {ours} (fastest {fmt_value(min(row.samples), row.unit)})"
            )
        if row.baseline_samples:
            label = row.baseline_what if row.figure != "d" else "`python -c pass`"
            theirs = ", ".join(fmt_value(v, row.unit) for v in row.baseline_samples)
            fastest = fmt_value(min(row.baseline_samples), row.unit)
            lines.append(f"  - {label} samples: {theirs} (fastest {fastest})")
    lines += [
        "",
        "## Notes",
        "",
        "- a: the owner (writer thread, lock, fresh database with its schema) is opened before",
        "  the clock starts, as in the daemon; timed = read the file + parse + provenance +",
        "  one transaction storing the run, its results and the statistics.",
        "  Baseline: `json.load(open(path))` (stdlib, file read included).",
        "- b: `anvild --db DB --project DIR ingest FILE` vs",
        '  `python -c "import json,sys; json.load(open(sys.argv[1]))" FILE`, whole processes,',
        "  a fresh database each time, after one untimed round that warms the page cache.",
        "  --db/--project are global options: they go before the command name.",
        "- c: after a first ingest, the same suite's next runs (same node ids, new outcomes",
        "  and durations) into one database; growth = main file + -wal after",
        "  `PRAGMA wal_checkpoint(TRUNCATE)`, divided by the history rows added.",
        "- d: whole process, output captured (not a terminal), after one warm-up run.",
        "- The project directory of every ingest is a scratch directory outside any git work",
        "  tree, so provenance costs one failing `git status`.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer sizes and repetitions")
    parser.add_argument(
        "--results", type=Path, default=BENCH / "RESULTS.md", help="where to write the results"
    )
    args = parser.parse_args()
    started = time.perf_counter()
    info = machine()
    for key, value in info.items():
        print(f"{key:>7}: {value}")
    sizes = [1_000, 100_000] if args.quick else [1_000, 10_000, 100_000]
    reps = {1_000: 5, 10_000: 3, 100_000: 3} if args.quick else {1_000: 11, 10_000: 7, 100_000: 5}
    print("generating reports ...", flush=True)
    for n in sizes:
        report_files(n, range(1, 2))
    print()
    print_cells(HEADER)
    figures: list[tuple[str, Callable[[], list[Row]]]] = [
        ("a", partial(figure_a, sizes, reps)),
        ("b", partial(figure_b, sizes, reps)),
        ("c", partial(figure_c, 1_000, 20)),
        ("d", partial(figure_d, 5)),
    ]
    rows: list[Row] = []
    for name, figure in figures:
        try:
            rows += figure()
        except Exception as exc:  # one broken figure must not hide the others
            failed = Row(name, "could not be measured", None, "", verdict="error")
            failed.notes.append(f"{type(exc).__name__}: {exc}".replace("\n", " ")[:600])
            print_row(failed)
            print(f"   {failed.notes[0]}")
            rows.append(failed)
    elapsed = time.perf_counter() - started
    info["load average (1 min) at end"] = load()
    args.results.write_text(markdown(rows, info, args.quick, elapsed))
    print(f"\nwrote {args.results} in {elapsed:.0f} s")


if __name__ == "__main__":
    main()
