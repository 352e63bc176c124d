"""What a pytest session printed, read back: its summary line and each test's outcome.

Read from a session run with ``-v -ra --color=no``: the progress lines give every test report
(``nodeid PASSED [ 10%]``, or ``[gw0] [ 10%] PASSED nodeid`` under xdist), RERUN attempts
included; the short test summary gives the node ids of failed subtests (``SUBFAILED(i=1) nodeid
- message``, which the progress lines may lose into a test's captured output) and of collection
errors and module-level skips, which have no progress line. pytest's own summary line is the
judge: ``outcome_counts`` of what was read must equal it, or the reading is wrong.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

# pytest's word in a progress or short-summary line -> the status anvild stores (SPEC section 2)
STATUS = {
    "PASSED": "PASSED",
    "FAILED": "FAILED",
    "ERROR": "ERROR",
    "SKIPPED": "SKIPPED",
    "XFAIL": "XFAILED",
    "XPASS": "XPASSED",
    "RERUN": "RERUN",
    "SUBFAILED": "FAILED",  # pytest counts a failed subtest as one more "failed"
}
# anvild's status -> the key of anvild's run counts (`history --json` "counts")
COUNT_KEY = {
    "PASSED": "passed",
    "FAILED": "failed",
    "ERROR": "errors",
    "SKIPPED": "skipped",
    "XFAILED": "xfailed",
    "XPASSED": "xpassed",
    "RERUN": "rerun",
}
COUNTED = tuple(COUNT_KEY.values())
# Which of a test's reports is its verdict (anvild.status.SEVERITY, the one rule it follows)
SEVERITY = {"SKIPPED": 0, "XFAILED": 1, "PASSED": 2, "XPASSED": 3, "FAILED": 4, "ERROR": 5}

_WORDS = "PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS|RERUN"
_PROGRESS = re.compile(rf"^(?P<nodeid>\S.*?) (?P<word>{_WORDS})(?: \(.*\))?\s+\[\s*\d+%\]\s*$")
_PROGRESS_XDIST = re.compile(rf"^\[gw\d+\] \[\s*\d+%\] (?P<word>{_WORDS}) (?P<nodeid>\S.*?)\s*$")
_SECTION = re.compile(r"^={3,} (?P<name>.+?) ={3,}$")
_SHORT = re.compile(rf"^(?P<word>{_WORDS}|SUBFAILED\(.*?\)) (?P<rest>.+)$")
_SKIP_SHORT = re.compile(r"^SKIPPED \[(?P<n>\d+)\] (?P<file>[^:]+):\d+: ")
_SUMMARY = re.compile(
    r"^=*\s*(?P<counts>(?:\d+ [a-z ]+?)(?:, \d+ [a-z ]+?)*|no tests ran)"
    r" in (?P<seconds>\d+(?:\.\d+)?)s(?: \(\d+:\d\d:\d\d\))?\s*=*$"
)
_PLURALS = {"error": "errors", "warning": "warnings", "rerun": "rerun"}


@dataclass(frozen=True)
class Session:
    """One pytest session as its terminal output tells it."""

    summary_line: str
    counts: dict[str, int]  # the summary line's numbers, by anvild's count keys (and others)
    seconds: float  # the summary line's "in X.XXs"
    results: tuple[tuple[str, str], ...]  # (node id, anvild status), one per report, in order

    def outcome_counts(self) -> dict[str, int]:
        """The results counted the way pytest's summary line counts them."""
        counted = Counter(COUNT_KEY[status] for _, status in self.results)
        return {key: counted.get(key, 0) for key in COUNTED}

    def summary_counts(self) -> dict[str, int]:
        """The summary line's numbers for the statuses anvild counts (0 where absent)."""
        return {key: self.counts.get(key, 0) for key in COUNTED}

    def by_test(self) -> dict[str, Counter[str]]:
        """Node id -> how many reports of each status pytest printed for it."""
        out: dict[str, Counter[str]] = {}
        for nodeid, status in self.results:
            out.setdefault(nodeid, Counter())[status] += 1
        return out

    def verdicts(self) -> dict[str, Counter[str]]:
        """Node id -> the results a test history keeps of it: one RERUN per rerun attempt,
        then one verdict, the most severe of the reports of its last attempt (a failed
        subtest fails its test; a failing teardown after a failed call is an error)."""
        out: dict[str, Counter[str]] = {}
        for nodeid, reports in self.by_test().items():
            final = [status for status in reports if status != "RERUN"]
            verdict = max(final, key=SEVERITY.__getitem__) if final else None
            kept = Counter({"RERUN": reports["RERUN"]} if reports["RERUN"] else {})
            if verdict is not None:
                kept[verdict] += 1
            out[nodeid] = kept
        return out

    def verdict_counts(self) -> dict[str, int]:
        """The verdicts counted as a run's counts."""
        counted: Counter[str] = Counter()
        for kept in self.verdicts().values():
            for status, number in kept.items():
                counted[COUNT_KEY[status]] += number
        return {key: counted.get(key, 0) for key in COUNTED}


def parse_summary(line: str) -> tuple[dict[str, int], float] | None:
    """``== 1 failed, 254 passed, 2 rerun in 3.21s ==`` (or the ``-q`` form) -> counts, seconds."""
    match = _SUMMARY.match(line.strip())
    if match is None:
        return None
    counts: dict[str, int] = {}
    if match["counts"] != "no tests ran":
        for part in match["counts"].split(", "):
            number, name = part.split(" ", 1)
            counts[_PLURALS.get(name, name)] = int(number)
    return counts, float(match["seconds"])


def parse_session(stdout: str) -> Session:
    """Read a ``-v -ra --color=no`` session's output; AssertionError if it has no summary line."""
    lines = stdout.splitlines()
    summary = next(
        ((i, parsed) for i in reversed(range(len(lines))) if (parsed := parse_summary(lines[i]))),
        None,
    )
    if summary is None:
        tail = "\n".join(lines[-15:])
        raise AssertionError(f"pytest printed no summary line; its output ended:\n{tail}")
    end, (counts, seconds) = summary

    # The progress lines come before the first section after the session header; the
    # sections (FAILURES, PASSES, ...) hold captured output, which may quote anything.
    start = next((i for i, line in enumerate(lines) if "test session starts" in line), 0)
    results: list[tuple[str, str]] = []
    seen_files: set[str] = set()
    i = start + 1
    while i < end and not _SECTION.match(lines[i]):
        match = _PROGRESS.match(lines[i]) or _PROGRESS_XDIST.match(lines[i])
        if match:
            results.append((match["nodeid"], STATUS[match["word"]]))
            seen_files.add(match["nodeid"].split("::", 1)[0])
        i += 1

    progress = {nodeid for nodeid, _ in results}
    short = next((j for j in range(i, end) if "short test summary info" in lines[j]), None)
    for line in lines[short + 1 : end] if short is not None else ():
        if skip := _SKIP_SHORT.match(line):
            # A skip outside any test (a module's importorskip) has no progress line; its
            # node id is the file's.
            if skip["file"] not in seen_files:
                results.extend([(skip["file"], "SKIPPED")] * int(skip["n"]))
            continue
        if not (match := _SHORT.match(line)):
            continue
        word = match["word"].split("(", 1)[0]
        nodeid = match["rest"].split(" - ", 1)[0].strip()
        if word == "SUBFAILED" or (word == "ERROR" and nodeid not in progress):
            results.append((nodeid, STATUS[word]))  # subtests and collection errors
    return Session(lines[end].strip(), counts, seconds, tuple(results))
