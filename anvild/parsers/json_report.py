"""pytest-json-report documents (``--json-report``) -> ParsedRun."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import msgspec
import orjson

from anvild.errors import NotAReport, ReportError, ReportIncomplete
from anvild.identity import key_from_node_id
from anvild.limits import NAME_LIMIT
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
    skip_reason,
)
from anvild.status import ERROR, FAILED, INTERRUPTED, PASSED, RERUN, SKIPPED, XFAILED, XPASSED

log = logging.getLogger(__name__)

OUTCOMES = {
    "passed": PASSED,
    "failed": FAILED,
    "error": ERROR,
    "skipped": SKIPPED,
    "xfailed": XFAILED,
    "xpassed": XPASSED,
    "rerun": RERUN,
    # pytest 9's subtests: the word pytest's terminal shows for a test whose subtests ran (with
    # -v), or an open pytest change's for a failed one
    "subtests passed": PASSED,
    "subtests failed": FAILED,
    "subtests skipped": SKIPPED,
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


def _plain_test(item: dict[str, Any]) -> _Test:
    """A test of a plain JSON object as the typed decoder would give it, tolerating wrong
    types field by field: what is not of its type is missing."""
    phases: dict[str, _Phase] = {}
    for name in _PHASES:
        phase = item.get(name)
        if isinstance(phase, dict):
            crash = phase.get("crash")
            message = crash.get("message") if isinstance(crash, dict) else None
            longrepr = phase.get("longrepr")
            phases[name] = _Phase(
                seconds(phase.get("duration")),
                phase.get("outcome"),
                _Crash(message) if isinstance(message, str) else None,
                longrepr if isinstance(longrepr, str) else None,
            )
        elif name == "call" and phase is not None:
            phases[name] = _Phase()  # called, though what its call did is unreadable
    node_id = item.get("nodeid")
    failure = item.get("anvild_subtest_failure")
    if isinstance(failure, dict):
        message, longrepr = failure.get("message"), failure.get("longrepr")
        failure = _SubtestFailure(
            message if isinstance(message, str) else None,
            longrepr if isinstance(longrepr, str) else None,
        )
    return _Test(
        node_id if isinstance(node_id, str) else "",
        item.get("outcome"),
        anvild_subtest_failure=failure if isinstance(failure, _SubtestFailure) else None,
        **phases,
    )


def _said(outcome: object, longrepr: str | None) -> str | None:
    """What a phase or collector that did not pass says without a crash message: a skip's
    reason (pytest-json-report writes pytest's (path, line, reason) as its text), else the
    last line of its text."""
    return (skip_reason(longrepr) if outcome == "skipped" else None) or last_line(longrepr)


def _collector_results(collectors: object, path: Path) -> list[TestResult]:
    """Failed collectors as errors of their node, skipped ones (a module-level skip,
    `pytest.importorskip`) as one skip each, as pytest counts them.

    pytest collects a node once: a node listed again is the same collector, its failure
    winning over a skip (a report repeating one 40,000 times is one result, not 40,000).
    """
    results: dict[str, TestResult] = {}
    for collector in collectors if isinstance(collectors, list) else ():
        if not isinstance(collector, dict):
            continue
        outcome = collector.get("outcome")
        if outcome not in ("failed", "skipped"):
            continue
        node_id = collector.get("nodeid")
        if not isinstance(node_id, str) or not node_id:
            continue  # the session collector has an empty node id; its errors show per file
        seen = results.get(node_id)
        if seen is not None and (seen.status == ERROR or outcome == "skipped"):
            continue
        raw, node_id = node_id, clip_name(node_id)
        longrepr = collector.get("longrepr")
        longrepr = longrepr if isinstance(longrepr, str) else None
        results[raw] = TestResult(
            node_id=node_id,
            key=key_from_node_id(node_id),
            status=ERROR if outcome == "failed" else SKIPPED,
            message=_said(outcome, longrepr),
            traceback=clip_traceback(longrepr) if outcome == "failed" else None,
            file=node_id.split("::", 1)[0],
        )
    return list(results.values())


# A test as anvild reads it, decoded by msgspec: the fields it stores, nothing else. Outcomes
# are of any type (map_outcome names an odd one); an odd type elsewhere makes the whole report
# read the tolerant way (_plain_test), into the same structures.


class _Crash(msgspec.Struct, gc=False):
    message: str | None = None


class _Phase(msgspec.Struct, gc=False):
    duration: float | None = None  # checked as seconds(): negative and huge ones are dropped
    outcome: object = None
    crash: _Crash | None = None
    longrepr: str | None = None


class _SubtestFailure(msgspec.Struct, gc=False):
    message: str | None = None
    longrepr: str | None = None


class _Test(msgspec.Struct, gc=False):
    nodeid: str
    outcome: object = None
    setup: _Phase | None = None
    call: _Phase | None = None
    teardown: _Phase | None = None
    anvild_subtest_failure: _SubtestFailure | None = None  # anvild's plugin adds it


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
    # Each test's bytes, not yet decoded: tests are decoded a chunk at a time and become records
    # as they go, so a huge report is never a tree of decoded objects whole (see _typed).
    tests: list[msgspec.Raw] | None = None
    anvild: dict[str, Any] | None = None


_DECODER = msgspec.json.Decoder(_Report)
_TESTS = msgspec.json.Decoder(list[_Test])
_CHUNK = 2000  # tests decoded at once: few calls, little memory


_INF = float("inf")
_QUIET = (PASSED, XPASSED)  # a pass keeps no message
_UNEXECUTED = (SKIPPED, XFAILED)  # a skip keeps its reason, no traceback


def _add_results(
    test: _Test, path: Path, out: list[TestResult], files: dict[str, str], modules: dict[str, str]
) -> None:
    """A test's results appended to out: the one home of how pytest-json-report's outcome and
    phases (setup, call, teardown) become a status, a duration, a message and a traceback.

    Nothing for a test that never reached its verdict (set up, then the session was
    interrupted: pytest-json-report still lists it as passed). After reruns
    pytest-json-report keeps one entry whose outcome stays "rerun" even when the last attempt
    passed, with the last attempt's phases: such a test is a rerun, then the pass its last
    call shows.
    """
    node_id = test.nodeid
    if not node_id:
        raise ReportError("a test without a 'nodeid'", str(path))
    setup, call, teardown = test.setup, test.call, test.teardown
    if (
        call is None
        and (setup is not None or teardown is not None)
        and all(p.outcome in (None, "passed") for p in (setup, teardown) if p is not None)
    ):
        return  # set up, never called: the session was interrupted before its verdict
    if len(node_id) > NAME_LIMIT:
        node_id = clip_name(node_id)
    outcome = test.outcome
    status = OUTCOMES.get(outcome) if isinstance(outcome, str) else None
    if status is None:
        status = map_outcome(outcome, path)
    total, timed = 0.0, False
    for phase in (setup, call, teardown):
        if phase is not None:
            took = phase.duration  # as seconds(): finite and not negative, else not counted
            if took is not None and 0.0 <= took < _INF:
                total += took
                timed = True
    failure = test.anvild_subtest_failure
    if status in _QUIET and failure is None:
        message = traceback = None  # a pass keeps no message (most tests: nothing more to read)
    else:
        status, message, traceback = _texts(status, setup, call, teardown, failure)
    file = node_id.partition("::")[0]
    result = TestResult(
        node_id,
        key_from_node_id(node_id, modules),
        status,
        total if timed and total < _INF else None,  # a sum of huge ones is no duration
        0,
        message,
        traceback,
        files.setdefault(file, file),  # one string a file
    )
    if status == RERUN and call is not None and call.outcome == "passed":
        out.append(msgspec.structs.replace(result, duration=None))
        out.append(msgspec.structs.replace(result, status=PASSED, message=None))
    else:
        out.append(result)


def _texts(
    status: str,
    setup: _Phase | None,
    call: _Phase | None,
    teardown: _Phase | None,
    failure: _SubtestFailure | None,
) -> tuple[str, str | None, str | None]:
    """A test's status, message and traceback from the phases that did not pass and the
    failed subtest anvild's plugin kept (failure)."""
    texts: dict[str, tuple[str | None, str | None]] = {}  # by phase, those that did not pass
    for name, phase in (("setup", setup), ("call", call), ("teardown", teardown)):
        if phase is not None and phase.outcome not in (None, "passed"):
            said = phase.crash.message if phase.crash is not None else None
            longrepr = phase.longrepr or None
            texts[name] = (said if said is not None else _said(phase.outcome, longrepr), longrepr)
    if failure is not None:
        # a failed subtest, as anvild's plugin kept it, fails its test (pytest-json-report may
        # show "subtests passed", the word of the last subtest) with its message, not "contains
        # 1 failed subtest" (or nothing, for unittest's subTest); a test whose own body failed
        # too keeps its body's error, as pytest's FAILED line does
        own = call is not None and call.outcome == "failed" and own_failure(call.longrepr)
        status = status if status == ERROR else FAILED
        if not own:
            said = failure.message or last_line(failure.longrepr)
            texts["call"] = (said, failure.longrepr or texts.get("call", (None, None))[1])
    # a failed setup or call, then a failed teardown: pytest prints a line for each, the result
    # keeps both, the first first
    message = traceback = None
    for name in ("setup", "call", "teardown") if texts else ():  # every phase passed: none
        said, longrepr = texts.get(name, (None, None))
        message, traceback = joined(message, said, "\n"), joined(traceback, longrepr, "\n\n")
    if status in _UNEXECUTED:
        traceback = None
    return status, clip_message(message), clip_traceback(traceback)


def _typed(report: _Report, path: Path) -> ParsedRun:
    results: list[TestResult] = []
    raw = report.tests or []
    files: dict[str, str] = {}
    modules: dict[str, str] = {}
    for start in range(0, len(raw), _CHUNK):
        for test in _TESTS.decode(b"[" + b",".join(raw[start : start + _CHUNK]) + b"]"):
            _add_results(test, path, results, files, modules)
    report.tests = raw = []  # their bytes' places in the document: no longer needed
    # one per node id before anything is built for it (_collector_results says which)
    unique: dict[str, _Collector] = {}
    for c in report.collectors:
        seen, failed = unique.get(c.nodeid), c.outcome == "failed"
        if (failed or c.outcome == "skipped") and (
            seen is None or (failed and seen.outcome != "failed")
        ):
            unique[c.nodeid] = c
    collectors = [
        {"nodeid": c.nodeid, "outcome": c.outcome, "longrepr": c.longrepr} for c in unique.values()
    ]
    return _assemble(
        path,
        results,
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
    files: dict[str, str] = {}
    modules: dict[str, str] = {}
    for item in tests:
        if not isinstance(item, dict):
            raise ReportError("an entry of 'tests' is not an object", str(path))
        _add_results(_plain_test(item), path, results, files, modules)
    summary = doc.get("summary")
    root = doc.get("root")
    return _assemble(
        path,
        results,
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
        results.append(result if attempt == 0 else msgspec.structs.replace(result, attempt=attempt))
    results.extend(_collector_results(collectors, path))
    own = metadata if isinstance(metadata, dict) else {}
    # anvild's plugin times the session as pytest's terminal does; pytest-json-report's own
    # duration leaves out part of it (xdist's start of its workers, for one)
    finished, took = moment(created), seconds(own.get("duration")) or seconds(duration)
    started = moment(own.get("started_at")) or (
        finished if finished is None or took is None else moment(finished - took)
    )
    code = exit_status(exit_code)
    session = own.get("session_id")
    run = ParsedRun(
        source_format="pytest-json-report",
        results=tuple(results),
        started_at=started,
        finished_at=finished,
        duration=took,
        exit_code=code,
        root=clip_name(root) if root is not None else None,
        environment=bounded(environment),
        metadata=bounded(metadata),
        interrupted=code == INTERRUPTED,
        session_id=session[:64] if isinstance(session, str) and session else None,
    )
    return checked_run(run, str(path))
