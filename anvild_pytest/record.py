"""The session record: one pytest session as JSON lines, written from pytest's own hooks.

The record is a pytest-reportlog file in shape (``$report_type`` lines, the same keys), so one
reader serves both, cut to what a history keeps: per phase the outcome and duration, a test's
start (on its setup's line) and end (on its teardown's), and for a phase that did not pass its
message and long text. The first line carries the
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


_TEST_LINE = '{"$report_type": "TestReport", "nodeid": '
_SUBTEST_LINE = '{"$report_type": "SubTestReport", "nodeid": '


def _phase(when: Any, outcome: Any) -> str:
    """A line's text from after its node id to its duration."""
    return f', "when": {_word(when)}, "outcome": {_word(outcome)}, "duration": '


_PHASES = {
    (when, outcome): _phase(when, outcome)
    for when in ("setup", "call", "teardown")
    for outcome in ("passed", "failed", "skipped", "rerun")
}


class Record:
    """An open session record: one JSON line per event; a test's lines flushed at its end."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[str] | None = path.open("w", buffering=_BUFFER, encoding="utf-8")
        self._nodeid: Any = None  # the last phase's test, and its node id as JSON
        self._nodeid_word = ""

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
        the line json.dumps would write for its fields, formatted directly. A test's start is
        its setup's and its end its teardown's, so only those phases carry them: a float's
        repr is the costliest part of a line, and the reader takes nothing else of them."""
        nodeid, when, outcome = report.nodeid, report.when, report.outcome
        if nodeid != self._nodeid:  # a test's phases come one after another: written once
            self._nodeid, self._nodeid_word = nodeid, _word(nodeid)
        line = (
            (_SUBTEST_LINE if hasattr(report, "context") else _TEST_LINE)
            + self._nodeid_word
            + (_PHASES.get((when, outcome)) or _phase(when, outcome))
            + _number(report.duration)
        )
        if when == "setup":
            line += f', "start": {_number(getattr(report, "start", None))}'
        elif when == "teardown":
            line += f', "stop": {_number(getattr(report, "stop", None))}'
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
            if when == "teardown":  # the test's last line: its lines go out together
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
