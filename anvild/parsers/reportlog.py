"""pytest-reportlog JSON lines (``--report-log``) -> ParsedRun, read whole or as the file grows."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from anvild.errors import NOT_A_RUN, NotAReport, NotARun, ReportError, ReportIncomplete
from anvild.identity import key_from_node_id
from anvild.parsers.json_report import map_outcome
from anvild.records import (
    ParsedRun,
    TestResult,
    bounded,
    checked_run,
    clip_message,
    clip_name,
    clip_traceback,
    exit_status,
    joined,
    last_line,
    moment,
    own_failure,
    seconds,
)
from anvild.status import (
    ERROR,
    FAILED,
    FAILING,
    INTERRUPTED,
    PASSED,
    PASSING,
    RERUN,
    SKIPPED,
    XFAILED,
    XPASSED,
)

_FAILED_ATTEMPT = FAILING | {RERUN}


def _session_id(value: object) -> str | None:
    return value[:64] if isinstance(value, str) and value else None


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _render(longrepr: dict[str, Any]) -> str | None:
    """The text pytest prints for a serialized exception: every traceback of its chain."""
    chain = _list(longrepr.get("chain")) or [[longrepr.get("reprtraceback"), None, None]]
    out: list[str] = []
    for link in map(_list, chain):
        traceback = _dict(link[0] if link else None)
        for entry in _list(traceback.get("reprentries")):
            data = _dict(_dict(entry).get("data"))
            loc = _dict(data.get("reprfileloc"))
            place = [f"{loc.get('path')}:{loc.get('lineno')}: {loc.get('message')}"] if loc else []
            lines = [str(line).rstrip("\n") for line in _list(data.get("lines"))]
            out.extend([""] if out else [])
            if data.get("style") == "short":  # pytest's short style names the place first
                out.extend([*place, *lines])
                continue
            args = _list(_dict(data.get("reprfuncargs")).get("args"))
            out.extend(f"{arg[0]} = {arg[1]}" for arg in args if len(_list(arg)) == 2)
            out.extend([""] if args else [])
            out.extend(lines)
            out.extend(str(line) for line in _list(_dict(data.get("reprlocals")).get("lines")))
            out.extend(["", *place] if lines and place else place)
        if isinstance(traceback.get("extraline"), str):
            out.append(traceback["extraline"])
        if len(link) > 2 and isinstance(link[2], str):  # "The above exception was ..."
            out.extend(("", link[2]))
    return "\n".join(out).strip("\n") or None


def _describe(report: dict[str, Any]) -> tuple[str | None, str | None]:
    """The message and the long text of a phase's ``longrepr``, in any of its shapes, clipped
    at once: a tailed run holds its attempts until their teardown. A session record gives
    the crash message beside a text ``longrepr``."""
    longrepr, crash = report.get("longrepr"), report.get("crash")
    if isinstance(crash, str) and crash and isinstance(longrepr, str):
        return clip_message(crash), clip_traceback(longrepr)
    if isinstance(longrepr, dict):
        crash, text = _dict(longrepr.get("reprcrash")).get("message"), _render(longrepr)
        message = crash if isinstance(crash, str) and crash else last_line(text)
        return clip_message(message), clip_traceback(text)
    if isinstance(longrepr, list) and len(longrepr) == 3 and isinstance(longrepr[2], str):
        # a skip: [path, lineno, reason]; pytest's terminal drops the "Skipped: " prefix too
        return clip_message(longrepr[2].removeprefix("Skipped: ")), None
    if isinstance(longrepr, str) and longrepr.strip():
        return last_line(longrepr), clip_traceback(longrepr)
    return None, None


@dataclass(slots=True)
class _Attempt:
    """The phases of one attempt of one test, merged as they arrive."""

    node_id: str
    attempt: int
    status: str | None = None
    duration: float | None = None
    message: str | None = None
    traceback: str | None = None
    by_subtest: bool = False  # the failure and its message are a subtest's
    started: float | None = None  # its first phase's start

    def add_subtest(self, report: dict[str, Any]) -> None:
        """A subtest's report: the first failing one fails the test, with its message (its
        time is inside the call's); passing and skipped subtests leave the test as it is."""
        if report.get("outcome") != "failed" or self.status in _FAILED_ATTEMPT:
            return
        self.status, self.by_subtest = FAILED, True
        self.message, self.traceback = _describe(report)

    def add(self, report: dict[str, Any], path: Path) -> None:
        """Merge one phase (setup, call or teardown) the way pytest's terminal counts it."""
        duration = seconds(report.get("duration"))
        if duration is not None:
            self.duration = (self.duration or 0.0) + duration  # checked once summed
        outcome, when = report.get("outcome"), report.get("when")
        xfail = "wasxfail" in report
        if outcome == "rerun":
            status: str | None = RERUN
        elif outcome == "failed":
            status = FAILED if when == "call" else ERROR
        elif outcome == "skipped":
            status = None if when == "teardown" else XFAILED if xfail else SKIPPED
        elif outcome == "passed":
            status = (XPASSED if xfail else PASSED) if when == "call" else None
        else:
            status = map_outcome(outcome, path)  # a plugin's own word: logged, never a pass
        # the first failure of an attempt is its verdict and its message; a rerun mark replaces
        # it, a failed body replaces a subtest's (below), and a teardown that fails after a
        # failed setup or call makes the test an error (as pytest-json-report and the JUnit
        # reading count it) with both messages, the first first: pytest prints a line for each
        if status == ERROR and self.status in (FAILED, ERROR):
            message, traceback = _describe(report)
            self.status = ERROR
            self.message = clip_message(joined(self.message, message, "\n"))
            self.traceback = clip_traceback(joined(self.traceback, traceback, "\n\n"))
            return
        if status == FAILED and self.status == FAILED and self.by_subtest:
            # failed by a subtest, then by its own body too: pytest's FAILED line shows the
            # body's error; pytest 9's "contains 2 failed subtests" leaves the subtest's
            message, traceback = _describe(report)
            if own_failure(traceback):
                self.message, self.traceback, self.by_subtest = message, traceback, False
            return
        if status is None or (self.status in _FAILED_ATTEMPT and status != RERUN):
            return
        self.status = status
        self.message, self.traceback = _describe(report)

    def result(self) -> TestResult | None:
        """The attempt as a result, or None when no phase decided it (setup-only, interrupted)."""
        if self.status is None:
            return None
        message = None if self.status in PASSING else self.message
        traceback = self.traceback if self.status in _FAILED_ATTEMPT else None
        return TestResult(
            node_id=self.node_id,
            key=key_from_node_id(self.node_id),
            status=self.status,
            duration=None if self.duration is None else seconds(self.duration),
            attempt=self.attempt,
            message=message,
            traceback=traceback,
            file=self.node_id.split("::", 1)[0],
            started=self.started,
        )


