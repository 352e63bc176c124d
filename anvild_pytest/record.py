"""The session record: one pytest session as JSON lines, written from pytest's own hooks.

The record is a pytest-reportlog file in shape (``$report_type`` lines, the same keys), so one
reader serves both, cut to what a history keeps: per phase the outcome, duration and times,
and for a phase that did not pass its message and long text. The first line carries the
session's id and provenance, the last its exit status and wall time. A test's lines reach the
file together when its teardown is logged (other lines at once): the daemon sees the run while
it goes on, and a test costs a few formatted lines and one system call.

This module imports nothing but the standard library: it runs inside the user's pytest, and
whatever fails in it is caught by the plugin (anvild_pytest.plugin), never by the session.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path
from typing import IO, Any

RECORD_DIR = Path(".pytest_cache", "anvild")  # under the watched root
RECORD_VERSION = 1
# Records wait here for the daemon; the oldest beyond this many go when a session starts, so a
# project whose daemon never runs does not fill its disk.
KEEP_RECORDS = 200
_BUFFER = 1 << 16
_string = json.encoder.encode_basestring_ascii  # what json.dumps does to a str, without a call


def record_path(root: Path, session_id: str, now: float) -> Path:
    """Where a session's record goes: named by its start (to the microsecond: names sort as
    the sessions started, those of one second too) and id, so no session overwrites another's
    record before the daemon has read it."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now)) + f".{int(now % 1 * 1e6):06d}"
    return root / RECORD_DIR / f"session-{stamp}-{session_id[:12]}.jsonl"


def find_record(root: Path, session_id: str) -> Path | None:
    """The record of a session under root, if it is there (written or being written)."""
    name = f"session-*-{session_id[:12]}.jsonl"
    return next(iter(sorted((root / RECORD_DIR).glob(name))), None)


def prune(directory: Path, keep: int = KEEP_RECORDS) -> None:
    """Remove the oldest records beyond keep (names sort by start time)."""
    try:
        names = sorted(n for n in os.listdir(directory) if n.startswith("session-"))
    except OSError:
        return
    for name in names[: max(0, len(names) - keep)]:
        with contextlib.suppress(OSError):
            os.unlink(directory / name)


def _text(longrepr: Any) -> str | list[Any] | None:
    """A phase's long representation as the reader takes it: a skip's (path, line, reason)
    as a list, anything else as the text pytest prints."""
    if longrepr is None:
        return None
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return [str(longrepr[0]), longrepr[1], str(longrepr[2])]
    return str(longrepr)


def _crash(longrepr: Any) -> str | None:
    crash = getattr(longrepr, "reprcrash", None)
    message = getattr(crash, "message", None)
    return message if isinstance(message, str) else None


def describe(longrepr: Any) -> tuple[str | None, str | list[Any] | None]:
    """A phase's crash message and long text, as the record keeps them."""
    return _crash(longrepr), _text(longrepr)


def _word(value: Any) -> str:
    """A JSON string as json.dumps writes it (anything else as dumps writes it)."""
    return _string(value) if type(value) is str else json.dumps(value, default=str)


def _number(value: Any) -> str:
    """A JSON number as json.dumps writes it (a finite float by repr, the rest by dumps)."""
    if type(value) is float and value - value == 0.0:
        return repr(value)
    return json.dumps(value, default=str)


class Record:
    """An open session record: one JSON line per event; a test's lines flushed at its end."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[str] | None = path.open("w", buffering=_BUFFER, encoding="utf-8")

    def write(self, data: dict[str, Any]) -> None:
        """One line, flushed now."""
        if self._file is not None:
            self._file.write(json.dumps(data, default=str) + "\n")
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def session_start(self, pytest_version: str, anvild: dict[str, Any]) -> None:
        self.write(
            {
                "$report_type": "SessionStart",
                "pytest_version": pytest_version,
                "anvild": {"record": RECORD_VERSION, **anvild},
            }
        )

    def test_report(self, report: Any) -> None:
        """One phase of one test (a subtest's report is marked as pytest-reportlog marks it):
        the line json.dumps would write for its fields, formatted directly."""
        outcome = report.outcome
        line = (
            '{"$report_type": "SubTestReport", "nodeid": '
            if hasattr(report, "context")
            else '{"$report_type": "TestReport", "nodeid": '
        ) + (
            f"{_word(report.nodeid)}, "
            f'"when": {_word(report.when)}, "outcome": {_word(outcome)}, '
            f'"duration": {_number(report.duration)}, '
            f'"start": {_number(getattr(report, "start", None))}, '
            f'"stop": {_number(getattr(report, "stop", None))}'
        )
        if hasattr(report, "wasxfail"):
            line += f', "wasxfail": {_string(str(report.wasxfail))}'
        if outcome != "passed" and report.longrepr is not None:
            line += f', "longrepr": {json.dumps(_text(report.longrepr), default=str)}'
            crash = _crash(report.longrepr)
            if crash is not None:
                line += f', "crash": {_word(crash)}'
        file = self._file
        if file is not None:
            file.write(line + "}\n")
            if report.when == "teardown":  # the test's last line: its lines go out together
                file.flush()

    def collect_report(self, report: Any) -> None:
        """A collector that failed or was skipped (an import error, a module-level skip)."""
        if report.outcome == "passed":
            return
        data = {
            "$report_type": "CollectReport",
            "nodeid": report.nodeid,
            "outcome": report.outcome,
            "longrepr": _text(report.longrepr),
        }
        crash = _crash(report.longrepr)
        if crash is not None:
            data["crash"] = crash
        self.write(data)

    def session_finish(self, exit_status: int, anvild: dict[str, Any]) -> None:
        self.write({"$report_type": "SessionFinish", "exitstatus": exit_status, "anvild": anvild})
