"""Hostile and broken reports: every one is a run or one clear rejection, never a crash.

A fixed corpus (truncated, invalid and wrongly typed JSON, huge strings, deep nesting, non-UTF-8,
binary, empty files, XML bombs and external entities, half a million testcases, broken
reportlogs) is read by the parsers and by a real daemon; hypothesis mutates real reports
structure by structure. What a user relies on: the daemon stays up and within its memory, each
bad file is rejected once with one log line naming it, nothing partial is ever stored, and no
report makes a result keep megabytes or leak a file it points at.
"""

from __future__ import annotations

import copy
import json
import os
import random
import sqlite3
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from anvild.errors import NotAReport, NotARun, ReportError, ReportIncomplete
from anvild.limits import MESSAGE_LIMIT, NAME_LIMIT, OBJECT_LIMIT, TRACEBACK_LIMIT
from anvild.parsers.detect import parse_bytes
from anvild.records import LATEST, ParsedRun
from anvild.status import FAILED, STATUSES
from tests.conftest import anvild, wait_for
from tests.test_daemon import alive, status

MB = 1024 * 1024
HUGE = 100 * MB
JUNIT_CASES = 500_000
SECRET = "anvild-test-secret-7f3c2a"  # the content of a file hostile reports point at
PASSWD = "root:x:0:0"


# --- what every reading must satisfy ---------------------------------------------------------


def read(name: str, data: bytes) -> ParsedRun | ReportError:
    """Parse data as the report at name: a run, or the ReportError it raised (nothing else)."""
    path = Path("/reports") / name
    try:
        run = parse_bytes(path, data)
    except ReportError as exc:
        message = str(exc)
        assert "\n" not in message and "\r" not in message, message
        assert str(path) in message, message
        assert len(message) < 1000, message[:200]
        assert SECRET not in message and PASSWD not in message
        return exc
    assert isinstance(run, ParsedRun)
    assert_bounded(run)
    return run


def assert_bounded(run: ParsedRun) -> None:
    """What the store would get: statuses it knows, names, messages and objects kept small."""
    for result in run.results:
        assert result.status in STATUSES
        assert result.node_id and result.key
        assert len(result.node_id) <= NAME_LIMIT and len(result.key) <= 2 * NAME_LIMIT + 2
        assert result.file is None or len(result.file) <= NAME_LIMIT
        assert result.message is None or len(result.message) <= MESSAGE_LIMIT
        assert result.traceback is None or len(result.traceback) <= TRACEBACK_LIMIT + 100
        assert result.duration is None or 0 <= result.duration < float("inf")
        for text in (result.node_id, result.message or "", result.traceback or ""):
            assert SECRET not in text and PASSWD not in text
    for moment in (run.started_at, run.finished_at):
        assert moment is None or 0 <= moment < LATEST
    assert run.duration is None or 0 <= run.duration < float("inf")
    assert run.exit_code is None or -(2**31) <= run.exit_code < 2**31
    for free_form in (run.environment, run.metadata):
        # the store writes them as JSON: they must encode, and stay small
        assert len(json.dumps(dict(free_form), default=str)) <= OBJECT_LIMIT + 1000


# --- the corpus ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Samples:
    """Real reports of the sample project, and a secret file hostile reports point at."""

    json: bytes
    junit: bytes
    reportlog: bytes
    secret: Path

    @property
    def doc(self) -> dict[str, Any]:
        return json.loads(self.json)


Build = Callable[[Samples], bytes]
Check = Callable[[ParsedRun], None]


@dataclass(frozen=True)
class Case:
    """One hostile file: how to build it, its suffix, and what reading it must give."""

    build: Build
    suffix: str
    expect: type[ReportError] | None = None  # None: a run
    reason: str = ""  # in the rejection's message
    check: Check | None = None  # about the run

    @property
    def rejected(self) -> bool:
        """Whether the daemon counts it as rejected (a collect-only report is not)."""
        return self.expect is not None and self.expect is not NotARun


def mutated(change: Callable[[dict[str, Any]], object]) -> Build:
    """The sample pytest-json-report with one change made to it."""

    def build(samples: Samples) -> bytes:
        doc = samples.doc
        change(doc)
        return json.dumps(doc).encode()

    return build


def failed_test(doc: dict[str, Any]) -> dict[str, Any]:
    return next(t for t in doc["tests"] if t["nodeid"].endswith("test_fails"))


