"""Read a JUnit XML report (pytest, surefire, jest, gotestsum, nextest, ...) into a ParsedRun."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser

from anvild.errors import NotAReport, ReportError, ReportIncomplete
from anvild.identity import key_from_junit, node_id_from_junit
from anvild.limits import MESSAGE_LIMIT, NAME_LIMIT, TRACEBACK_LIMIT
from anvild.records import (
    ParsedRun,
    TestResult,
    clip_message,
    clip_name,
    clip_traceback,
    joined,
    moment,
    seconds,
    skip_reason,
)
from anvild.status import ERROR, FAILED, FAILING, PASSED, RERUN, SEVERITY, SKIPPED, XFAILED

SUITE_TAGS = frozenset({"testsuites", "testsuite"})
# One test may have several outcome elements (pytest 9 writes a <failure> per failed subtest)
# and several testcase elements (pytest writes a second one for an error in teardown after a
# failed call, and one per attempt under pytest-rerunfailures, the failed ones bare): all are
# one result whose status is the most severe (status.SEVERITY).
OUTCOME_STATUS = {"skipped": SKIPPED, "failure": FAILED, "error": ERROR}
# Surefire's rerun format (flakyFailure, flakyError, rerunFailure, rerunError, and any other
# rerun* element): each is one earlier attempt of the test, the only source of RERUN attempts.
RERUN_PREFIXES = ("flaky", "rerun")
# Tools such as tst and GoogleTest mark a test that never ran by status= alone, with no child.
NOT_RUN_STATUSES = frozenset({"disabled", "notrun", "skipped"})
XFAIL_TYPE = "pytest.xfail"
# pytest's message for a module skipped at collection (importorskip, allow_module_level); the
# reason is in the element's text, the repr of a (path, line, reason) tuple.
COLLECTION_SKIPPED = "collection skipped"
# Surefire copies every system property (the class path included) into each file.
PROPERTY_LIMIT = 64
PROPERTY_VALUE_LIMIT = 256
# expat's codes for a document that stops short: what a writer still filling the file leaves.
TRUNCATED_CODES = frozenset({3, 5, 6})  # no element found, unclosed token, partial character
INVALID_TOKEN = 4
_THOUSANDS = re.compile(r"[1-9]\d{0,2}(,\d{3})+(\.\d*)?")


def parse_junit(path: Path, data: bytes) -> ParsedRun:
    """Read one JUnit XML document; a valid one without testcases gives a run without results.

    The document is read as a stream of expat's events, handled as they come: only what a
    result keeps is held (a testcase's attributes and its outcomes' texts until it ends), so
    a file of half a million testcases never becomes a tree of half a million elements, and
    each element costs a few attribute look-ups whatever came before it.
    """
    where = str(path)
    if not data or data.isspace():  # the test bytes.strip() makes, without a copy
        raise ReportIncomplete("empty file: no XML written yet", where)
    reading = _Reading()
    try:
        _read(data, reading, where)
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
        results=reading.results(),
        started_at=started_at,
        finished_at=finished_at,
        duration=duration,
        metadata={"properties": reading.properties} if reading.properties else {},
        # anvild's plugin names the pytest session in a property (anvild_pytest.plugin)
        session_id=reading.properties.get("anvild_session") or None,
    )


# The first piece of a document fed to the parser at once, and again after each piece that
# gave an event.
FEED = 64 * 1024
# The longest tag (with its attributes) or comment read: expat (2.5) takes time quadratic in
# a token's length, 0.1 s for 8 MB, 6 s for 100 MB. Text is read piece by piece, in any size.
TOKEN_LIMIT = 8 * 1024 * 1024


def _read(data: bytes, reading: _Reading, where: str) -> None:
    """Feed the document to expat (without DTDs or entities), reading handling its events.

    expat scans a token it has not seen the end of again each time it is fed more of it (a
    50 MB attribute fed 16 KB at a time: 50 s): a piece that gave no event is followed by one
    twice as big. A tag or comment longer than TOKEN_LIMIT is refused as soon as it is seen
    to be: no test report has one, and reading it would take minutes.
    """
    # defusedxml's parser refuses DOCTYPEs and entities; no target: reading takes the events
    parser = DefusedXMLParser(target=_NO_TARGET, forbid_dtd=True)
    expat = parser.parser
    reading.listen(expat)
    view, at, size = memoryview(data), 0, FEED
    while at < len(data):
        events, broken = reading.events, None
        try:
            parser.feed(view[at : at + size])
        except ParseError as error:
            broken = error  # raised after what the piece told before it, as it came
        at = min(at + size, len(data))
        size = FEED if reading.events != events else size * 2
        # expat's position is that of the last thing it read: text moves it on, piece by
        # piece; a tag or comment not yet ended keeps it at its start
        if at - expat.CurrentByteIndex > TOKEN_LIMIT:
            limit = TOKEN_LIMIT // (1024 * 1024)
            raise ReportError(f"XML with a tag or comment over {limit} MB is refused", where)
        reading.check(where)
        if broken is not None:
            raise broken
    parser.close()
    reading.check(where)


class _NoTarget:
    """A parser target without methods: the parser installs no handlers of its own."""


_NO_TARGET = _NoTarget()


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
class _Verdict:
    """One test's result in the run so far, merged from all its testcase and outcome elements."""

    key: str
    node_id: str
    file: str | None
    status: str
    message: str | None = None
    traceback: str | None = None
    duration: float | None = None
    reruns: list[TestResult] | None = None  # a list only for the rare test with rerun elements
    # Whether the texts hold all they may keep: a later outcome of the same severity adds
    # nothing (a testcase repeated 700,000 times must not rebuild 64 KB, or read its own, each
    # time).
    full: bool = False

    def add(self, outcome: _Outcome) -> None:
        """Take one more outcome of the test: the most severe status wins.

        The texts of the outcomes that decide it are joined, the most severe first (it says why
        the status is what it is): every failed subtest's, or a failed call's and its teardown
        error's. A pass or a skip beside a failure adds nothing.
        """
        status = outcome[0]
        severer = SEVERITY[status] > SEVERITY[self.status]
        if status == self.status or (status in FAILING and self.status in FAILING):
            if severer:
                self._join(*_texts(outcome), self.message, self.traceback)
            elif not self.full:
                self._join(self.message, self.traceback, *_texts(outcome))
        elif severer:
            self.message, self.traceback = _texts(outcome)
            self.full = False
        if severer:
            self.status = status

    def _join(
        self, message: str | None, traceback: str | None, then: str | None, then_tb: str | None
    ) -> None:
        self.message = clip_message(joined(message, then, "\n"))
        self.traceback = clip_traceback(joined(traceback, then_tb, "\n\n"))
        self.full = len(self.message or "") >= MESSAGE_LIMIT and (
            self.traceback is None or len(self.traceback) >= TRACEBACK_LIMIT
        )

    def results(self) -> list[TestResult]:
        """The test's rerun attempts in the order written, then its result in this run."""
        reruns = self.reruns or []
        final = TestResult(
            node_id=self.node_id,
            key=self.key,
            status=self.status,
            duration=self.duration,
            attempt=len(reruns),
            message=self.message,
            traceback=self.traceback,
            file=self.file,
        )
        return [*reruns, final]


