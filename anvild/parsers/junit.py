"""Read a JUnit XML report (pytest, surefire, jest, gotestsum, nextest, ...) into a ParsedRun."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
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
    NAME_LIMIT,
    PASSED,
    RERUN,
    SKIPPED,
    XFAILED,
    ParsedRun,
    TestResult,
    clip_message,
    clip_name,
    clip_traceback,
    moment,
    seconds,
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
INVALID_TOKEN = 4
_THOUSANDS = re.compile(r"[1-9]\d{0,2}(,\d{3})+(\.\d*)?")


def parse_junit(path: Path, data: bytes) -> ParsedRun:
    """Read one JUnit XML document; a valid one without testcases gives a run without results.

    The document is read as a stream: each testcase is read when it ends and then dropped, so
    a file of half a million testcases never becomes a tree of half a million elements.
    """
    where = str(path)
    if not data.strip():
        raise ReportIncomplete("empty file: no XML written yet", where)
    reading = _Reading()
    try:
        for event, element in safe_xml.iterparse(
            io.BytesIO(data), ("start", "end"), forbid_dtd=True
        ):
            if event == "start":
                reading.start(element, where)
            else:
                reading.end(element)
    except DefusedXmlException:
        # Entity expansion and external entities are how XML files attack their reader.
        raise ReportError("XML with a DOCTYPE or entity declaration is refused", where) from None
    except ParseError as error:
        raise _xml_error(error, data, where) from None
    except LookupError as error:
        raise ReportError(f"malformed XML: {_one_line(str(error))}", where) from None
    started_at = min(reading.started, default=None)
    duration = reading.duration()
    finished_at = None if started_at is None or duration is None else moment(started_at + duration)
    return ParsedRun(
        source_format="junit",
        results=tuple(reading.results),
        started_at=started_at,
        finished_at=finished_at,
        duration=duration,
        metadata={"properties": reading.properties} if reading.properties else {},
        # anvild's plugin names the pytest session in a property (anvild.pytest_plugin)
        session_id=reading.properties.get("anvild_session") or None,
    )


def _xml_error(error: ParseError, data: bytes, where: str) -> ReportError:
    """The one-line error for XML that expat could not read."""
    reason = _one_line(str(error))
    if error.code in TRUNCATED_CODES:
        return ReportIncomplete(f"XML ends early (still being written?): {reason}", where)
    if error.code == INVALID_TOKEN and _undeclared_non_utf8(data):
        # latin-1 or cp1252 written without saying so: XML without a declaration is UTF-8
        reason += ": not UTF-8, and no encoding declared"
    return ReportError(f"malformed XML: {reason}", where)


def _undeclared_non_utf8(data: bytes) -> bool:
    """Whether data looks like XML in another encoding than UTF-8 that does not say which."""
    head = data[:200].lstrip()
    if not head.startswith(b"<") or b"encoding" in head.partition(b"?>")[0]:
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


@dataclass(slots=True)
class _Reading:
    """What a JUnit document has told so far, fed its elements as they start and end.

    Only testcases and properties whose ancestors are all suites count (as in every JUnit
    dialect); a suite's child is dropped from it once read, the elements inside it with it.
    """

    results: list[TestResult] = field(default_factory=list)
    attempts: dict[str, int] = field(default_factory=dict)
    properties: dict[str, str] = field(default_factory=dict)
    started: list[float] = field(default_factory=list)
    # The open elements, each with whether it and all its ancestors are suites. An explicit
    # stack: a crafted file nested thousands of suites deep must not exhaust recursion.
    open: list[tuple[Element, bool]] = field(default_factory=list)
    root_time: float | None = None
    root_tag: str = ""
    suite_times: list[float | None] = field(default_factory=list)

    def start(self, element: Element, where: str) -> None:
        tag = _local(element.tag)
        if not self.open:
            if tag not in SUITE_TAGS:
                # XML of another kind (coverage.xml beside the reports): not a test report.
                what = f"not a JUnit report: root element <{_one_line(tag)[:64]}>"
                raise NotAReport(what, where)
            self.root_tag, self.root_time = tag, _seconds(element.get("time"))
        in_suites = not self.open or self.open[-1][1]
        if in_suites and tag in SUITE_TAGS:
            started = _epoch(element.get("timestamp"))
            if started is not None:
                self.started.append(started)
            if len(self.open) == 1 and tag == "testsuite":
                self.suite_times.append(_seconds(element.get("time")))
        self.open.append((element, in_suites and tag in SUITE_TAGS))

    def end(self, element: Element) -> None:
        self.open.pop()
        in_suites = bool(self.open) and self.open[-1][1]
        tag = _local(element.tag)
        if not in_suites:
            return  # inside a testcase or another element: read, or dropped, with it
        if tag == "testcase":
            _read_testcase(element, self.attempts, self.results)
        elif tag == "properties":
            _read_properties(element, self.properties)
        # Its earlier siblings are gone already; later ones may be there (events come in
        # batches, after the tree builder saw what follows): it is the first child.
        parent = self.open[-1][0]
        if len(parent) and parent[0] is element:
            del parent[0]

    def duration(self) -> float | None:
        """The root's time, else the sum of its suites' times."""
        if self.root_time is not None or self.root_tag != "testsuites":
            return self.root_time
        known = [time for time in self.suite_times if time is not None]
        return seconds(sum(known)) if known else None


def _read_testcase(case: Element, attempts: dict[str, int], results: list[TestResult]) -> None:
    """Append a testcase's reruns, then its final attempt; a repeated testcase adds attempts."""
    classname = clip_name(case.get("classname") or "") or None
    name = clip_name(case.get("name") or "")
    if not name:
        name, classname = classname or "", None
    if not name:
        return  # neither name nor classname: nothing to follow across runs
    key = clip_name(key_from_junit(classname, name))
    file = clip_name(case.get("file") or "") or None
    node_id = clip_name(node_id_from_junit(classname, name, file))
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
    for attempt, (element, status, time) in enumerate(steps, start=first):
        results.append(
            TestResult(
                node_id=node_id,
                key=key,
                status=status,
                duration=_seconds(time),
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
    if not text or text.isspace():
        text = outcome.findtext("stackTrace")
    return clip_traceback(text) if text and not text.isspace() else None


def _read_properties(element: Element, properties: dict[str, str]) -> None:
    """Collect a suite's <property name value> pairs; the first value of a name wins."""
    for prop in element:
        if len(properties) >= PROPERTY_LIMIT:
            return
        name = prop.get("name")
        if name and len(name) > NAME_LIMIT:
            continue
        if _local(prop.tag) == "property" and name and name not in properties:
            properties[name] = (prop.get("value", prop.text) or "")[:PROPERTY_VALUE_LIMIT]


def _seconds(text: str | None) -> float | None:
    """Seconds from a time attribute ("1.5", "1,234.5", "0,5"); None when absent or unreadable."""
    if not text:
        return None
    text = text.strip()
    if "," in text:
        text = text.replace(",", "") if _THOUSANDS.fullmatch(text) else text.replace(",", ".", 1)
    try:
        return seconds(float(text))
    except ValueError:
        return None


def _epoch(text: str | None) -> float | None:
    """Epoch seconds from an ISO 8601 or RFC 2822 timestamp; a naive one is local time."""
    if not text:
        return None
    text = text.strip()
    try:
        try:
            when = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
        except ValueError:
            when = parsedate_to_datetime(text)  # mocha writes "Sat, 03 Dec 2022 23:10:07 GMT"
        return moment(when.timestamp())
    except (TypeError, ValueError, IndexError, OverflowError, OSError):
        return None


def _local(tag: object) -> str:
    """An element's tag without its namespace; comments and processing instructions give ""."""
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""


def _one_line(text: str) -> str:
    """Text with its whitespace runs folded, so an error message stays on one line."""
    return " ".join(text.split())