def cut(kind: str, fraction: float) -> Build:
    def build(samples: Samples) -> bytes:
        data: bytes = getattr(samples, kind)
        return data[: max(1, int(len(data) * fraction))]

    return build


def const(data: bytes) -> Build:
    return lambda samples: data


def junit_of(body: str, encoding: str = "utf-8", declare: bool = True) -> Build:
    head = f'<?xml version="1.0" encoding="{encoding}"?>' if declare else ""
    return const((head + body).encode(encoding))


def xml_with_entity(declaration: str, use: str) -> Build:
    def build(samples: Samples) -> bytes:
        text = declaration.replace("SECRET_URL", samples.secret.as_uri())
        return (
            f'<?xml version="1.0"?><!DOCTYPE testsuite [{text}]>'
            f'<testsuite><testcase name="t"><failure message="{use}">{use}</failure></testcase>'
            "</testsuite>"
        ).encode()

    return build


def big_junit(samples: Samples) -> bytes:
    """A valid JUnit file of JUNIT_CASES testcases, one in a thousand failed."""
    parts = [b'<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="big">']
    for n in range(JUNIT_CASES):
        if n % 1000 == 7:
            parts.append(
                b'<testcase classname="tests.test_big.TestBig" name="test_%07d" time="0.001">'
                b'<failure message="boom %d">trace</failure></testcase>' % (n, n)
            )
        else:
            parts.append(
                b'<testcase classname="tests.test_big.TestBig" name="test_%07d" time="0.001"/>' % n
            )
    parts.append(b"</testsuite></testsuites>")
    return b"".join(parts)


def reportlog_lines(change: Callable[[list[bytes]], list[bytes]]) -> Build:
    return lambda samples: b"".join(change(samples.reportlog.splitlines(keepends=True)))


def has_results(count: int, failed: int | None = None) -> Check:
    def check(run: ParsedRun) -> None:
        assert len(run.results) == count
        if failed is not None:
            assert sum(r.status == FAILED for r in run.results) == failed

    return check


def all_durations_unknown(run: ParsedRun) -> None:
    assert run.results and all(r.duration is None for r in run.results)


def no_start(run: ParsedRun) -> None:
    assert run.started_at is None and run.finished_at is None and run.results


def no_exit_code(run: ParsedRun) -> None:
    assert run.exit_code is None and run.results


def clipped_failure(run: ParsedRun) -> None:
    (failed,) = [r for r in run.results if r.node_id.endswith("test_fails")]
    assert failed.status == FAILED and failed.message and failed.traceback


def clipped_node_id(run: ParsedRun) -> None:
    long = [r for r in run.results if len(r.node_id) == NAME_LIMIT]
    assert len(long) == 1 and long[0].node_id.startswith("nnnn")
    assert len({r.key for r in run.results}) == len(run.results)


def named_cafe(run: ParsedRun) -> None:
    assert [r.node_id for r in run.results] == ["café"]


def environment_without_platform(run: ParsedRun) -> None:
    assert "Platform" not in run.environment and "Python" in run.environment


def metadata_without(key: str) -> Check:
    def check(run: ParsedRun) -> None:
        assert key not in run.metadata and run.results

    return check


DEEP = 100_000
SUITES_DEEP = "<testsuite>" * DEEP + "</testsuite>" * DEEP
LAUGHS = "".join(f'<!ENTITY lol{n} "{f"&lol{n - 1};" * 10}">' for n in range(1, 10))