# An outcome element as read: its status, its attributes, its text before any child element
# and the text of its first <stackTrace> child (None without one). Its message and traceback
# are made from them only when a verdict takes them.
_Outcome = tuple[str, dict[str, str], str, str | None]
_NO_ATTRIBUTES: dict[str, str] = {}
# The outcome of a testcase without an outcome element.
_PASSED: list[_Outcome] = [(PASSED, _NO_ATTRIBUTES, "", None)]
_NOT_RUN: list[_Outcome] = [(SKIPPED, _NO_ATTRIBUTES, "", None)]


@dataclass(slots=True)
class _Reading:
    """What a JUnit document has told so far, its elements handled as expat starts and ends them.

    Only testcases and properties whose ancestors are all suites count (as in every JUnit
    dialect); of those only the attributes and texts a result or property keeps are held, and
    only until the element ends. The position is three numbers, not a stack of elements: a
    crafted file nested thousands of suites deep costs nothing more.
    """

    # Each test by key, in the order first seen: a repeated testcase merges into its entry.
    tests: dict[str, _Verdict] = field(default_factory=dict)
    properties: dict[str, str] = field(default_factory=dict)
    started: list[float] = field(default_factory=list)
    root_time: float | None = None
    root_tag: str = ""
    # The top-level suites' (start, time), either unknown: for the run's wall time.
    suites: list[tuple[float | None, float | None]] = field(default_factory=list)
    # Elements started and ended (their sum is what the feeding asks: did a piece give any),
    # and how many of the open ones from the root on are suites: an element counts when it
    # starts at depth (starts - ends) == chain, all its ancestors suites.
    starts: int = 0
    ends: int = 0
    chain: int = 0
    # The counted element open, if it is a testcase (its attributes) or properties.
    case: dict[str, str] | None = None
    in_properties: bool = False
    # The testcase's outcomes and rerun attempts so far, each made a list when it has one.
    outcomes: list[_Outcome] | None = None
    reruns: list[tuple[float | None, str | None, str | None]] | None = None
    # The outcome, rerun or property element open in it (its tag and attributes), its text
    # before any child and its first <stackTrace>'s, in pieces: two lists kept and cleared, so
    # that expat hands the pieces to list.append with no call into Python.
    child: str | None = None
    child_attrs: dict[str, str] = field(default_factory=dict)
    text: list[str] = field(default_factory=list)
    stack: list[str] = field(default_factory=list)
    stack_seen: bool = False
    take_text: Callable[[str], None] = field(init=False)  # text.append, made once
    take_stack: Callable[[str], None] = field(init=False)
    # The last testcase's classname and name attributes and its test's verdict: a testcase
    # written again and again is named and looked up once.
    names: tuple[str | None, str | None] = (None, None)
    verdict: _Verdict | None = None
    refused: str | None = None  # why the root is not a JUnit report: raised after the piece
    expat: Any = None

    def listen(self, expat: Any) -> None:
        """Take expat's events from now on: elements and, while a kept text is open, text."""
        expat.StartElementHandler = self.start
        expat.EndElementHandler = self.end
        # text outside the elements read goes nowhere (its handler is set only while one is
        # open); comments and processing instructions too
        expat.DefaultHandlerExpand = None
        expat.CharacterDataHandler = None
        expat.ordered_attributes = False
        self.expat = expat

    def __post_init__(self) -> None:
        self.take_text, self.take_stack = self.text.append, self.stack.append

    @property
    def events(self) -> int:
        return self.starts + self.ends

    def check(self, where: str) -> None:
        """Raise what reading the document so far has found it is not."""
        if self.refused is not None:
            raise NotAReport(self.refused, where)

    def start(self, name: str, attrs: dict[str, str]) -> None:
        depth = self.starts - self.ends
        self.starts += 1
        tag = name.rpartition("}")[2] if "}" in name else name
        chain = self.chain
        if depth == chain:
            if tag == "testcase" and depth:
                self.case = attrs
            else:
                self._start_counted(tag, attrs, depth)
        elif depth == chain + 1:
            if self.case is not None:
                if tag in OUTCOME_STATUS or tag.startswith(RERUN_PREFIXES):
                    self.child, self.child_attrs = tag, attrs
                    self.expat.CharacterDataHandler = self.take_text
            elif self.in_properties and tag == "property" and len(self.properties) < PROPERTY_LIMIT:
                self.child, self.child_attrs = tag, attrs
                self.expat.CharacterDataHandler = self.take_text
        elif self.child is not None:
            # a child element ends its parent's text; <stackTrace> holds the trace of a surefire
            # rerun element (or of an outcome without text)
            if depth == chain + 2 and name == "stackTrace" and not self.stack_seen:
                self.stack_seen = True
                self.expat.CharacterDataHandler = self.take_stack
            else:
                self.expat.CharacterDataHandler = None

    def _start_counted(self, tag: str, attrs: dict[str, str], depth: int) -> None:
        """An element whose ancestors are all suites (but a testcase): a suite, properties or
        another."""
        if tag in SUITE_TAGS:
            self.chain = depth + 1
            started = _epoch(attrs.get("timestamp"))
            if started is not None:
                self.started.append(started)
            if depth == 0:
                self.root_tag, self.root_time = tag, _seconds(attrs.get("time"))
            elif depth == 1 and tag == "testsuite":
                self.suites.append((started, _seconds(attrs.get("time"))))
        elif depth == 0:
            # XML of another kind (coverage.xml beside the reports): not a test report.
            self.refused = f"not a JUnit report: root element <{_one_line(tag)[:64]}>"
        elif tag == "properties":
            self.in_properties = True

    def end(self, name: str) -> None:
        self.ends += 1
        depth = self.starts - self.ends
        chain = self.chain
        if depth == chain:
            if self.case is not None:
                self._end_testcase(self.case)
            self.in_properties = False
        elif depth < chain:
            self.chain = depth  # a suite ends
        elif self.child is not None:
            self.expat.CharacterDataHandler = None  # a child's end ends its parent's text
            if depth != chain + 1:
                return
            # an outcome, rerun or property element ends: keep what it says
            tag, attrs, text = self.child, self.child_attrs, "".join(self.text)
            self.text.clear()
            self.child = stack = None
            if self.stack_seen:
                stack = "".join(self.stack)
                self.stack.clear()
                self.stack_seen = False
            if self.case is None:
                _read_property(attrs, text, self.properties)
            elif tag in OUTCOME_STATUS:
                if tag == "skipped" and attrs.get("type") == XFAIL_TYPE:
                    status = XFAILED
                else:
                    status = OUTCOME_STATUS[tag]
                if self.outcomes is None:
                    self.outcomes = []
                self.outcomes.append((status, attrs, text, stack))
            else:
                if self.reruns is None:
                    self.reruns = []
                duration = _seconds(attrs.get("time"))
                self.reruns.append((duration, _message(attrs, text), _traceback(text, stack)))

    def _end_testcase(self, attrs: dict[str, str]) -> None:
        """Merge a testcase into its test's verdict: its outcomes, its time, its rerun attempts."""
        outcomes, reruns = self.outcomes, self.reruns
        self.case = self.outcomes = self.reruns = None
        if not outcomes:
            # No outcome element: it passed, unless a status= says it never ran (tst, GoogleTest).
            not_run = (attrs.get("status") or "").lower() in NOT_RUN_STATUSES
            outcomes = _NOT_RUN if not_run else _PASSED
        names = (attrs.get("classname"), attrs.get("name"))
        if names == self.names:  # the same test as the testcase before
            verdict = self.verdict
        else:
            self.names = names
            verdict = self.verdict = self._verdict(attrs, _identity(*names), outcomes[0][0])
        if verdict is None:
            return  # neither name nor classname: nothing to follow across runs
        for outcome in outcomes:
            if not (verdict.full and outcome[0] == verdict.status):  # else it adds nothing
                verdict.add(outcome)
        time = _seconds(attrs["time"]) if "time" in attrs else None
        if time is not None:
            # pytest splits a test's time over its testcases (the call's, then the teardown's)
            verdict.duration = seconds((verdict.duration or 0.0) + time)
        for duration, message, traceback in reruns or ():
            verdict.reruns = verdict.reruns or []
            verdict.reruns.append(
                TestResult(
                    node_id=verdict.node_id,
                    key=verdict.key,
                    status=RERUN,
                    duration=duration,
                    attempt=len(verdict.reruns),
                    message=message,
                    traceback=traceback,
                    file=verdict.file,
                )
            )

    def _verdict(
        self, attrs: dict[str, str], identity: tuple[str | None, str, str] | None, status: str
    ) -> _Verdict | None:
        """The verdict of the testcase's test, new if first seen; None for a nameless one."""
        if identity is None:
            return None
        classname, name, key = identity
        verdict = self.tests.get(key)
        if verdict is None:
            file = clip_name(attrs.get("file") or "") or None
            node_id = clip_name(node_id_from_junit(classname, name, file))
            verdict = self.tests[key] = _Verdict(key, node_id, file, status)
        return verdict

    def results(self) -> tuple[TestResult, ...]:
        """Every test's attempts: one result per test, after its RERUN attempts if any."""
        return tuple(result for verdict in self.tests.values() for result in verdict.results())

    def duration(self) -> float | None:
        """The root's time, else the wall time its suites span.

        Suites that each say when they started span from the earliest start to the latest end
        (suites run in parallel overlap; summing their times would overstate the run); where
        one does not say, they are taken to have run one after another: the sum of their times.
        """
        if self.root_time is not None or self.root_tag != "testsuites":
            return self.root_time
        timed = [(start, time) for start, time in self.suites if time is not None]
        if not timed:
            return None
        placed = [(start, time) for start, time in timed if start is not None]
        if len(placed) < len(timed):
            return seconds(sum(time for _, time in timed))
        first = min(start for start, _ in placed)
        # offsets from the first start: one suite's span is its time exactly, not an epoch sum
        return seconds(max(start - first + time for start, time in placed))


