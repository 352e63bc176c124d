"""Figure r: the test-execution report over 10,000 tests x 1,000 runs (10 M results).

The history is built as for figure h (bench/fig_history.py: one real anvild ingest of a
generated 10,000-test suite, the other runs in SQL, statistics recomputed), one run every
10 minutes, so the 1,000 runs fall in the report's 30-day window. The report's clock is
fixed one minute after the newest run. Timed, each the median of a few renders after one
warm-up, in this process: gathering the data (anvild.report.data.execution: every query) and
rendering it (HTML, Markdown, JSON), and the whole `anvild report test-execution --format
html` as a process, each in wall and in CPU time (the process's user + system time, which
other work on the machine disturbs less). Goals (issue 14): render under 2 s, the page under
10 MB.

    python bench/fig_report.py [--runs 1000] [--tests 10000] [--reps 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fig_history
import generate
from common import clean_env, median, report_files, temp_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1_000)
    parser.add_argument("--tests", type=int, default=10_000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="cProfile one gathering")
    parser.add_argument(
        "--keep",
        type=Path,
        help="build the history in this directory and keep it; reuse it when it is there",
    )
    args = parser.parse_args()

    from anvild import report
    from anvild.report import data
    from anvild.store import queries
    from anvild.store.database import forget, open_database

    (first,) = report_files(args.tests, range(1, 2))
    suite = generate.build_suite(args.tests)
    with temp_dir() as scratch:
        tmp = args.keep.resolve() if args.keep else scratch
        project = tmp / "project"
        db = tmp / "big.db"
        start = time.perf_counter()
        if not db.exists():
            project.mkdir(parents=True, exist_ok=True)
            fig_history.build(db, project, suite, first, args.runs)
        built = time.perf_counter() - start
        con = sqlite3.connect(db, isolation_level=None)
        results = con.execute('SELECT COUNT(*) FROM "execution_history"').fetchone()[0]
        # The builder lays runs out forward from the first ingest; move them into the past
        # (order kept) so the process, on the real clock, sees them all in its window.
        newest = con.execute('SELECT MAX("started_at") FROM "execution"').fetchone()[0]
        shift = newest - (time.time() - 120.0)
        con.execute('UPDATE "execution" SET "started_at" = "started_at" - ?, '
                    '"finished_at" = "finished_at" - ?', (shift, shift))  # fmt: skip
        con.close()
        now = newest - shift + 60.0
        open_database(str(db))
        project_id = queries.project_id(str(project))
        if args.profile:
            import cProfile
            import pstats

            profile = cProfile.Profile()
            profile.runcall(data.execution, project_id, str(project), "all", 30, now=now)
            pstats.Stats(profile).sort_stats("cumulative").print_stats(25)
        gather: list[float] = []
        gather_cpu: list[float] = []
        render: dict[str, list[float]] = {"html": [], "md": [], "json": []}
        sizes: dict[str, int] = {}
        content = {}
        for rep in range(args.reps + 1):
            start, cpu = time.perf_counter(), time.process_time()
            content = data.execution(project_id, str(project), "all", 30, now=now)
            took, took_cpu = time.perf_counter() - start, time.process_time() - cpu
            for fmt in render:
                begin = time.perf_counter()
                text = report.render(content, fmt)
                if rep:
                    render[fmt].append(time.perf_counter() - begin)
                sizes[fmt] = len(text.encode())
            if rep:  # the first is the warm-up
                gather.append(took)
                gather_cpu.append(took_cpu)
        forget(str(db))
        env = clean_env(tmp / "home")
        whole = []
        whole_cpu = []
        for _ in range(args.reps):
            start, cpu = time.perf_counter(), _children_cpu()
            proc = subprocess.run(
                [sys.executable, "-m", "anvild", "--project", str(project), "--db", str(db),
                 "report", "test-execution", "--format", "html", "--output", str(tmp / "r.html")],
                env=env, capture_output=True, text=True, check=False,
            )  # fmt: skip
            whole.append(time.perf_counter() - start)
            whole_cpu.append(_children_cpu() - cpu)
            if proc.returncode:
                raise SystemExit(proc.stderr)
    print(f"history: {results:,} results ({args.tests:,} tests x {args.runs:,} runs), "
          f"built in {built:.0f} s")  # fmt: skip
    print(f"sections: {content['summary']['runs']} runs in the window, "
          f"{len(content['failures'])} failure groups, {len(content['flaky'])} flaky, "
          f"{len(content['broken'])} broken, {len(content['slower'])} slower, "
          f"{content['drilldown_total']} tests to drill into ({len(content['drilldown'])} shown)")  # fmt: skip
    print(f"gather (every query): median {median(gather):.2f} s of "
          f"{[round(t, 2) for t in gather]}, CPU median {median(gather_cpu):.2f} s")  # fmt: skip
    for fmt, times in render.items():
        print(f"render {fmt}: median {median(times) * 1000:.0f} ms, {sizes[fmt] / 1e6:.2f} MB")
    print(f"whole `anvild report test-execution --format html` process: median "
          f"{median(whole):.2f} s of {[round(t, 2) for t in whole]}, CPU median "
          f"{median(whole_cpu):.2f} s of {[round(t, 2) for t in whole_cpu]}")  # fmt: skip
    print(f"load average (1 min) at the end: {os.getloadavg()[0]:.2f}")


def _children_cpu() -> float:
    """User + system time of the finished child processes, in seconds."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


if __name__ == "__main__":
    main()
