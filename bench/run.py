"""anvild's benchmarks (SPEC section 10): prints a table and writes bench/RESULTS.md.

    .venv/bin/python bench/run.py [--quick]

Every figure is measured against its baseline in the same run, on the same machine, with
the repetitions of both interleaved; times are medians. Reports come from bench/generate.py
and are cached under bench/out/ (gitignored); databases live in temporary directories.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # bench/ is not a package: found through sys.path
    ANVILD,
    BENCH,
    JSON_LOAD,
    PYTHON,
    BenchError,
    InProcess,
    Mode,
    Row,
    clean_env,
    db_bytes,
    fmt_ratio,
    fmt_value,
    fresh_ingest,
    history_rows,
    json_load,
    load,
    machine,
    median,
    report_files,
    run_process,
    statement_times,
    statements_note,
    temp_dir,
    timed,
    verdict,
)

__all__ = ["report_files"]  # profile_ingest.py imports it from here


# --- in-process ingest ---------------------------------------------------------------------


def figure_a(sizes: list[int], reps: dict[int, int]) -> list[Row]:
    import floor

    rows = []
    for n in sizes:
        (path,) = report_files(n, range(1, 2))
        fresh_ingest(path)  # warm-up: imports, page cache
        ours, theirs, floors = [], [], []
        with statement_times() as statements:
            for _ in range(reps[n]):
                theirs.append(timed(partial(json_load, path)))
                ours.append(fresh_ingest(path))
                if n == 100_000:
                    with temp_dir() as tmp:
                        floors.append(floor.fresh_floor(path, tmp))
        row = Row(
            "a", f"in-process ingest, {n:,} tests ({path.stat().st_size / 1e6:.1f} MB)",
            median(ours), "s", median(theirs), "json.load", samples=ours, baseline_samples=theirs,
        )  # fmt: skip
        if n == 100_000:
            row.goal = "<= 1.2x json.load"
            row.verdict = verdict(row.ratio is not None and row.ratio <= 1.2)
            row.notes.append(statements_note(statements, median(ours)))
            row.notes.append(
                "the rest: reading and parsing the report into records, the test-id lookups, "
                "building the rows in Python, the commit (`python bench/profile_ingest.py` "
                "profiles it)"
            )
            rows.append(row)
            print_row(row)
            row = Row(
                "a", f"in-process ingest, {n:,} tests, vs the floor (bench/floor.py)",
                median(ours), "s", median(floors), "msgspec + sorted executemany",
                goal="<= 1.1x the floor", samples=ours, baseline_samples=floors,
            )  # fmt: skip
            row.verdict = verdict(row.ratio is not None and row.ratio <= 1.1)
            row.notes.append(
                "the floor: a throwaway loader (bench/floor.py) writing the same rows into the "
                "same schema, indexes and pragmas, msgspec and one sorted executemany per table"
            )
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
            row.goal = "<= 1.6x"
            row.verdict = verdict(row.ratio is not None and row.ratio <= 1.6)
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


def figure_c(n_tests: int, runs: int, kind: str = "json") -> list[Row]:
    """kind "json": pytest-json-report documents (no test's start); "record": the same runs
    as anvild's session records, each result with its start."""
    paths = report_files(n_tests, range(1, runs + 2), kind)
    what = "" if kind == "json" else ", from session records (each result's start kept)"
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
        "c", f"ingest of a known suite, {n_tests:,} tests (median of {runs} runs){what}",
        median(again), "s", median(loads), "json.load" if kind == "json" else "json.loads per line",
        "(no goal)", samples=again,
        baseline_samples=loads, notes=[f"first ingest (empty database): {first * 1000:.1f} ms"],
    )  # fmt: skip
    size_row = Row(
        "c", f"growth per stored result, {n_tests:,} tests x {runs} runs{what}",
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

NOTES = """\
- a: the owner (writer thread, lock, fresh database with its schema) is opened before
  the clock starts, as in the daemon; timed = read the file + parse + provenance +
  one transaction storing the run, its results and the statistics, with the cyclic GC
  paused as the daemon's worker and `anvild ingest` pause it.
  Baseline: `json.load(open(path))` (stdlib, file read included).
- b: `anvild --db DB --project DIR ingest FILE` vs
  `python -c "import json,sys; json.load(open(sys.argv[1]))" FILE`, whole processes,
  a fresh database each time, after one untimed round that warms the page cache.
  --db/--project are global options: they go before the command name.
- c: after a first ingest, the same suite's next runs (same node ids, new outcomes
  and durations) into one database; growth = main file + -wal after
  `PRAGMA wal_checkpoint(TRUNCATE)`, divided by the history rows added.
- d: whole process, output captured (not a terminal), after one warm-up run.
- e: bench/seed_way.py is the seed's way as its document describes it: a plain
  `sqlite3.connect(path, timeout=30)` (rollback journal, synchronous=FULL), one INSERT
  and commit per result, then `SELECT ... GROUP BY entity` over all history and one
  upsert + commit per entity. Both databases hold the same earlier runs (anvild's built
  by its own ingest); each repetition starts from a copy of them. The ratio column says
  how many times faster anvild is.
- f: a real daemon (`anvild start`, HOME and XDG dirs in a scratch directory) watches a
  project; each report is written as pytest-json-report writes it (open 'w', json.dump,
  close) to `.pytest_cache/report.json`; the clock runs from close() until
  `SELECT COUNT(*) FROM execution` on a read-only WAL connection (polled every ~1 ms)
  shows the run. Each report is a distinct run of one 1,000-test suite.
- g: 8 processes (forked, reports loaded before a common start gate) each write 25
  reports back to back, `reports/w<N>-<i>.json` (the project watches `reports/*.json`
  besides the default globs, as `anvild watch --report 'reports/*.json'` adds it). Time
  = gate -> all 200 runs visible. Errors = rejected + pending reports + a last_error in
  `anvild status --json`; lost = reports without a run; duplicates = runs beyond one per
  report. The seed's way: 8 processes record the same 200 reports, a new connection per
  run (each run is a new script process), into one SQLite file.
- h: see bench/fig_history.py for how the history is built; the ingest is timed as in a,
  the commands as in d. The baseline of the stats rows is the same command on the
  control database (the same suite with one run: 10,000 results).
- i: a real daemon with 100 projects in its config; CPU = utime+stime of
  /proc/<pid>/stat over the window, memory = VmRSS of /proc/<pid>/status (MB = 10^6 B).
- j: as a and g, with a throwaway PostgreSQL database per measurement.
- l: see bench/fig_hostile.py: each hostile shape of about 100 MB is made in a scratch
  directory and one whole `anvild ingest` process is timed (fresh SQLite file), beside a
  baseline reading the same size; the goal is absolute (under 5 s) and whether it was
  stored or refused as it should be.
- m: not a time: precision = listed tests that are flaky / listed tests; recall = listed /
  flaky tests that failed in >= 5 % of their runs outside outages; each the worst seed's,
  all seeds' together beside it. Recall by the probability drawn (worse: a test drawn at
  5 % may never fail in 60 runs) is in the details.
- The project directory of every ingest is a scratch directory outside any git work
  tree, so provenance costs one failing `git status`.
- The load average is that of the whole machine: other work running beside the
  benchmark slows both sides of a ratio, the absolute times (f, h, i) more.
"""


def cells(row: Row) -> tuple[str, ...]:
    baseline = fmt_value(row.baseline, row.unit)
    if row.baseline_what and row.baseline is not None:
        baseline = f"{baseline} ({row.baseline_what})"
    ratio = row.ratio_text if row.ratio_text is not None else fmt_ratio(row.ratio)
    return (
        row.figure, row.what, fmt_value(row.measured, row.unit), baseline,
        ratio, row.goal, row.verdict,
    )  # fmt: skip


def print_row(row: Row) -> None:
    print_cells(cells(row))
    if row.verdict in ("error", "skipped") and row.notes:
        print(f"   {row.notes[0]}")


def print_cells(values: tuple[str, ...]) -> None:
    fig, what, ours, base, ratio, goal, verdict_ = values
    print(f"{fig:<3} {what:<70} {ours:>10}  {base:<32} {ratio:>7}  {goal:<20} {verdict_}",
          flush=True)  # fmt: skip


def summary(rows: list[Row]) -> list[str]:
    verdicts = [row.verdict for row in rows]
    met, missed = verdicts.count("meets"), verdicts.count("misses")
    lines = [f"**{met} of {met + missed} goals met, {missed} missed**"]
    others = [f"{verdicts.count(v)} {v}" for v in ("error", "skipped") if v in verdicts]
    if others:
        lines[0] += f" ({', '.join(others)})"
    lines[0] += "."
    misses = [row for row in rows if row.verdict == "misses"]
    if misses:
        lines += ["", "Missed:"]
        for row in misses:
            ratio = row.ratio_text if row.ratio_text is not None else fmt_ratio(row.ratio)
            lines.append(
                f"- {row.figure}, {row.what}: {fmt_value(row.measured, row.unit)} "
                f"(goal {row.goal}; ratio {ratio})"
            )
    return lines


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
        *summary(rows),
        "",
        "| " + " | ".join(HEADER) + " |",
        "|" + "---|" * len(HEADER),
        *("| " + " | ".join(cells(row)) + " |" for row in rows),
        "",
        "Times are medians unless the row says otherwise; the baseline of a row was measured",
        "in the same run, its repetitions interleaved with anvild's. The ratio is anvild /",
        "baseline, or how many times faster anvild is where it says so; where the baseline",
        "is a goal (c size, d, f, i) it is measured / goal.",
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
                f"  - {row.ours_label} samples: {ours} "
                f"(fastest {fmt_value(min(row.samples), row.unit)})"
            )
        if row.baseline_samples:
            label = row.baseline_what if row.figure != "d" else "`python -c pass`"
            theirs = ", ".join(fmt_value(v, row.unit) for v in row.baseline_samples)
            fastest = fmt_value(min(row.baseline_samples), row.unit)
            lines.append(f"  - {label} samples: {theirs} (fastest {fastest})")
    lines += ["", "## Notes", "", NOTES]
    return "\n".join(lines)


