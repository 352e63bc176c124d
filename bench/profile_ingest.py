"""Where an in-process ingest spends its time: phases, then a cProfile of the whole.

    .venv/bin/python bench/profile_ingest.py [--tests 100000] [--top 10] [--known]

Runs in the main thread (store_run called directly, not through the owner's writer
thread, which cProfile would not see) on a fresh database in a scratch directory, with the
cyclic garbage collector paused as the daemon and `anvild ingest` pause it.
--known ingests an earlier run of the same suite first, untimed, so the profiled ingest
is one into a database that already knows every test.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import itertools
import pstats
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from run import report_files  # noqa: E402 - bench/ is not a package

from anvild import provenance  # noqa: E402
from anvild.ingest import IngestOptions, ReportSource, no_gc, prepare  # noqa: E402
from anvild.parsers.detect import parse_bytes  # noqa: E402
from anvild.store.database import open_database  # noqa: E402
from anvild.store.write import store_run  # noqa: E402


def phases(path: Path, project: Path, url: str) -> None:
    """Wall and CPU time of each step of one ingest, measured separately (a second database):
    CPU time is what load from other processes disturbs least."""
    db = open_database(url)

    def now() -> tuple[float, float]:
        return time.perf_counter(), time.process_time()

    marks = [("start", now())]
    data = path.read_bytes()
    marks.append(("read file", now()))
    run = parse_bytes(path, data)
    marks.append(("parse (decode + records)", now()))
    provenance.collect(project, run, "local")
    marks.append(("provenance (git, host)", now()))
    submission = prepare(ReportSource(str(path), data, explicit=True), IngestOptions(project))
    marks.append(("prepare again (parse + sha256 + provenance)", now()))
    store_run(db, submission)
    marks.append(("store_run (one transaction)", now()))
    for (_, before), (name, after) in itertools.pairwise(marks):
        wall, cpu = ((a - b) * 1000 for a, b in zip(after, before, strict=True))
        print(f"  {name:<45} {wall:9.1f} ms wall {cpu:9.1f} ms CPU")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tests", type=int, default=100_000)
    parser.add_argument("--top", type=int, default=10)
    parser.add_argument("--known", action="store_true", help="the suite is already stored")
    args = parser.parse_args()
    first, path = report_files(args.tests, range(1, 3))
    with tempfile.TemporaryDirectory(prefix="anvild-profile-") as name:
        tmp = Path(name)
        project = tmp / "project"
        project.mkdir()
        options = IngestOptions(project)
        if args.known:
            for url in (str(tmp / "phases.db"), str(tmp / "profile.db")):
                source = ReportSource(str(first), first.read_bytes(), explicit=True)
                store_run(open_database(url), prepare(source, options))
        print(f"phases, {args.tests:,} tests ({path.stat().st_size / 1e6:.1f} MB):")
        with no_gc():  # as the daemon's worker and `anvild ingest` run an ingest
            phases(path, project, str(tmp / "phases.db"))
        db = open_database(str(tmp / "profile.db"))
        profile = cProfile.Profile()
        start = time.perf_counter()
        with no_gc():
            profile.enable()
            source = ReportSource(str(path), path.read_bytes(), explicit=True)
            store_run(db, prepare(source, options))
            profile.disable()
        print(f"\nprofiled ingest: {time.perf_counter() - start:.3f} s (with profiler overhead)")
    for order, pattern in (("cumulative", "anvild|peewee"), ("tottime", ".")):
        out = io.StringIO()
        pstats.Stats(profile, stream=out).sort_stats(order).print_stats(pattern, args.top)
        text = out.getvalue()
        where = " in anvild/peewee" if pattern != "." else ""
        print(f"\ntop {args.top} by {order}{where}:")
        print(text[text.find("   ncalls") :].rstrip())


if __name__ == "__main__":
    main()
