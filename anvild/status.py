"""What one attempt of a test came to: one enum, imported by the CLI without the parsers."""

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