def figures(mode: Mode) -> list[tuple[str, Callable[[], list[Row]]]]:
    import fig_daemon
    import fig_flaky
    import fig_history
    import fig_hostile
    import fig_postgres
    import fig_scale
    import fig_seed

    sizes = [1_000, 100_000] if mode.quick else [1_000, 10_000, 100_000]
    reps = {1_000: 5, 10_000: 3, 100_000: 3} if mode.quick else {1_000: 11, 10_000: 7, 100_000: 5}
    print("generating reports ...", flush=True)
    for n in sizes:
        report_files(n, range(1, 2))
    return [
        ("a", partial(figure_a, sizes, reps)),
        ("b", partial(figure_b, sizes, reps)),
        ("c", partial(figure_c, 1_000, 20)),
        ("c", partial(figure_c, 1_000, 20, "record")),
        ("d", partial(figure_d, 5)),
        ("e", partial(fig_seed.figure_e, mode, print_row)),
        ("f", partial(fig_daemon.figure_f, mode, print_row)),
        ("g", partial(fig_daemon.figure_g, mode, print_row)),
        ("h", partial(fig_history.figure_h, mode, print_row)),
        ("i", partial(fig_daemon.figure_i, mode, print_row)),
        ("j", partial(fig_postgres.figure_j, mode, print_row)),
        ("k", partial(fig_daemon.figure_k, mode, print_row)),
        ("l", partial(fig_hostile.figure_l, mode, print_row)),
        ("m", partial(fig_scale.figure_m, mode, print_row)),
        ("n", partial(fig_flaky.figure_n, mode, print_row)),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer sizes and repetitions")
    parser.add_argument(
        "--results", type=Path, default=BENCH / "RESULTS.md", help="where to write the results"
    )
    parser.add_argument(
        "--only", metavar="LETTERS", default="", help="run these figures only, e.g. --only fg"
    )
    args = parser.parse_args()
    mode = Mode(args.quick)
    started = time.perf_counter()
    info = machine()
    for key, value in info.items():
        print(f"{key:>7}: {value}")
    todo = figures(mode)
    print()
    print_cells(HEADER)
    rows: list[Row] = []
    for name, figure in todo:
        if args.only and name not in args.only:
            continue
        try:
            rows += figure()
        except Exception as exc:  # one broken figure must not hide the others
            failed = Row(name, "could not be measured", None, "", verdict="error")
            failed.notes.append(f"{type(exc).__name__}: {exc}".replace("\n", " ")[:600])
            print_row(failed)
            rows.append(failed)
    elapsed = time.perf_counter() - started
    info["load average (1 min) at end"] = load()
    if args.only:
        info["figures"] = f"only {args.only} (--only)"
    text = markdown(rows, info, args.quick, elapsed)
    # bench/fig_plugin.py writes its own section (whole pytest sessions, minutes): kept as is
    import fig_plugin

    old = args.results.read_text() if args.results.exists() else ""
    if fig_plugin.BEGIN in old and fig_plugin.END in old:
        start, end = old.index(fig_plugin.BEGIN), old.index(fig_plugin.END) + len(fig_plugin.END)
        text = text.rstrip("\n") + "\n\n" + old[start:end] + "\n"
    args.results.write_text(text)
    print(f"\nwrote {args.results} in {elapsed:.0f} s")


if __name__ == "__main__":
    main()
