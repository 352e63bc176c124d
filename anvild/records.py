"""The normalized shape of a parsed report: frozen records, no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

PASSED = "PASSED"
FAILED = "FAILED"
ERROR = "ERROR"
SKIPPED = "SKIPPED"
XFAILED = "XFAILED"
XPASSED = "XPASSED"
RERUN = "RERUN"

STATUSES = (PASSED, FAILED, ERROR, SKIPPED, XFAILED, XPASSED, RERUN)
PASSING = frozenset({PASSED, XPASSED})
FAILING = frozenset({FAILED, ERROR})
NOT_EXECUTED = frozenset({SKIPPED, XFAILED})

# Which status wins when one run holds several final attempts of a test (a JUnit file that
# repeats a testcase): the most alarming one, so a failure is never hidden by a later pass.
SEVERITY = {SKIPPED: 0, XFAILED: 1, PASSED: 2, XPASSED: 3, FAILED: 4, ERROR: 5, RERUN: -1}

MESSAGE_LIMIT = 2048


def clip_message(text: str | None) -> str | None:
    """The first 2 KB of a failure message, or None when there is none."""
    if not text:
        return None
    return text if len(text) <= MESSAGE_LIMIT else text[:MESSAGE_LIMIT]


def outranks(status: str, seen: str) -> bool:
    """Whether a later attempt's status replaces the one seen so far as the run's verdict."""
    if status == RERUN:
        return False
    return seen == RERUN or SEVERITY[status] >= SEVERITY[seen]


@dataclass(frozen=True, slots=True)
class TestResult:
    """One attempt of one test in one run."""

    __test__ = False  # not a pytest test class, whatever its name

    node_id: str
    key: str
    status: str
    duration: float | None = None
    attempt: int = 0
    message: str | None = None
    traceback: str | None = None
    file: str | None = None


@dataclass(frozen=True, slots=True)
class ParsedRun:
    """One report read into run facts and its test results."""

    source_format: str
    results: tuple[TestResult, ...]
    started_at: float | None = None
    finished_at: float | None = None
    duration: float | None = None
    exit_code: int | None = None
    root: str | None = None
    environment: Mapping[str, Any] = field(default_factory=dict)
    metadata: Mapping[str, Any] = field(default_factory=dict)
    interrupted: bool = False

    def final_results(self) -> dict[str, TestResult]:
        """Each test's result for this run: its last word after reruns, keyed by test key."""
        final: dict[str, TestResult] = {}
        for result in self.results:
            seen = final.get(result.key)
            if seen is None or outranks(result.status, seen.status):
                final[result.key] = result
        return final

    def counts(self) -> dict[str, int]:
        """How many results of each status, attempts included."""
        counts = dict.fromkeys(STATUSES, 0)
        for result in self.results:
            counts[result.status] += 1
        return counts