CASES: dict[str, Case] = {
    # JSON cut while pytest-json-report writes it, at several points
    **{
        f"json-cut-at-{int(f * 100)}pct": Case(cut("json", f), ".json", ReportIncomplete)
        for f in (0.0, 0.1, 0.5, 0.9, 0.999)
    },
    "json-trailing-garbage": Case(lambda s: s.json + b"}garbage", ".json", ReportError, "JSON"),
    "json-trailing-comma": Case(const(b'{"summary": {}, "tests": [],}'), ".json", ReportError),
    "json-single-quotes": Case(const(b"{'summary': {}, 'tests': []}"), ".json", ReportError),
    "json-nan-duration": Case(
        lambda s: s.json.replace(b'"duration": ', b'"duration": NaN, "x": ', 1), ".json", ReportError
    ),
    # wrong types at every level
    "json-tests-as-dict": Case(
        mutated(lambda d: d.update(tests={"a": 1})), ".json", ReportError, "'tests' is not a list"
    ),
    "json-tests-as-string": Case(mutated(lambda d: d.update(tests="x")), ".json", ReportError),
    "json-test-as-list": Case(
        mutated(lambda d: d["tests"].append(["t.py::x"])), ".json", ReportError, "not an object"
    ),
    "json-outcome-as-int": Case(
        mutated(lambda d: d["tests"][0].update(outcome=1)), ".json", check=has_results(12)
    ),
    "json-outcome-as-huge-list": Case(
        mutated(lambda d: d["tests"][0].update(outcome=list(range(200_000)))),
        ".json",
        check=has_results(12),
    ),
    "json-nodeid-as-list": Case(
        mutated(lambda d: d["tests"][0].update(nodeid=["a", "b"])), ".json", ReportError, "nodeid"
    ),
    "json-nodeid-empty": Case(
        mutated(lambda d: d["tests"][0].update(nodeid="")), ".json", ReportError, "nodeid"
    ),
    "json-duration-as-string": Case(
        mutated(
            lambda d: [t[p].update(duration="1.5") for t in d["tests"] for p in ("setup", "call", "teardown") if p in t]
        ),
        ".json",
        check=all_durations_unknown,
    ),
    "json-durations-overflow": Case(
        mutated(
            lambda d: [t[p].update(duration=1.7e308) for t in d["tests"] for p in ("setup", "call", "teardown") if p in t]
        ),
        ".json",
        check=all_durations_unknown,
    ),
    "json-summary-missing": Case(mutated(lambda d: d.pop("summary")), ".json", NotAReport),
    "json-summary-as-list": Case(
        mutated(lambda d: d.update(summary=[1, 2])), ".json", check=has_results(12)
    ),
    "json-created-as-string": Case(
        mutated(lambda d: d.update(created="yesterday")), ".json", check=no_start
    ),
    "json-created-in-year-3-million": Case(
        mutated(lambda d: d.update(created=1e26)), ".json", check=no_start
    ),
    "json-created-negative": Case(
        mutated(lambda d: d.update(created=-1e12)), ".json", check=no_start
    ),
    "json-exitcode-beyond-64-bits": Case(
        mutated(lambda d: d.update(exitcode=10**30)), ".json", check=no_exit_code
    ),
    "json-exitcode-as-bool": Case(
        mutated(lambda d: d.update(exitcode=True)), ".json", check=no_exit_code
    ),
    "json-environment-as-list": Case(
        mutated(lambda d: d.update(environment=[1])), ".json", check=has_results(12)
    ),
    "json-collectors-as-string": Case(
        mutated(lambda d: d.update(collectors="x")), ".json", check=has_results(11)
    ),
    "json-phases-and-crash-odd": Case(
        mutated(
            lambda d: failed_test(d).update(
                setup=3, call={"outcome": 5, "crash": ["x"], "longrepr": {"a": 1}}, teardown=None
            )
        ),
        ".json",
        check=has_results(12),
    ),
    "json-root-as-number": Case(mutated(lambda d: d.update(root=5)), ".json", check=has_results(12)),
    # missing keys
    "json-test-without-outcome": Case(
        mutated(lambda d: d["tests"][0].pop("outcome")), ".json", check=has_results(12)
    ),
    "json-test-without-nodeid": Case(
        mutated(lambda d: d["tests"][0].pop("nodeid")), ".json", ReportError, "nodeid"
    ),
    "json-without-tests-or-times": Case(
        mutated(lambda d: [d.pop(k) for k in ("tests", "created", "duration")]),
        ".json",
        check=has_results(1),  # the collection error is still a result
    ),
    "json-collect-only": Case(
        const(b'{"created": 1.0, "summary": {"total": 0}, "collectors": []}'), ".json", NotARun
    ),
    # huge strings: a result never keeps them
    "json-100MB-crash-message": Case(
        mutated(lambda d: failed_test(d)["call"]["crash"].update(message="m" * HUGE)),
        ".json",
        check=clipped_failure,
    ),
    "json-100MB-longrepr-of-newlines": Case(
        mutated(
            lambda d: [
                failed_test(d)["call"].pop("crash"),
                failed_test(d)["call"].update(longrepr="E boom" + "\n" * HUGE),
            ]
        ),
        ".json",
        check=clipped_failure,
    ),
    "json-100MB-nodeid": Case(
        mutated(lambda d: d["tests"].append({**d["tests"][0], "nodeid": "n" * HUGE})),
        ".json",
        check=clipped_node_id,
    ),
    "json-100MB-environment-value": Case(
        mutated(lambda d: d.update(environment={"Python": "3.11", "Platform": "p" * HUGE})),
        ".json",
        check=environment_without_platform,
    ),
    "json-deep-metadata-value": Case(
        mutated(lambda d: d.update(anvild={"deep": json.loads("[" * 500 + "]" * 500), "x": 1})),
        ".json",
        check=metadata_without("deep"),
    ),
    # deep nesting
    "json-100k-deep-array": Case(const(b"[" * DEEP + b"]" * DEEP), ".json", NotAReport),
    "json-100k-deep-tests": Case(
        const(b'{"summary": {}, "tests": ' + b"[" * DEEP + b"]" * DEEP + b"}"), ".json", ReportError
    ),
    "json-100k-deep-environment": Case(
        const(b'{"summary": {"total": 1}, "environment": {"a": ' + b"[" * DEEP + b"]" * DEEP + b"}}"),
        ".json",
        ReportError,
        "nested too deep",
    ),
    "xml-100k-deep-suites": Case(const(SUITES_DEEP.encode()), ".xml", check=has_results(0)),
    "xml-100k-deep-suites-with-a-test": Case(
        junit_of("<testsuite>" * DEEP + '<testcase name="deep"/>' + "</testsuite>" * DEEP),
        ".xml",
        check=has_results(1),
    ),
    "xml-100k-deep-inside-a-test": Case(
        junit_of('<testsuite><testcase name="a">' + "<x>" * DEEP + "</x>" * DEEP + "</testcase></testsuite>"),
        ".xml",
        check=has_results(1),
    ),
    "xml-100k-deep-unclosed": Case(const(b"<testsuite>" * DEEP), ".xml", ReportIncomplete),
    # not UTF-8
    "json-invalid-utf8-in-message": Case(
        lambda s: s.json.replace(b"arithmetic is broken", b"arithmetic \xff\xfe broken"),
        ".json",
        ReportError,
        "UTF-8",
    ),
    "json-lone-surrogate-escape": Case(
        lambda s: s.json.replace(b"arithmetic is broken", b"arithmetic \\ud800 broken"),
        ".json",
        ReportError,  # not ReportIncomplete: the document is whole, waiting will not help
        "surrogate",
    ),
    "json-overlong-utf8": Case(
        lambda s: s.json.replace(b"arithmetic is broken", b"arithmetic \xc0\xaf broken"),
        ".json",
        ReportError,
    ),
    "xml-latin1-declared": Case(
        junit_of('<testsuite><testcase name="café"/></testsuite>', "iso-8859-1"),
        ".xml",
        check=named_cafe,
    ),
    "xml-latin1-undeclared": Case(
        junit_of('<testsuite><testcase name="café"/></testsuite>', "iso-8859-1", declare=False),
        ".xml",
        ReportError,
        "not UTF-8, and no encoding declared",
    ),
    "xml-utf16-with-bom": Case(
        junit_of('<testsuite><testcase name="café"/></testsuite>', "utf-16"),
        ".xml",
        check=named_cafe,
    ),
    "xml-invalid-utf8-declared-utf8": Case(
        const(b'<?xml version="1.0" encoding="utf-8"?><testsuite><testcase name="a\xff"/></testsuite>'),
        ".xml",
        ReportError,
        "malformed XML",
    ),
    # binary
    "binary-random": Case(const(random.Random(7).randbytes(64 * 1024)), ".xml", NotAReport),
    "binary-png": Case(const(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(200)), ".xml", NotAReport),
    "binary-nul-bytes": Case(const(bytes(4096)), ".json", NotAReport),
    "binary-gzip": Case(const(b"\x1f\x8b\x08\x00" + bytes(100)), ".json", NotAReport),
    "text-not-a-report": Case(const(b"hello, this is not a report\n"), ".xml", NotAReport),
    # empty
    "empty": Case(const(b""), ".xml", ReportError, "empty"),
    "whitespace-only": Case(const(b" \n\t\r\n  "), ".json", ReportError, "empty"),
    "bom-only": Case(const(b"\xef\xbb\xbf"), ".json", ReportError, "empty"),
    # XML bombs and entities: refused before anything is expanded or fetched
    "xml-billion-laughs": Case(
        junit_of(f'<!DOCTYPE t [<!ENTITY lol0 "lol">{LAUGHS}]><testsuite><testcase name="&lol9;"/></testsuite>'),
        ".xml",
        ReportError,
        "DOCTYPE",
    ),
    "xml-quadratic-blowup": Case(
        junit_of(
            f'<!DOCTYPE t [<!ENTITY a "{"x" * 50_000}">]><testsuite><testcase name="t">'
            f'<failure>{"&a;" * 50_000}</failure></testcase></testsuite>'
        ),
        ".xml",
        ReportError,
        "DOCTYPE",
    ),
    "xml-external-entity-passwd": Case(
        xml_with_entity('<!ENTITY x SYSTEM "file:///etc/passwd">', "&x;"), ".xml", ReportError
    ),
    "xml-external-entity-secret": Case(
        xml_with_entity('<!ENTITY x SYSTEM "SECRET_URL">', "&x;"), ".xml", ReportError
    ),
    "xml-external-entity-http": Case(
        xml_with_entity('<!ENTITY x SYSTEM "http://127.0.0.1:9/x">', "&x;"), ".xml", ReportError
    ),
    "xml-parameter-entity": Case(
        xml_with_entity('<!ENTITY % p SYSTEM "SECRET_URL"> %p;', "x"), ".xml", ReportError
    ),
    "xml-external-dtd": Case(
        junit_of('<!DOCTYPE testsuite SYSTEM "http://127.0.0.1:9/x.dtd"><testsuite/>'),
        ".xml",
        ReportError,
        "DOCTYPE",
    ),
    "xml-xinclude-secret": Case(
        lambda s: (
            '<testsuite xmlns:xi="http://www.w3.org/2001/XInclude"><testcase name="t"><failure>'
            f'<xi:include href="{s.secret.as_uri()}" parse="text"/></failure></testcase></testsuite>'
        ).encode(),
        ".xml",
        check=has_results(1, failed=1),
    ),
    "xml-html-page": Case(const(b"<!DOCTYPE html><html><body>hi</body></html>"), ".xml", ReportError),
    "xml-coverage": Case(const(b'<coverage version="7"><packages/></coverage>'), ".xml", NotAReport),
    "xml-huge-root-tag": Case(const(b"<" + b"t" * MB + b"/>"), ".xml", NotAReport, "root element"),
    **{
        f"xml-cut-at-{int(f * 100)}pct": Case(cut("junit", f), ".xml", ReportIncomplete)
        for f in (0.0, 0.5, 0.99)
    },
    "xml-mismatched-tags": Case(const(b"<testsuite></testcase>"), ".xml", ReportError),
    "xml-100MB-failure-text": Case(
        junit_of('<testsuite><testcase name="t"><failure>' + "t" * HUGE + "</failure></testcase></testsuite>"),
        ".xml",
        check=has_results(1, failed=1),
    ),
    f"junit-{JUNIT_CASES}-testcases": Case(
        big_junit, ".xml", check=has_results(JUNIT_CASES, failed=JUNIT_CASES // 1000)
    ),
    # reportlog with garbage lines
    "reportlog-garbage-line": Case(
        reportlog_lines(lambda lines: [*lines[:3], b"\x07garbage{{{\n", *lines[3:]]),
        ".json",
        ReportError,
        "line 4",
    ),
    "reportlog-array-line": Case(
        reportlog_lines(lambda lines: [*lines[:3], b"[1, 2]\n", *lines[3:]]),
        ".json",
        ReportError,
        "not a JSON object",
    ),
    "reportlog-without-session-finish": Case(
        reportlog_lines(lambda lines: lines[:-1]), ".json", ReportIncomplete
    ),
    "reportlog-nodeid-as-number": Case(
        reportlog_lines(
            lambda lines: [line.replace(b'"nodeid": "tests/test_outcomes.py::test_passes"', b'"nodeid": 5') for line in lines]
        ),
        ".json",
        ReportError,
        "nodeid",
    ),
    "reportlog-unknown-records-and-odd-values": Case(
        reportlog_lines(
            lambda lines: [
                b'{"$report_type": "Martian", "x": [1]}\n',
                *[line.replace(b'"exitstatus": 1', b'"exitstatus": 100000000000000000000000') for line in lines],
            ]
        ),
        ".json",
        check=no_exit_code,
    ),
}

SMALL = [name for name in CASES if "100MB" not in name and name != f"junit-{JUNIT_CASES}-testcases"]
BIG = [name for name in CASES if name not in SMALL]


@pytest.fixture(scope="session")
def samples(sample_reports: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Samples:
    secret = tmp_path_factory.mktemp("secret") / "secret.txt"
    secret.write_text(SECRET)
    return Samples(
        json=Path(sample_reports["json"]).read_bytes(),
        junit=Path(sample_reports["junit"]).read_bytes(),
        reportlog=Path(sample_reports["reportlog"]).read_bytes(),
        secret=secret,
    )


@pytest.mark.parametrize("name", list(CASES))
def test_each_hostile_file_is_a_run_or_one_clear_rejection(name: str, samples: Samples) -> None:
    case = CASES[name]
    outcome = read(name + case.suffix, case.build(samples))
    if case.expect is None:
        assert isinstance(outcome, ParsedRun), f"rejected: {outcome}"
        if case.check is not None:
            case.check(outcome)
        return
    assert type(outcome) is case.expect, f"{type(outcome).__name__}: {outcome}"
    assert case.reason in str(outcome)


# --- hypothesis: real reports mutated structure by structure ---------------------------------

FUZZ = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,  # the same examples on every machine: CI stays stable, a failure replays
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

ODD = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(
        ["", "passed", "failed", "x" * 70_000, "\n" * 5000, "\udcff", "\x00", "é" * 600, "::"]
    ),
    st.text(max_size=30),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
    st.integers(1, 300).map(lambda depth: json.loads("[" * depth + "]" * depth)),
)


def _containers(value: Any, path: tuple = ()) -> Iterator[tuple[tuple, Any]]:
    """Every dict and list inside value, with the path to it."""
    if isinstance(value, dict | list):
        yield path, value
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            yield from _containers(item, (*path, key))


@st.composite
def mutated_json(draw: st.DrawFn, doc: dict[str, Any]) -> bytes:
    """The document with a few keys deleted, values swapped for odd ones, or keys added."""
    doc = copy.deepcopy(doc)
    for _ in range(draw(st.integers(1, 5))):
        containers = list(_containers(doc))
        _, target = draw(st.sampled_from(containers))
        op = draw(st.sampled_from(["delete", "swap", "add"]))
        keys = list(target) if isinstance(target, dict) else list(range(len(target)))
        if op == "add" or not keys:
            if isinstance(target, dict):
                target[draw(st.sampled_from(["nodeid", "outcome", "duration", "x", "tests"]))] = draw(ODD)
            else:
                target.append(draw(ODD))
        elif op == "delete":
            del target[draw(st.sampled_from(keys))]
        else:
            target[draw(st.sampled_from(keys))] = draw(ODD)
    text = json.dumps(doc, allow_nan=False)
    return text.encode("utf-8", "surrogatepass")  # "\udcff" becomes invalid UTF-8 bytes


@FUZZ
@given(st.data())
def test_mutated_json_reports(samples: Samples, data: st.DataObject) -> None:
    read("fuzzed.json", data.draw(mutated_json(samples.doc)))


@FUZZ
@given(st.data())
def test_mutated_reportlogs(samples: Samples, data: st.DataObject) -> None:
    lines = samples.reportlog.splitlines(keepends=True)
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(lines) - 1))
        op = data.draw(st.sampled_from(["drop", "repeat", "mutate", "move"]))
        if op == "drop":
            del lines[at]
        elif op == "repeat":
            lines.insert(at, lines[at])
        elif op == "move":
            lines.insert(data.draw(st.integers(0, len(lines))), lines.pop(at))
        else:
            record = json.loads(lines[at])
            lines[at] = data.draw(mutated_json(record)) + b"\n"
        if not lines:
            lines = [b"\n"]
    read("fuzzed.jsonl", b"".join(lines))


