"""What one attempt of a test came to (one enum, its groups and which one wins) and what a
session's exit code says: imported by the CLI without the parsers."""

from __future__ import annotations

import json
from collections.abc import Mapping
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    """A test attempt's status; a `str`, so stored values are these plain names."""

    PASSED = "PASSED"
    FAILED = "FAILED"
    ERROR = "ERROR"
    SKIPPED = "SKIPPED"
    XFAILED = "XFAILED"
    XPASSED = "XPASSED"
    RERUN = "RERUN"


# The members by name, typed as the strings results carry (a report's text maps onto them).
PASSED: str = Status.PASSED
FAILED: str = Status.FAILED
ERROR: str = Status.ERROR
SKIPPED: str = Status.SKIPPED
XFAILED: str = Status.XFAILED
XPASSED: str = Status.XPASSED
RERUN: str = Status.RERUN

STATUSES: tuple[str, ...] = tuple(Status)
PASSING = frozenset({PASSED, XPASSED})
FAILING = frozenset({FAILED, ERROR})
NOT_EXECUTED = frozenset({SKIPPED, XFAILED})

# pytest's exit codes that decide what a report is (pytest.ExitCode)
OK, TESTS_FAILED, INTERRUPTED, INTERNAL_ERROR, USAGE_ERROR, NO_TESTS = 0, 1, 2, 3, 4, 5

# Which status wins when one run holds several final attempts of a test (a JUnit file that
# repeats a testcase): the most alarming one, so a failure is never hidden by a later pass.
SEVERITY = {SKIPPED: 0, XFAILED: 1, PASSED: 2, XPASSED: 3, FAILED: 4, ERROR: 5, RERUN: -1}


def outranks(status: str, seen: str) -> bool:
    """Whether a later attempt's status replaces the one seen so far as the run's verdict."""
    if status == RERUN:
        return False
    return seen == RERUN or SEVERITY[status] >= SEVERITY[seen]


# pytest's word for each status its summary line counts, in that line's order (`rerun`,
# pytest-rerunfailures's, after them), and the run's count column of each.
_WORDS = (
    (Status.FAILED, "failed", "failed"),
    (Status.PASSED, "passed", "passed"),
    (Status.SKIPPED, "skipped", "skipped"),
    (Status.XFAILED, "xfailed", "xfailed"),
    (Status.XPASSED, "xpassed", "xpassed"),
    (Status.ERROR, "errors", "error"),
    (Status.RERUN, "rerun", "rerun"),
)


def pytest_summary(metadata: Mapping[str, Any] | str | None) -> str | None:
    """The words of pytest's own summary line for a run (its metadata, or as stored: JSON),
    where anvild's plugin recorded the session (`4 failed, 2 passed, 4 subtests passed`:
    pytest counts each failed subtest, deselected tests, warnings); else None."""
    if isinstance(metadata, str):
        try:
            metadata = json.loads(metadata)
        except ValueError:
            return None
    line = metadata.get("pytest_summary") if isinstance(metadata, Mapping) else None
    return line if isinstance(line, str) and line else None


def summary_words(counts: Mapping[str, int]) -> str:
    """Counts by status (or by a run's count columns) as pytest's summary line words them:
    `1 failed, 10 passed, 1 skipped, 1 xfailed, 2 errors, 1 rerun`; pytest's `no tests ran`
    for none."""
    words = []
    for status, column, word in _WORDS:
        n = counts.get(status) or counts.get(column) or 0
        if n:
            words.append(f"{n} {word}{'s' if word == 'error' and n != 1 else ''}")
    return ", ".join(words) or "no tests ran"
