"""Read a JUnit XML report (pytest, surefire, jest, gotestsum, nextest, ...) into a ParsedRun."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from datetime import datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as safe_xml
from defusedxml import DefusedXmlException

from anvild.errors import NotAReport, ReportError, ReportIncomplete
from anvild.identity import key_from_junit, node_id_from_junit
from anvild.records import (
    ERROR,
    FAILED,
    PASSED,
    RERUN,
    SKIPPED,
    XFAILED,
    ParsedRun,
    TestResult,
    clip_message,
)

SUITE_TAGS = frozenset({"testsuites", "testsuite"})
# A testcase may hold several outcome elements (a failed call and a failed teardown); the most
# alarming one is its outcome.
OUTCOME_RANK = {"skipped": 0, "failure": 1, "error": 2}
OUTCOME_STATUS = {"skipped": SKIPPED, "failure": FAILED, "error": ERROR}
# Surefire's rerun format: each element is one earlier attempt of the testcase.
RERUN_TAGS = frozenset({"flakyFailure", "flakyError", "rerunFailure", "rerunError"})
# Tools such as tst and GoogleTest mark a test that never ran by status= alone, with no child.
NOT_RUN_STATUSES = frozenset({"disabled", "notrun", "skipped"})
XFAIL_TYPE = "pytest.xfail"
# Surefire copies every system property (the class path included) into each file.
PROPERTY_LIMIT = 64
PROPERTY_VALUE_LIMIT = 256
# expat's codes for a document that stops short: what a writer still filling the file leaves.
TRUNCATED_CODES = frozenset({3, 5, 6})  # no element found, unclosed token, partial character
_THOUSANDS = re.compile(r"[1-9]\d{0,2}(,\d{3})+(\.\d*)?")


def parse_junit(path: Path, data: bytes) -> ParsedRun:
    """Read one JUnit XML document; a valid one without testcases gives a run without results."""
    root = _parse_xml(path, data)
    root_tag = _local(root.tag)
    if root_tag not in SUITE_TAGS:
        # Well-formed XML of another kind (coverage.xml beside the reports): not a test report.
        raise NotAReport(f"not a JUnit report: root element <{_one_line(root_tag)}>", str(path))
    results: list[TestResult] = []
    attempts: dict[str, int] = {}
    properties: dict[str, str] = {}
    started: list[float] = []
    for element in _walk(root):
        tag = _local(element.tag)
        if tag == "testcase":
            _read_testcase(element, attempts, results)
        elif tag in SUITE_TAGS:
            moment = _epoch(element.get("timestamp"))
            if moment is not None:
                started.append(moment)
        elif tag == "properties":
            _read_properties(element, properties)
    started_at = min(started, default=None)
    duration = _run_duration(root, root_tag)
    finished_at = None if started_at is None or duration is None else started_at + duration
    return ParsedRun(
        source_format="junit",
        results=tuple(results),
        started_at=started_at,
        finished_at=finished_at,
        duration=duration,
        metadata={"properties": properties} if properties else {},
    )


def _parse_xml(path: Path, data: bytes) -> Element:
    """The root element, or a one-line ReportError saying why the bytes are not safe XML."""
    where = str(path)
    if not data.strip():
        raise ReportIncomplete("empty file: no XML written yet", where)
    try:
        root: Element = safe_xml.fromstring(data, forbid_dtd=True)
    except DefusedXmlException:
        # Entity expansion and external entities are how XML files attack their reader.
        raise ReportError("XML with a DOCTYPE or entity declaration is refused", where) from None
    except ParseError as error:
        reason = _one_line(str(error))
        if error.code in TRUNCATED_CODES:
            what = f"XML ends early (still being written?): {reason}"
            raise ReportIncomplete(what, where) from None
        raise ReportError(f"malformed XML: {reason}", where) from None
    except LookupError as error:
        raise ReportError(f"malformed XML: {_one_line(str(error))}", where) from None
    return root


def _walk(root: Element) -> Iterator[Element]:
    """The root and every child of every suite (testcases included), in document order.

    An explicit stack instead of recursion: a crafted file nested thousands of suites deep must
    not exhaust Python's recursion limit.
    """
    stack: list[Iterator[Element]] = [iter((root,))]
    while stack:
        element = next(stack[-1], None)
        if element is None:
            stack.pop()
            continue
        yield element
        if _local(element.tag) in SUITE_TAGS:
            stack.append(iter(element))


def _read_testcase(case: Element, attempts: dict[str, int], results: list[TestResult]) -> None:
    """Append a testcase's reruns, then its final attempt; a repeated testcase adds attempts."""
    classname = case.get("classname") or None
    name = case.get("name") or ""
    if not name:
        name, classname = classname or "", None
    if not name:
        return  # neither name nor classname: nothing to follow across runs
    key = key_from_junit(classname, name)
    file = case.get("file") or None
    node_id = node_id_from_junit(classname, name, file)
    outcome: Element | None = None
    # Surefire's reruns happened before the final outcome: they take the lower attempt numbers.
    steps: list[tuple[Element | None, str, str | None]] = []
    for child in case:
        tag = _local(child.tag)
        if tag in RERUN_TAGS:
            steps.append((child, RERUN, child.get("time")))
        elif tag in OUTCOME_RANK and (
            outcome is None or OUTCOME_RANK[tag] > OUTCOME_RANK[_local(outcome.tag)]
        ):
            outcome = child
    steps.append((outcome, _status(case, outcome), case.get("time")))
    first = attempts.get(key, 0)
    attempts[key] = first + len(steps)
    for attempt, (element, status, seconds) in enumerate(steps, start=first):
        results.append(
            TestResult(
                node_id=node_id,
                key=key,
                status=status,
                duration=_seconds(seconds),
                attempt=attempt,
                message=_message(element),
                traceback=_traceback(element),
                file=file,
            )
        )