XML_ATTRIBUTES = ("name", "classname", "file", "time", "timestamp", "message", "type", "status")
XML_VALUES = st.one_of(
    st.sampled_from(
        ["", "NaN", "inf", "-1", "1e400", "1,234.5", "0,5", "9999-12-31T23:59:59", "Z", "x" * 3000, "é\u2028"]
    ),
    st.text(st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), max_size=20),
)
XML_TAGS = st.sampled_from(
    ["testsuite", "testsuites", "testcase", "failure", "error", "skipped", "properties", "property",
     "rerunFailure", "flakyError", "system-out", "x"]
)


@FUZZ
@given(st.data())
def test_mutated_junit_reports(samples: Samples, data: st.DataObject) -> None:
    root = ET.fromstring(samples.junit)  # the sample is trusted: stdlib parsing is fine here
    for _ in range(data.draw(st.integers(1, 6))):
        elements = list(root.iter())
        element = data.draw(st.sampled_from(elements))
        op = data.draw(st.sampled_from(["attribute", "delete", "copy", "wrap", "retag", "text"]))
        parent = next((p for p in elements if element in list(p)), None)
        if op == "attribute":
            element.set(data.draw(st.sampled_from(XML_ATTRIBUTES)), data.draw(XML_VALUES))
        elif op == "delete" and parent is not None:
            parent.remove(element)
        elif op == "copy" and parent is not None:
            parent.append(copy.deepcopy(element))
        elif op == "wrap" and parent is not None:
            wrapper = ET.Element(data.draw(XML_TAGS))
            parent.remove(element)
            wrapper.append(element)
            parent.append(wrapper)
        elif op == "retag":
            element.tag = data.draw(XML_TAGS)
        else:
            element.text = data.draw(XML_VALUES)
    read("fuzzed.xml", ET.tostring(root, encoding="utf-8"))


