"""pytest-json-report documents (``--json-report``) -> ParsedRun."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import msgspec
import orjson

from anvild.errors import NotAReport, NotARun, ReportError, ReportIncomplete
from anvild.identity import key_from_node_id
from anvild.records import (
    ERROR,
    FAILED,
    PASSED,
    RERUN,
    SKIPPED,
    XFAILED,
    XPASSED,
    ParsedRun,
    TestResult,
    bounded,
    clip_message,
    clip_name,
    clip_traceback,
    exit_status,
    last_line,
    moment,
    seconds,
)

log = logging.getLogger(__name__)

OUTCOMES = {
    "passed": PASSED,
    "failed": FAILED,
    "error": ERROR,
    "skipped": SKIPPED,
    "xfailed": XFAILED,
    "xpassed": XPASSED,
    "rerun": RERUN,
}

# Outcomes some plugins write that pytest itself does not; mapped by what they mean.
PLUGIN_OUTCOMES = {
    "deselected": SKIPPED,
    "warning": PASSED,
    "warnings": PASSED,
    "flaky": RERUN,
    "retried": RERUN,
    "retry": RERUN,
    "timeout": FAILED,
    "timedout": FAILED,
    "crashed": ERROR,
    "broken": ERROR,
    "interrupted": ERROR,
}

_PHASES = ("setup", "call", "teardown")
_warned_outcomes: set[str] = set()
# An outcome is a word: a longer one is read (and logged) by its start only, and a daemon fed
# hostile reports remembers a bounded number of words it has warned about.
_OUTCOME_LIMIT = 64
_WARNED_LIMIT = 256


def map_outcome(outcome: object, path: Path) -> str:
    """The stored status for an outcome string; unknown ones are mapped, logged once."""
    if isinstance(outcome, str):
        text = outcome[:_OUTCOME_LIMIT].lower()
    else:  # a number or a structure where a word belongs: its type, never its (huge) repr
        text = "" if outcome is None else f"<{type(outcome).__name__}>"
    status = OUTCOMES.get(text) or PLUGIN_OUTCOMES.get(text)
    if status is None:
        # Unknown words from plugins: anything that sounds like a failure fails, the rest
        # count as not executed, so nothing unknown is ever reported as a pass.
        status = FAILED if any(w in text for w in ("fail", "error")) else SKIPPED
    if text not in OUTCOMES and text not in _warned_outcomes:
        if len(_warned_outcomes) < _WARNED_LIMIT:
            _warned_outcomes.add(text)
        log.warning("unknown outcome %r mapped to %s (%s)", text, status, path)
    return status


# One phase (setup, call, teardown) as the result needs it: duration, outcome, crash
# message, long representation.
Phase = tuple[float | None, str | None, str | None, str | None]


def _result(node_id: object, outcome: object, phases: list[Phase], path: Path) -> TestResult:
    if not isinstance(node_id, str) or not node_id:
        raise ReportError("a test without a 'nodeid'", str(path))
    node_id = clip_name(node_id)
    status = OUTCOMES.get(outcome) if isinstance(outcome, str) else None
    status = status or map_outcome(outcome, path)
    known = [phase[0] for phase in phases if phase[0] is not None]
    duration = seconds(sum(known)) if known else None  # a sum of huge ones is no duration
    message = traceback = None
    for _, phase_outcome, crash, longrepr in phases:
        if message is None and phase_outcome not in (None, "passed"):
            message = crash
            if longrepr:
                traceback = longrepr
                if message is None:
                    message = last_line(longrepr)
    if status in (PASSED, XPASSED):
        message = traceback = None
    elif status in (SKIPPED, XFAILED):
        traceback = None
    return TestResult(
        node_id=node_id,
        key=key_from_node_id(node_id),
        status=status,
        duration=duration,
        message=clip_message(message),
        traceback=clip_traceback(traceback),
        file=node_id.split("::", 1)[0],
    )


def _test_result(item: dict[str, Any], path: Path) -> TestResult:
    """A test read from a plain JSON object, tolerating wrong types field by field."""
    phases: list[Phase] = []
    for phase_name in _PHASES:
        phase = item.get(phase_name)
        if not isinstance(phase, dict):
            continue
        crash = phase.get("crash")
        message = crash.get("message") if isinstance(crash, dict) else None
        longrepr = phase.get("longrepr")
        phases.append(
            (
                seconds(phase.get("duration")),
                phase.get("outcome"),
                message if isinstance(message, str) else None,
                longrepr if isinstance(longrepr, str) else None,
            )
        )
    return _result(item.get("nodeid"), item.get("outcome"), phases, path)


def _collector_errors(collectors: object, path: Path) -> list[TestResult]:
    errors = []
    for collector in collectors if isinstance(collectors, list) else ():
        if not isinstance(collector, dict) or collector.get("outcome") != "failed":
            continue
        node_id = collector.get("nodeid")
        if not isinstance(node_id, str) or not node_id:
            continue  # the session collector has an empty node id; its errors show per file
        node_id = clip_name(node_id)
        longrepr = collector.get("longrepr")
        longrepr = longrepr if isinstance(longrepr, str) else None
        errors.append(
            TestResult(
                node_id=node_id,
                key=key_from_node_id(node_id),
                status=ERROR,
                message=last_line(longrepr),
                traceback=clip_traceback(longrepr),
                file=node_id.split("::", 1)[0],
            )
        )
    return errors


class _Crash(msgspec.Struct):
    message: str | None = None


class _Phase(msgspec.Struct):
    duration: float | None = None  # checked by seconds(): negative and huge ones are dropped
    outcome: str | None = None
    crash: _Crash | None = None
    longrepr: str | None = None


class _Test(msgspec.Struct):
    nodeid: str
    outcome: str
    setup: _Phase | None = None
    call: _Phase | None = None
    teardown: _Phase | None = None


class _Collector(msgspec.Struct):
    nodeid: str = ""
    outcome: str = ""
    longrepr: str | None = None


class _Summary(msgspec.Struct):
    total: int | None = None


class _Report(msgspec.Struct):
    """The fields anvild reads; msgspec skips the rest (keywords, logs, metadata) unbuilt."""

    summary: _Summary
    created: float | None = None
    duration: float | None = None
    exitcode: int | None = None
    root: str | None = None
    environment: dict[str, Any] = msgspec.field(default_factory=dict)
    collectors: list[_Collector] = msgspec.field(default_factory=list)
    tests: list[_Test] | None = None
    anvild: dict[str, Any] | None = None


_DECODER = msgspec.json.Decoder(_Report)


def _typed_phase(phase: _Phase) -> Phase:
    crash = phase.crash.message if phase.crash is not None else None
    return seconds(phase.duration), phase.outcome, crash, phase.longrepr


def _typed(report: _Report, path: Path) -> ParsedRun:
    results = [
        _result(
            test.nodeid,
            test.outcome,
            [_typed_phase(p) for p in (test.setup, test.call, test.teardown) if p is not None],
            path,
        )
        for test in report.tests or ()
    ]
    collectors = [
        {"nodeid": c.nodeid, "outcome": c.outcome, "longrepr": c.longrepr}
        for c in report.collectors
        if c.outcome == "failed"
    ]
    return _assemble(
        path,
        results,
        bool(report.tests),
        collectors,
        report.summary.total,
        report.created,
        report.duration,
        report.exitcode,
        report.root,
        report.environment,
        report.anvild,
    )


def parse_json_report(path: Path, data: bytes) -> ParsedRun:
    """Read a pytest-json-report document; a collect-only report raises NotARun.

    A typed decoder reads well-formed reports without building what anvild does not keep;
    a report with odd types falls back to a tolerant reading, field by field.
    """
    try:
        return _typed(_DECODER.decode(data), path)
    except msgspec.ValidationError:
        pass
    except UnicodeDecodeError as exc:
        raise ReportError(f"not UTF-8: {exc.reason} at byte {exc.start}", str(path)) from None
    except msgspec.DecodeError:
        # msgspec says "truncated" for a lone surrogate escape too: orjson tells the reason
        # (and whether the document only stops short) on this error path.
        pass
    except RecursionError:  # a free-form object (environment, metadata) nested too deep
        raise ReportError("not a report: JSON nested too deep", str(path)) from None
    return _plain(path, data)


def _plain(path: Path, data: bytes) -> ParsedRun:
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        if exc.msg.startswith("unexpected end of data") and data.lstrip()[:1] == b"{":
            raise ReportIncomplete(
                "JSON report ends early: still being written?", str(path)
            ) from None
        raise ReportError(f"not valid JSON: {exc}", str(path)) from None
    if not isinstance(doc, dict) or "summary" not in doc:
        raise NotAReport("not a pytest-json-report document: no 'summary'", str(path))
    tests = doc.get("tests")
    if tests is None:
        tests = []
    if not isinstance(tests, list):
        raise ReportError("'tests' is not a list", str(path))
    results: list[TestResult] = []
    for item in tests:
        if not isinstance(item, dict):
            raise ReportError("an entry of 'tests' is not an object", str(path))
        results.append(_test_result(item, path))
    summary = doc.get("summary")
    root = doc.get("root")
    return _assemble(
        path,
        results,
        bool(tests),
        doc.get("collectors"),
        summary.get("total") if isinstance(summary, dict) else None,
        doc.get("created"),
        doc.get("duration"),
        doc.get("exitcode"),
        root if isinstance(root, str) else None,
        doc.get("environment"),
        doc.get("anvild"),
    )


def _assemble(
    path: Path,
    tests: list[TestResult],
    had_tests: bool,
    collectors: object,
    total: object,
    created: object,
    duration: object,
    exit_code: object,
    root: str | None,
    environment: object,
    metadata: object,
) -> ParsedRun:
    """The run from its results: repeated node ids become attempts, failed collectors errors.

    The run's own facts are checked here, for both readings: a timestamp, duration or exit code
    no database or clock can hold is dropped, free-form objects are kept small.
    """
    results: list[TestResult] = []
    attempts: dict[str, int] = {}
    for result in tests:
        attempt = attempts.get(result.key, -1) + 1
        attempts[result.key] = attempt
        results.append(result if attempt == 0 else replace(result, attempt=attempt))
    results.extend(_collector_errors(collectors, path))
    if not results and not had_tests and total in (0, None):
        raise NotARun("collect-only report (no tests ran): not a run", str(path))
    finished, took = moment(created), seconds(duration)
    started = finished if finished is None or took is None else moment(finished - took)
    return ParsedRun(
        source_format="pytest-json-report",
        results=tuple(results),
        started_at=started,
        finished_at=finished,
        duration=took,
        exit_code=exit_status(exit_code),
        root=clip_name(root) if root is not None else None,
        environment=bounded(environment),
        metadata=bounded(metadata),
    )