def _status(case: Element, outcome: Element | None) -> str:
    """The status of a testcase's final attempt from its outcome element."""
    if outcome is None:
        return SKIPPED if (case.get("status") or "").lower() in NOT_RUN_STATUSES else PASSED
    tag = _local(outcome.tag)
    if tag == "skipped" and outcome.get("type") == XFAIL_TYPE:
        return XFAILED
    return OUTCOME_STATUS[tag]


def _message(outcome: Element | None) -> str | None:
    """The outcome's message attribute, else the first line of its text, clipped."""
    if outcome is None:
        return None
    message = outcome.get("message")
    if not message:
        text = (outcome.text or "").strip()
        message = text.partition("\n")[0]
    return clip_message(message)


def _traceback(outcome: Element | None) -> str | None:
    """The outcome's full text (surefire's rerun elements keep it in <stackTrace>)."""
    if outcome is None:
        return None
    text = outcome.text
    if not text or not text.strip():
        text = outcome.findtext("stackTrace")
    return text if text and text.strip() else None


def _read_properties(element: Element, properties: dict[str, str]) -> None:
    """Collect a suite's <property name value> pairs; the first value of a name wins."""
    for prop in element:
        if len(properties) >= PROPERTY_LIMIT:
            return
        name = prop.get("name")
        if _local(prop.tag) == "property" and name and name not in properties:
            properties[name] = (prop.get("value", prop.text) or "")[:PROPERTY_VALUE_LIMIT]


def _run_duration(root: Element, root_tag: str) -> float | None:
    """The root's time, else the sum of its suites' times."""
    duration = _seconds(root.get("time"))
    if duration is not None or root_tag != "testsuites":
        return duration
    times = [_seconds(suite.get("time")) for suite in root if _local(suite.tag) == "testsuite"]
    known = [seconds for seconds in times if seconds is not None]
    return sum(known) if known else None


def _seconds(text: str | None) -> float | None:
    """Seconds from a time attribute ("1.5", "1,234.5", "0,5"); None when absent or unreadable."""
    if not text:
        return None
    text = text.strip()
    if "," in text:
        text = text.replace(",", "") if _THOUSANDS.fullmatch(text) else text.replace(",", ".", 1)
    try:
        seconds = float(text)
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def _epoch(text: str | None) -> float | None:
    """Epoch seconds from an ISO 8601 or RFC 2822 timestamp; a naive one is local time."""
    if not text:
        return None
    text = text.strip()
    try:
        try:
            moment = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
        except ValueError:
            moment = parsedate_to_datetime(text)  # mocha writes "Sat, 03 Dec 2022 23:10:07 GMT"
        return moment.timestamp()
    except (TypeError, ValueError, IndexError, OverflowError, OSError):
        return None


def _local(tag: object) -> str:
    """An element's tag without its namespace; comments and processing instructions give ""."""
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""


def _one_line(text: str) -> str:
    """Text with its whitespace runs folded, so an error message stays on one line."""
    return " ".join(text.split())