@FUZZ
@given(st.data())
def test_bytes_inside_json_strings(samples: Samples, data: st.DataObject) -> None:
    """Raw bytes (invalid UTF-8, control characters, quotes, backslashes) inside a string."""
    text = samples.json
    at = text.index(b"arithmetic is broken")
    noise = data.draw(st.binary(min_size=1, max_size=8))
    read("fuzzed.json", text[:at] + noise + text[at:])


# --- a real daemon -----------------------------------------------------------------------------

IDE_GLOB = "ide/*.json"
# Where each corpus file is dropped: the default globs for XML, the IDE glob for JSON.
XML_PLACES = ("junit-{}.xml", "reports/{}.xml", "test-results/nested/deeper/{}.xml")
# Directories named like reports: rejected once each, like a bad file.
REPORT_NAMED_DIRECTORIES = ("junit-a-directory.xml", ".pytest_cache/report.json")
# The daemon's peak resident memory may grow, from its size before the huge files, by this...
MEMORY_BASE = 256 * MB
# ...plus this many times the largest file it reads (its bytes and the text decoded from them)...
MEMORY_PER_FILE_BYTE = 2
# ...plus this much per result of the largest run (its records and its rows on their way in).
MEMORY_PER_RESULT = 512


def place(name: str, case: Case, index: int) -> str:
    if case.suffix == ".xml":
        return XML_PLACES[index % len(XML_PLACES)].format(name)
    return f"ide/{name}.json"