class ReportlogReader:
    """A reportlog read as it is written: feed bytes in chunks of any size, finish at any time."""

    def __init__(self, path: Path | None = None) -> None:
        self._path = path or Path("<reportlog>")
        self._where = str(path) if path else None
        self._partial: list[bytes] = []
        self._line_no = 0
        self._records = 0
        self._results: list[TestResult] = []
        self._pending: dict[str, _Attempt] = {}
        self._next_attempt: dict[str, int] = {}
        self._final = 0
        self._started: float | None = None
        self._finished: float | None = None
        self._exit_code: int | None = None
        self._complete = False
        self._format = "reportlog"
        self._session_id: str | None = None
        self._own_start = False  # a session record's start: the session's, not its first test's
        self._duration: float | None = None
        self._root: str | None = None
        self._metadata: dict[str, Any] = {}
        self._early_subtests: dict[str, dict[str, Any]] = {}  # failed before their attempt opened
        # where each failed or skipped collector's result is in _results, by its node id
        self._collected: dict[str, int] = {}
        self._last_collect: bytes | None = None  # the last CollectReport line read

    @property
    def tests_so_far(self) -> int:
        """How many tests have a final result (rerun attempts not counted)."""
        return self._final

    @property
    def session_id(self) -> str | None:
        """The pytest session, once a line has named it."""
        return self._session_id

    @property
    def source_format(self) -> str:
        """'anvild' for a session record, 'reportlog' for pytest-reportlog's file."""
        return self._format

    @property
    def complete(self) -> bool:
        """Whether SessionFinish has been read: the run is over."""
        return self._complete

    def feed(self, chunk: bytes) -> None:
        """Read the complete lines of chunk; a partial last line waits for its newline."""
        if b"\n" not in chunk:
            if chunk:
                self._partial.append(chunk)
            return
        if self._partial:
            chunk = b"".join([*self._partial, chunk])
            self._partial = []
        *lines, rest = chunk.split(b"\n")
        for line in lines:
            self._line_no += 1
            self._read(line)
        if rest:
            self._partial.append(rest)

    def finish(self, *, interrupted: bool = False) -> ParsedRun:
        """The run read so far; unless interrupted, only once SessionFinish has been read."""
        rest = b"".join(self._partial)
        if rest.strip():
            try:
                orjson.loads(rest)
                self.feed(b"\n")  # a last line without its newline
            except orjson.JSONDecodeError:
                if not rest.lstrip().startswith(b"{"):  # garbage, not a line being written
                    self.feed(b"\n")  # raises, naming the line
        if self._line_no and not self._records:
            raise NotAReport('not a pytest-reportlog: no "$report_type" lines', self._where)
        if interrupted and not self._line_no:  # `pytest --help` truncates a --report-log file
            raise NotARun(f"an empty log, no session wrote to it: {NOT_A_RUN}", self._where)
        if not self._complete and not interrupted:
            raise ReportIncomplete("run not finished: no SessionFinish", self._where)
        # an attempt without a verdict (the test that ran when the session was interrupted)
        # is no result
        pending = (attempt.result() for attempt in self._pending.values())
        started, finished, took = self._started, self._finished, self._duration
        if took is None and started is not None and finished is not None:
            took = seconds(finished - started)
        return checked_run(
            ParsedRun(
                source_format=self._format,
                results=(*self._results, *(result for result in pending if result is not None)),
                started_at=started,
                finished_at=finished,
                duration=took,
                exit_code=self._exit_code,
                root=self._root,
                metadata=self._metadata,
                interrupted=not self._complete or self._exit_code == INTERRUPTED,
                session_id=self._session_id,
            ),
            self._where,
        )

    def _read(self, line: bytes) -> None:
        if line == self._last_collect:  # the same collector's report again: it adds nothing
            self._records += 1
            return
        if not line.strip():
            return
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise self._bad(f"not valid JSON: {exc.msg}") from None
        if not isinstance(record, dict):
            raise self._bad("not a JSON object")
        # pytest's subtests wrote `_report_type` before pytest-reportlog renamed it
        kind = record.get("$report_type", record.get("_report_type"))
        if kind is None:
            return
        self._records += 1
        if kind == "TestReport":
            self._test_report(record)
        elif kind == "SubTestReport":
            self._subtest_report(record)
        elif kind == "CollectReport":
            self._collect_report(record)
            self._last_collect = line
        elif kind == "SessionStart":
            self._session_start(_dict(record.get("anvild")))
        elif kind == "AnvildSession":  # anvild's plugin names the session in a user's reportlog
            self._session_id = _session_id(record.get("session_id"))
        elif kind == "SessionFinish":
            self._exit_code = exit_status(record.get("exitstatus"))
            own = _dict(record.get("anvild"))
            self._finished = moment(own.get("finished_at")) or self._finished
            self._started = moment(own.get("started_at")) or self._started
            self._duration = seconds(own.get("duration"))
            if isinstance(own.get("xdist_workers"), int):
                self._metadata["xdist_workers"] = own["xdist_workers"]
            if isinstance(own.get("pytest_summary"), str):  # the words pytest printed
                self._metadata["pytest_summary"] = own["pytest_summary"][:1000]
            self._complete = True

    def _session_start(self, own: dict[str, Any]) -> None:
        """A session record's first line: its id, start and provenance (anvild_pytest.record)."""
        if not own:
            return
        self._format = "anvild"
        self._session_id = _session_id(own.get("session_id"))
        self._started = moment(own.get("started_at"))
        self._own_start = self._started is not None
        root = own.get("root")
        self._root = clip_name(root) if isinstance(root, str) else None
        self._metadata = bounded(
            {k: v for k, v in own.items() if k not in ("record", "started_at", "root")}
        )

    def _collect_report(self, record: dict[str, Any]) -> None:
        """A failed collector is an error of its node; a skipped one (a module-level skip,
        `pytest.importorskip`) one skip, as pytest counts them."""
        outcome, node_id = record.get("outcome"), record.get("nodeid")
        if outcome not in ("failed", "skipped") or not isinstance(node_id, str) or not node_id:
            return  # the session's own collector has ""
        # pytest collects a node once: a repeated report of it is the same collector (40,000
        # copies are one result), a failure winning over a skip
        seen = self._collected.get(node_id)
        if seen is not None and (self._results[seen].status == ERROR or outcome == "skipped"):
            return
        attempt = _Attempt(clip_name(node_id), 0, ERROR if outcome == "failed" else SKIPPED)
        attempt.message, attempt.traceback = _describe(record)
        if outcome == "skipped":
            attempt.traceback = None
        result = attempt.result()
        assert result is not None  # its status is set
        if seen is not None:  # skipped first, failed now: the failure takes its place
            self._results[seen] = result
            return
        self._collected[node_id] = len(self._results)
        self._results.append(result)
        self._final += 1

    def _subtest_report(self, report: dict[str, Any]) -> None:
        node_id = report.get("nodeid")
        if not isinstance(node_id, str) or not node_id or report.get("when") != "call":
            return
        node_id = clip_name(node_id)
        attempt = self._pending.get(node_id)
        if attempt is not None:
            attempt.add_subtest(report)
        elif report.get("outcome") == "failed":
            # pytest-rerunfailures logs a test's own phases after its attempt, its subtests'
            # reports as they happen: the failure waits for the attempt it belongs to
            self._early_subtests.setdefault(node_id, report)

    def _test_report(self, report: dict[str, Any]) -> None:
        node_id, when = report.get("nodeid"), report.get("when")
        if not isinstance(node_id, str) or not node_id:
            raise self._bad("a TestReport without a 'nodeid'")
        node_id = clip_name(node_id)
        attempt = self._pending.get(node_id)
        if attempt is not None and when == "setup":  # a new attempt before the last one's teardown
            self._close(attempt)
            attempt = None
        if attempt is None:
            attempt = _Attempt(node_id, self._next_attempt.get(node_id, 0))
            self._pending[node_id] = attempt
            early = self._early_subtests.pop(node_id, None)
            if early is not None:
                attempt.add_subtest(early)
        attempt.add(report, self._path)
        start, stop = moment(report.get("start")), moment(report.get("stop"))
        if attempt.started is None:
            attempt.started = start
        if start is not None and not self._own_start:
            self._started = start if self._started is None else min(self._started, start)
        if stop is not None:
            self._finished = stop if self._finished is None else max(self._finished, stop)
        if when == "teardown":  # pytest always reports a teardown: the attempt is over
            self._close(attempt)

    def _bad(self, what: str) -> ReportError:
        return ReportError(f"line {self._line_no}: {what}", self._where)

    def _close(self, attempt: _Attempt) -> None:
        self._pending.pop(attempt.node_id, None)
        self._next_attempt[attempt.node_id] = attempt.attempt + 1
        result = attempt.result()
        if result is not None:
            self._results.append(result)
            if result.status != RERUN:
                self._final += 1


def parse_reportlog(path: Path, data: bytes) -> ParsedRun:
    """Read a whole reportlog; a run without SessionFinish raises ReportIncomplete."""
    if not data.strip():
        raise ReportError("empty report file", str(path))
    reader = ReportlogReader(path)
    reader.feed(data)
    return reader.finish()
