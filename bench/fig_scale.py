"""A 1,000,000-test report beside the 100,000-test one: time and peak memory of one in-process
ingest each, every ingest in its own process (peak memory: the kernel's high-water mark of
that process's resident memory, VmHWM; not ru_maxrss, which Linux carries over from the
parent across fork and exec, so a big bench process showed as the child's peak), fresh
databases.

    .venv/bin/python bench/fig_scale.py [--reps 3]

Goal: the 1M ingest takes <= 11x the 100k one; its peak memory is <= 2x the file + 100 MB.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from common import PYTHON, Mode, Row, median, report_files, verdict  # noqa: E402

# One ingest in a fresh process: the owner opened first (as the daemon has it open), then the
# clock; prints the time and the process's peak resident memory in bytes.
CHILD = """
import json, sys, tempfile, time
from pathlib import Path
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
sys.path.insert(0, sys.argv[2])
from common import InProcess
with tempfile.TemporaryDirectory(prefix="anvild-scale-") as tmp:
    project = Path(tmp) / "project"
    project.mkdir()
    with InProcess(project, Path(tmp) / "history.db") as anvild:
        before = hwm()
        start = time.perf_counter()
        anvild.ingest(Path(sys.argv[1]))
        took = time.perf_counter() - start
print(json.dumps({"seconds": took, "peak": hwm(), "before": before}))
"""


def one(path: Path) -> dict[str, float]:
    done = subprocess.run(
        [PYTHON, "-c", CHILD, str(path), str(BENCH)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"ingest of {path.name} failed: {done.stderr[-600:]}")
    return json.loads(done.stdout.splitlines()[-1])


def figure_m(
    mode: Mode, print_row: Callable[[Row], None], reps: int | None = None
) -> list[Row]:
    reps = reps or mode.count(1, 3)  # each a fresh process; medians of three (full mode)
    (small,) = report_files(100_000, range(1, 2))
    (big,) = report_files(1_000_000, range(1, 2))
    one(small)  # warm-up: page cache, .pyc files
    smalls, bigs = [], []
    for _ in range(reps):
        smalls.append(one(small))
        bigs.append(one(big))
    t_small = median([s["seconds"] for s in smalls])
    t_big = median([b["seconds"] for b in bigs])
    peak = max(b["peak"] for b in bigs)
    size = big.stat().st_size
    time_row = Row(
        "m", f"in-process ingest, 1,000,000 tests ({size / 1e6:.0f} MB) vs 100,000 tests",
        t_big, "s", t_small, "the 100k ingest", goal="<= 11x",
        samples=[b["seconds"] for b in bigs], baseline_samples=[s["seconds"] for s in smalls],
    )  # fmt: skip
    time_row.verdict = verdict(time_row.ratio is not None and time_row.ratio <= 11)
    limit = 2 * size + 100e6
    memory_row = Row(
        "m", "peak memory (VmHWM) of the 1,000,000-test ingest's process", peak / 1e6, "MB",
        limit / 1e6, "2x the file + 100 MB", goal="<= 2x the file + 100 MB",
    )  # fmt: skip
    memory_row.verdict = verdict(peak <= limit)
    memory_row.notes.append(
        "peak of the whole process (the interpreter, anvild's imports and the open database "
        f"included); before the ingest: {max(b['before'] for b in bigs) / 1e6:.0f} MB; "
        f"the 100k ingest's peak: {max(s['peak'] for s in smalls) / 1e6:.0f} MB"
    )
    rows = [time_row, memory_row]
    for row in rows:
        print_row(row)
    del mode
    return rows


if __name__ == "__main__":
    import argparse

    from run import print_row

    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=None)
    figure_m(Mode(False), print_row, parser.parse_args().reps)