def place_at_root(name: str, case: Case, index: int) -> str:
    """In the project root, watched from the start (no directory appears meanwhile)."""
    return f"junit-{name}.xml"


def drop(project: Path, relative: str, data: bytes, staging: Path | None = None) -> Path:
    """Write a file in place as pytest does, or (staging) beside the project, then renamed in."""
    target = project / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    if staging is None:
        target.write_bytes(data)
        return target
    staged = staging / relative.replace("/", "_")
    staged.write_bytes(data)
    os.replace(staged, target)
    return target


def history_db(project: Path) -> Path:
    return project / ".anvil" / "history.db"


def stored_runs(project: Path) -> list[tuple[str, int, int]]:
    """Each stored execution: its report path, its counted results, its rows in the history."""
    if not history_db(project).exists():
        return []
    try:
        with sqlite3.connect(history_db(project)) as conn:
            return conn.execute(
                "SELECT report_path,"
                " passed + failed + errors + skipped + xfailed + xpassed + rerun,"
                " (SELECT COUNT(*) FROM execution_history h WHERE h.execution_id = e.id)"
                " FROM execution e ORDER BY id"
            ).fetchall()
    except sqlite3.OperationalError:  # tables still being created
        return []


def log_lines() -> list[str]:
    log = Path(os.environ["XDG_STATE_HOME"]) / "anvild" / "anvild.log"
    return log.read_text(errors="replace").splitlines() if log.exists() else []


