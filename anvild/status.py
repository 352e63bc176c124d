"""What one attempt of a test came to: one enum, imported by the CLI without the parsers."""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    """A test attempt's status; a `str`, so stored values are these plain names."""

    PASSED = "PASSED"
    FAILED = "FAILED"
    ERROR = "ERROR"
    SKIPPED = "SKIPPED"
    XFAILED = "XFAILED"
    XPASSED = "XPASSED"
    RERUN = "RERUN"
