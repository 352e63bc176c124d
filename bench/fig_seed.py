"""Figure e: anvild's ingest against the seed's way, into databases holding the same history.

Both databases get the same earlier runs (variants 1..k of one generated suite): anvild's
through its own ingest (one store_run per report, as the daemon stores them), the seed's as
the rows its per-result inserts would have written, in bulk (setup, not timed), then one
statistics recompute. Both are snapshotted; before each repetition each gets its snapshot
back, so every repetition records the same next run (variant k+1, a file) into the same
history. Timed: read + parse + store + statistics, the database connection already open
(the daemon holds its owner open; the seed's script opens its connection before it reads the
report, which is not counted either).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import generate
import seed_way
from common import (
    BenchError,
    InProcess,
    Mode,
    Row,
    db_bytes,
    history_rows,
    median,
    ms,
    report_files,
    scalar,
    temp_dir,
    timed,
    verdict,
)

GOAL = 50.0


def _build(tmp: Path, n_tests: int, earlier: int) -> tuple[Path, Path, Path]:
    """anvild's and the seed's databases with the same `earlier` runs; their snapshots."""
    project = tmp / "project"
    project.mkdir()
    suite = generate.build_suite(n_tests)
    seed = seed_way.SeedDatabase(tmp / "seed-snapshot.db")
    with InProcess(project, tmp / "anvild-snapshot.db") as anvild:
        for variant in range(1, earlier + 1):
            report = generate.report(suite, variant)
            anvild.ingest_bytes(f"history-v{variant}.json", json.dumps(report).encode())
            seed_way.preload(seed, [(report, report["created"])])
    seed_way.preload_statistics(seed)
    seed.close()
    db_bytes(tmp / "anvild-snapshot.db")  # checkpointed: the main file is the whole database
    return project, tmp / "anvild-snapshot.db", tmp / "seed-snapshot.db"


def _restore(snapshot: Path, work: Path) -> Path:
    for suffix in ("", "-wal", "-shm", "-journal", ".owner.lock"):
        work.with_name(work.name + suffix).unlink(missing_ok=True)
    shutil.copyfile(snapshot, work)
    return work


def _seed_run(db: Path, report: Path) -> tuple[seed_way.Outcome, float]:
    """One run recorded the seed's way, its connection opened before the clock."""
    seed_db = seed_way.SeedDatabase(db)
    outcome: list[seed_way.Outcome] = []
    try:
        took = timed(lambda: outcome.append(seed_way.record_run(seed_db, report)))
    finally:
        seed_db.close()
    return outcome[0], took


def _one_size(n_tests: int, earlier: int, reps: int, with_goal: bool) -> Row:
    (path,) = report_files(n_tests, range(earlier + 1, earlier + 2))
    ours, theirs, phases = [], [], []
    with temp_dir() as tmp:
        project, anvild_snap, seed_snap = _build(tmp, n_tests, earlier)
        before = history_rows(anvild_snap)
        for _ in range(reps):
            outcome, took = _seed_run(_restore(seed_snap, tmp / "seed.db"), path)
            theirs.append(took)
            if outcome.errors or outcome.stored != n_tests:
                raise BenchError(f"the seed's way failed: {outcome}")
            phases.append(outcome.phases)
            work = _restore(anvild_snap, tmp / "anvild.db")
            with InProcess(project, work) as anvild:
                ours.append(timed(lambda: anvild.ingest(path)))
            if history_rows(work) != before + n_tests:
                raise BenchError("anvild did not store the run")
        seed_rows = scalar(tmp / "seed.db", "SELECT COUNT(*) FROM execution_history")
    speedup = median(theirs) / median(ours)
    row = Row(
        "e", f"ingest, {n_tests:,} tests into {earlier} earlier runs, vs the seed's way",
        median(ours), "s", median(theirs), "the seed's way", samples=ours,
        baseline_samples=theirs, ratio_text=f"{speedup:.0f}x faster",
    )  # fmt: skip
    if with_goal:
        row.goal = f">= {GOAL:.0f}x faster"
        row.verdict = verdict(speedup >= GOAL)
    else:
        row.goal = "(goal is for 1,000 x 100)"
    row.notes.append(
        f"history before the timed run: {before:,} results in anvild's database, "
        f"{seed_rows - n_tests:,} in the seed's"
    )
    for name in ("load", "inserts", "recompute", "upserts"):
        value = median([getattr(p, name) for p in phases])
        what = {
            "load": "read + json.load",
            "inserts": f"{n_tests:,} x (INSERT + commit)",
            "recompute": f"SELECT ... GROUP BY entity over {seed_rows:,} rows",
            "upserts": f"{phases[0].entities:,} x (upsert + commit)",
        }[name]
        row.notes.append(f"the seed's way, {what}: {ms(value)} (median)")
    return row


def figure_e(mode: Mode, print_row: object) -> list[Row]:
    sizes = [
        (1_000, 100, mode.count(3, 5), True),
        (10_000, mode.count(10, 100), mode.count(1, 2), False),
    ]
    rows = []
    for n_tests, earlier, reps, goal in sizes:
        row = _one_size(n_tests, earlier, reps, goal)
        if mode.quick and n_tests == 10_000:
            row.notes.insert(0, f"--quick: {earlier} earlier runs instead of 100")
        rows.append(row)
        print_row(row)  # type: ignore[operator]
    return rows
