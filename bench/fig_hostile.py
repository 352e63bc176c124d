"""Figure k: hostile report shapes of 100 MB, each stored or rejected by `anvild ingest` in
time linear in its size (issue 17, item 4: goal under 5 s each).

Each shape is written into a scratch directory, then one whole `anvild ingest` process (into a
fresh SQLite file) is timed beside its baseline, repetitions interleaved:

- one collector id repeated to 100 MB in a pytest-json-report (before: 40,000 copies took
  47 s, quadratic); baseline `python -c json.load` of the same file;
- the same in a pytest-reportlog (CollectReport lines); baseline the same json.load of one
  line per record in a process;
- a JUnit testcase whose name attribute is 100 MB (before: 50 MB took 50 s; now refused in
  one line: a tag over 8 MB); baseline the same 100 MB as the testcase's text content,
  which expat reads piece by piece;
- one failing testcase written again and again (before: each repeat joined its texts again,
  64 KB each time); baseline the same size as text content;
- fourteen testcases whose names are each 7 MB (tags near the longest read, 98 MB): stored.

    python bench/fig_hostile.py [--reps 3]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ANVILD, PYTHON, Mode, Row, clean_env, median, scalar, temp_dir, verdict

SIZE = 100 * 1024 * 1024
GOAL = 5.0
LINES_LOAD = "import json, sys\nfor line in open(sys.argv[1], 'rb'): json.loads(line)"
JSON_LOAD = "import json, sys; json.load(open(sys.argv[1]))"
_COLLECTOR = {"nodeid": "tests/test_x.py", "outcome": "failed", "longrepr": "E   boom"}


def repeated_collector(path: Path) -> Path:
    one = json.dumps(_COLLECTOR)
    doc = {"created": 1.7e9, "duration": 1.0, "exitcode": 2, "summary": {"total": 0}, "tests": []}
    head = json.dumps(doc)[:-1] + ', "collectors": ['
    with path.open("w") as out:
        out.write(head)
        out.write(", ".join([one] * (SIZE // (len(one) + 2))))
        out.write("]}")
    return path


def repeated_collect_report(path: Path) -> Path:
    line = json.dumps({"$report_type": "CollectReport", **_COLLECTOR}) + "\n"
    finish = json.dumps({"$report_type": "SessionFinish", "exitstatus": 2}) + "\n"
    with path.open("w") as out:
        out.write(json.dumps({"$report_type": "SessionStart", "pytest_version": "8"}) + "\n")
        out.write(line * (SIZE // len(line)))
        out.write(finish)
    return path


def repeated_failure(path: Path) -> Path:
    """One failing JUnit testcase written again and again, a new message each time."""
    case = (b'<testcase classname="c" name="t"><failure message="boom %d">E   trace %d'
            b" of a failure that happened again</failure></testcase>\n")  # fmt: skip
    with path.open("wb") as out:
        out.write(b'<?xml version="1.0"?>\n<testsuite name="s">')
        for n in range(SIZE // len(case % (0, 0))):
            out.write(case % (n, n))
        out.write(b"</testsuite>\n")
    return path


def junit(path: Path, names: list[int], text: int = 0) -> Path:
    """A JUnit file of testcases with names of the given sizes, the first one's text content
    `text` bytes."""
    with path.open("wb") as out:
        out.write(b'<?xml version="1.0"?>\n<testsuites><testsuite name="s">')
        for n, size in enumerate(names):
            out.write(b'<testcase classname="c" name="t' + b"n" * size + str(n).encode() + b'">')
            out.write(b"x" * (text if n == 0 else 0) + b"</testcase>")
        out.write(b"</testsuite></testsuites>\n")
    return path


# A baseline: the command to time beside anvild's, given the scratch dir, the shape's file
# and the repetition.
Baseline = Callable[[Path, Path, int], list[str]]


def _python(code: str) -> Baseline:
    return lambda tmp, path, rep: [PYTHON, "-c", code, str(path)]


def _ingest(project: Path, db: Path, path: Path) -> list[str]:
    project.mkdir(exist_ok=True)
    return [ANVILD, "--db", str(db), "--project", str(project), "ingest", str(path)]


def _as_text(size: int) -> Baseline:
    """The ingest of the same bytes as one testcase's text content (expat reads text piece by
    piece: the linear reading a name should have)."""

    def command(tmp: Path, path: Path, rep: int) -> list[str]:
        text = tmp / "text.xml"
        if not text.exists():
            junit(text, [1], text=size)
        return _ingest(tmp / "text-project", tmp / f"text{rep}.db", text)

    return command


# (what, how the file is made, what should become of it, the baseline, its label)
SHAPES: list[tuple[str, Callable[[Path], Path], str, Baseline, str]] = [
    ("one collector id repeated, pytest-json-report", repeated_collector, "stored",
     _python(JSON_LOAD), "python -c json.load"),
    ("one collector id repeated, pytest-reportlog", repeated_collect_report, "stored",
     _python(LINES_LOAD), "json.loads per line"),
    ("a JUnit testcase name of 100 MB", lambda p: junit(p, [SIZE]), "rejected",
     _as_text(SIZE), "as text content"),
    ("one failing JUnit testcase repeated", repeated_failure, "stored", _as_text(SIZE),
     "as text content"),
    ("fourteen JUnit testcase names of 7 MB", lambda p: junit(p, [7 * 1024 * 1024] * 14),
     "stored", _as_text(98 * 1024 * 1024), "98 MB as text content"),
]  # fmt: skip


def _run(args: list[str], env: dict[str, str]) -> tuple[float, int, str]:
    start = time.perf_counter()
    proc = subprocess.run(args, capture_output=True, env=env, check=False, text=True)
    return time.perf_counter() - start, proc.returncode, proc.stderr


def figure_k(mode: Mode, print_row: Callable[[Row], None], reps: int | None = None) -> list[Row]:
    """Each shape: `anvild ingest` beside its baseline, after one warm-up round."""
    reps = reps or mode.count(1, 3)
    rows = []
    for what, make, expected, baseline, baseline_what in SHAPES:
        with temp_dir() as tmp:
            suffix = ".xml" if "JUnit" in what else ".jsonl" if "reportlog" in what else ".json"
            path = make(tmp / f"report{suffix}")
            size = path.stat().st_size
            ours, theirs, outcome, line = [], [], "", ""
            for rep in range(reps + 1):
                env = clean_env(tmp / f"home{rep}")
                base, _, _ = _run(baseline(tmp, path, rep), env)
                db = tmp / f"history{rep}.db"
                mine, code, stderr = _run(_ingest(tmp / "project", db, path), env)
                stored = db.exists() and scalar(db, "SELECT count(*) FROM execution") == 1
                outcome = "stored" if code == 0 and stored else "rejected" if code == 1 else "?"
                line = stderr.strip().splitlines()[0] if stderr.strip() else ""
                if rep:  # the first round warms the page cache and .pyc files
                    ours.append(mine)
                    theirs.append(base)
            line = line.replace(str(tmp), "<tmp>")
        row = Row(
            "k", f"{what} ({size / 1e6:.0f} MB): {outcome}", median(ours), "s", median(theirs),
            baseline_what, goal=f"< {GOAL:g} s, {expected}", samples=ours, baseline_samples=theirs,
        )  # fmt: skip
        ok = outcome == expected and row.measured is not None and row.measured < GOAL
        row.verdict = verdict(ok)
        if outcome == "rejected":
            row.notes.append(f"anvild's line: {line}")
        rows.append(row)
        print_row(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    from run import print_row

    figure_k(Mode(False), print_row, args.reps)


if __name__ == "__main__":
    main()