def _identity(classname: str | None, name: str | None) -> tuple[str | None, str, str] | None:
    """A testcase's (classname, name, key), clipped; None without a name or classname."""
    classname = clip_name(classname or "") or None
    name = clip_name(name or "")
    if not name:
        name, classname = classname or "", None
    if not name:
        return None  # neither name nor classname: nothing to follow across runs
    return classname, name, clip_name(key_from_junit(classname, name))


def _texts(outcome: _Outcome) -> tuple[str | None, str | None]:
    """An outcome's message and traceback."""
    _, attrs, text, stack = outcome
    return _message(attrs, text), _traceback(text, stack)


def _message(attrs: dict[str, str], text: str) -> str | None:
    """An outcome's message attribute, else the first line of its text, clipped."""
    message = attrs.get("message")
    if message == COLLECTION_SKIPPED:
        message = skip_reason(text) or message
    if not message:
        message = text.strip().partition("\n")[0]
    return clip_message(message)


def _traceback(text: str, stack: str | None) -> str | None:
    """An outcome's full text (surefire's rerun elements keep it in <stackTrace>)."""
    if not text or text.isspace():
        text = stack or ""
    return clip_traceback(text) if text and not text.isspace() else None


def _read_property(attrs: dict[str, str], text: str, properties: dict[str, str]) -> None:
    """Keep a suite's <property name value>; the first value of a name wins."""
    name = attrs.get("name")
    if name and len(name) <= NAME_LIMIT and name not in properties:
        properties[name] = (attrs.get("value", text) or "")[:PROPERTY_VALUE_LIMIT]


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


def _one_line(text: str) -> str:
    """Text with its whitespace runs folded, so an error message stays on one line."""
    return " ".join(text.split())