def peak_memory(pid: int) -> int:
    """The process's peak resident set size (VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc")


@pytest.fixture
def watched(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """A project watched with the default globs and an IDE glob, by a real daemon."""
    project = tmp_path / "proj"
    project.mkdir()
    proc = anvild("watch", str(project), "--report", IDE_GLOB)
    assert proc.returncode == 0, proc.stderr
    pid = status()["pid"]
    yield project, pid
    assert anvild("stop").returncode == 0
    wait_for(lambda: not alive(pid), 60, "the daemon to exit")


def ingest_batch(
    project: Path,
    pid: int,
    names: list[str],
    samples: Samples,
    staging: Path | None = None,
    where: Callable[[str, Case, int], str] = place,
) -> None:
    """Drop the corpus files named, then a good report; check what became of each."""
    if staging is not None:
        staging.mkdir(exist_ok=True)
    rejected_before = status()["rejected"]
    stored_before = [path for path, _, _ in stored_runs(project)]
    paths = {}
    for index, name in enumerate(names):
        case = CASES[name]
        paths[name] = drop(project, where(name, case, index), case.build(samples), staging)
    good = drop(project, ".report.json", samples.json, staging)
    bad = {name: path for name, path in paths.items() if CASES[name].rejected}
    new = [str(path) for name, path in paths.items() if CASES[name].expect is None]
    runs = [*stored_before, *new, *([] if str(good) in stored_before else [str(good)])]

    def rejections() -> dict[str, list[str]]:
        lines = [line for line in log_lines() if "rejected:" in line]
        return {name: [x for x in lines if x.endswith(f"({path})")] for name, path in bad.items()}

    wait_for(lambda: len(stored_runs(project)) >= len(runs), 300, f"{len(runs)} stored runs")
    try:
        wait_for(lambda: all(rejections().values()), 30, f"{len(bad)} rejections")
    except AssertionError as timeout:
        never = [name for name, lines in rejections().items() if not lines]
        raise AssertionError(f"{timeout}; never rejected: {never}; {status()}") from None
    wait_for(lambda: status()["pending"] == 0, 60, "nothing pending")

    info = status()
    assert info["pid"] == pid and alive(pid)  # the same daemon, up all along
    stored = stored_runs(project)
    assert sorted(path for path, _, _ in stored) == sorted(runs)  # nothing from a bad file
    for path, counted, rows in stored:
        assert counted == rows, f"{path}: {counted} counted, {rows} rows"  # nothing partial
    assert info["rejected"] - rejected_before == len(bad), info["last_error"]
    assert {name: len(lines) for name, lines in rejections().items()} == dict.fromkeys(bad, 1)


def test_the_daemon_rejects_each_bad_file_once_and_stores_only_whole_runs(
    watched: tuple[Path, int], samples: Samples, tmp_path: Path
) -> None:
    project, pid = watched
    for directory in REPORT_NAMED_DIRECTORIES:
        (project / directory).mkdir(parents=True)
    wait_for(lambda: status()["rejected"] == 2, 30, "the directories named like reports")
    lines = [line for line in log_lines() if "rejected:" in line]
    for directory in REPORT_NAMED_DIRECTORIES:
        assert sum(line.endswith(f"({project / directory})") for line in lines) == 1, lines
    ingest_batch(project, pid, SMALL, samples)
    assert status()["rejected"] == 2 + sum(CASES[name].rejected for name in SMALL)


def test_bad_files_renamed_into_the_project_are_rejected_too(
    watched: tuple[Path, int], samples: Samples, tmp_path: Path
) -> None:
    """Written elsewhere, then moved in whole (an atomic writer, `mv`): no close event follows."""
    project, pid = watched
    names = ["xml-billion-laughs", "xml-mismatched-tags", "xml-coverage", "xml-latin1-declared"]
    ingest_batch(project, pid, names, samples, tmp_path / "staging", place_at_root)


def test_the_daemon_stays_within_its_memory_on_huge_files(
    watched: tuple[Path, int], samples: Samples, tmp_path: Path
) -> None:
    """Peak RSS <= idle + MEMORY_BASE + MEMORY_PER_FILE_BYTE x the largest file
    + MEMORY_PER_RESULT x the most results in one report."""
    project, pid = watched
    wait_for(lambda: status()["pending"] == 0, 30, "the daemon to settle")
    before = peak_memory(pid)
    largest = max(len(CASES[name].build(samples)) for name in BIG)
    for name in BIG:  # one at a time: the bound is about one huge file in hand
        ingest_batch(project, pid, [name], samples)
    peak = peak_memory(pid)
    bound = before + MEMORY_BASE + MEMORY_PER_FILE_BYTE * largest + MEMORY_PER_RESULT * JUNIT_CASES
    print(
        f"daemon peak RSS {peak / MB:.0f} MB, bound {bound / MB:.0f} MB"
        f" (idle {before / MB:.0f} MB, largest file {largest / MB:.0f} MB)"
    )
    assert peak <= bound
