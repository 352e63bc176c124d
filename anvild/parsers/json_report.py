"""pytest-json-report documents (``--json-report``) -> ParsedRun."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

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
    clip_message,
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


def map_outcome(outcome: object, path: Path) -> str:
    """The stored status for an outcome string; unknown ones are mapped, logged once."""
    text = str(outcome).lower() if outcome is not None else ""
    status = OUTCOMES.get(text) or PLUGIN_OUTCOMES.get(text)
    if status is None:
        # Unknown words from plugins: anything that sounds like a failure fails, the rest
        # count as not executed, so nothing unknown is ever reported as a pass.
        status = FAILED if any(w in text for w in ("fail", "error")) else SKIPPED
    if text not in OUTCOMES and text not in _warned_outcomes:
        _warned_outcomes.add(text)
        log.warning("unknown outcome %r mapped to %s (%s)", text, status, path)
    return status


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _test_result(item: dict[str, Any], path: Path) -> TestResult:
    node_id = item.get("nodeid")
    if not isinstance(node_id, str) or not node_id:
        raise ReportError("a test without a 'nodeid'", str(path))
    status = map_outcome(item.get("outcome"), path)
    duration: float | None = None
    message = traceback = None
    for phase_name in _PHASES:
        phase = item.get(phase_name)
        if not isinstance(phase, dict):
            continue
        phase_duration = _number(phase.get("duration"))
        if phase_duration is not None:
            duration = (duration or 0.0) + phase_duration
        if message is None and phase.get("outcome") not in (None, "passed"):
            crash = phase.get("crash")
            if isinstance(crash, dict) and isinstance(crash.get("message"), str):
                message = crash["message"]
            longrepr = phase.get("longrepr")
            if isinstance(longrepr, str) and longrepr:
                traceback = longrepr
                if message is None:
                    message = longrepr.strip().splitlines()[-1] if longrepr.strip() else None
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
        traceback=traceback,
        file=node_id.split("::", 1)[0],
    )


def _collector_errors(collectors: object, path: Path) -> list[TestResult]:
    errors = []
    for collector in collectors if isinstance(collectors, list) else ():
        if not isinstance(collector, dict) or collector.get("outcome") != "failed":
            continue
        node_id = collector.get("nodeid")
        if not isinstance(node_id, str) or not node_id:
            continue  # the session collector has an empty node id; its errors show per file
        longrepr = collector.get("longrepr")
        longrepr = longrepr if isinstance(longrepr, str) else None
        message = longrepr.strip().splitlines()[-1] if longrepr and longrepr.strip() else None
        errors.append(
            TestResult(
                node_id=node_id,
                key=key_from_node_id(node_id),
                status=ERROR,
                message=clip_message(message),
                traceback=longrepr,
                file=node_id.split("::", 1)[0],
            )
        )
    return errors


def parse_json_report(path: Path, data: bytes) -> ParsedRun:
    """Read a pytest-json-report document; a collect-only report raises NotARun."""
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        if data.strip() and data.lstrip()[:1] == b"{" and "unexpected end" in str(exc).lower():
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
    attempts: dict[str, int] = {}
    for item in tests:
        if not isinstance(item, dict):
            raise ReportError("an entry of 'tests' is not an object", str(path))
        result = _test_result(item, path)
        attempt = attempts.get(result.key, -1) + 1
        attempts[result.key] = attempt
        results.append(result if attempt == 0 else replace(result, attempt=attempt))
    results.extend(_collector_errors(doc.get("collectors"), path))
    summary = doc.get("summary")
    total = summary.get("total") if isinstance(summary, dict) else None
    if not results and not tests and total in (0, None):
        raise NotARun("collect-only report (no tests ran): not a run", str(path))
    created = _number(doc.get("created"))
    duration = _number(doc.get("duration"))
    exit_code = doc.get("exitcode")
    environment = doc.get("environment")
    metadata = doc.get("anvild")
    root = doc.get("root")
    return ParsedRun(
        source_format="pytest-json-report",
        results=tuple(results),
        started_at=created - duration if created is not None and duration is not None else created,
        finished_at=created,
        duration=duration,
        exit_code=exit_code
        if isinstance(exit_code, int) and not isinstance(exit_code, bool)
        else None,
        root=root if isinstance(root, str) else None,
        environment=environment if isinstance(environment, dict) else {},
        metadata=metadata if isinstance(metadata, dict) else {},
    )
