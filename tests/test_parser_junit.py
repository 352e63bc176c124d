"""The JUnit XML parser against real files from many tools, real pytest runs and hostile XML."""

from __future__ import annotations

import functools
import json
import re
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from anvild.errors import NotAReport, ReportError, ReportIncomplete
from anvild.identity import key_from_node_id
from anvild.limits import MESSAGE_LIMIT
from anvild.parsers import junit
from anvild.parsers.junit import PROPERTY_LIMIT, PROPERTY_VALUE_LIMIT, parse_junit
from anvild.records import ParsedRun, TestResult
from anvild.status import ERROR, FAILED, PASSED, RERUN, SKIPPED, XFAILED, XPASSED
from tests.conftest import (
    CORPUS,
    SAMPLE_EXPECTED,
    SAMPLE_TESTS,
    anvild,
    run_pytest,
    write_project,
)

JUNIT_CORPUS = CORPUS / "junit"
CORPUS_FILES = sorted(JUNIT_CORPUS.rglob("*.xml"))
STAT_KEYS = ("tests", "tests_succ", "tests_skip", "tests_fail", "tests_error", "runs")

# Why the corpus files that publish-unit-test-result-action rejects are rejected by anvild too.
REJECTED = {
    "non-junit.xml": (NotAReport, "not a JUnit report: root element <suites>"),
    # Cut off inside an element: read as a file whose writer has not finished.
    "pytest/corrupt-xml.xml": (ReportIncomplete, "no element found: line 11"),
}

# Where anvild's reading differs on purpose from that project's results.json.
DIFFERENT_ON_PURPOSE = {
    # Four testcases with neither name nor classname: nothing identifies such a test from one run
    # to the next, so anvild records none of them (the action's newer versions drop them too).
    "no-attributes.xml": dict.fromkeys(STAT_KEYS, 0),
    # Suite counters (tests="6" failures="1" skipped="2") without one testcase element: the
    # action falls back to the counters; anvild records testcases, never invented ones.
    "no-cases-but-tests.xml": dict.fromkeys(STAT_KEYS, 0),
    # `runs` counts testcase elements: 109, eight titles written twice (mocha allows two tests
    # of one title in one describe). A repeated testcase is one test to anvild (one key, one
    # identity across runs): one result, the most severe of its testcases, so runs == tests.
    "mocha/latex-utensils.xml": {"runs": 101},
}
# Other readings that agree only because of a choice worth naming:
# - junit.multiresult.xml holds testcases with several outcome elements; both tools take the
#   worst (error > failure > skipped). Its runs_succ of -2 is the action counting runs from
#   outcome elements (3 skipped + 2 failures + 1 error in 4 runs); only `runs` is compared here.
# - tst/disabled.xml marks five tests status='disabled' with no child element: anvild reads them
#   as SKIPPED, as the action's tests_skip does (its runs_skip of 0 is the suite's counter).
# - No corpus file has pytest's <skipped type="pytest.xfail">, which anvild reads as XFAILED;
#   the action has no xfail, so XFAILED counts as a skip below.


def stats(run: ParsedRun) -> dict[str, int]:
    """The results.json counts of a parsed run: tests by final result, runs by testcase."""
    final = run.final_results().values()
    status = Counter(result.status for result in final)
    return {
        "tests": len(final),
        "tests_succ": status[PASSED] + status[XPASSED],
        "tests_skip": status[SKIPPED] + status[XFAILED],
        "tests_fail": status[FAILED],
        "tests_error": status[ERROR],
        # One final result per test, however many testcase elements it has; RERUN rows (only
        # from rerun elements) are extra attempts, not runs.
        "runs": sum(result.status != RERUN for result in run.results),
    }


def parse(data: bytes | str, name: str = "junit.xml") -> ParsedRun:
    """Parse crafted XML given as text or bytes."""
    raw = data.encode() if isinstance(data, str) else data
    return parse_junit(Path(name), raw)


def rejection(data: bytes | str) -> ReportError:
    """The ReportError crafted XML raises, checked to be one line naming the file."""
    with pytest.raises(ReportError) as caught:
        parse(data, "crafted.xml")
    message = str(caught.value)
    assert "\n" not in message and "\r" not in message, message
    assert caught.value.where == "crafted.xml"
    return caught.value


def by_key(run: ParsedRun, key: str) -> list[TestResult]:
    """A test's attempts in the order the run holds them."""
    return [result for result in run.results if result.key == key]


@pytest.mark.parametrize(
    "path", CORPUS_FILES, ids=[str(p.relative_to(JUNIT_CORPUS)) for p in CORPUS_FILES]
)
def test_corpus_file(path: Path) -> None:
    name = path.relative_to(JUNIT_CORPUS).as_posix()
    if path.with_suffix(".exception").exists():
        kind, reason = REJECTED[name]
        with pytest.raises(kind) as caught:
            parse_junit(path, path.read_bytes())
        assert "\n" not in str(caught.value) and reason in caught.value.what
        assert caught.value.where == str(path)
        return
    run = parse_junit(path, path.read_bytes())
    assert run.source_format == "junit"
    for result in run.results:
        assert result.key and result.node_id
        assert result.duration is None or result.duration >= 0
        assert result.message is None or len(result.message) <= MESSAGE_LIMIT
    expected_file = path.with_name(path.stem + ".results.json")
    if not expected_file.exists():
        return
    expected = json.loads(expected_file.read_text())["stats"]
    expected = {key: expected[key] for key in STAT_KEYS} | DIFFERENT_ON_PURPOSE.get(name, {})
    assert stats(run) == expected


def test_corpus_multiresult_takes_the_worst_outcome() -> None:
    path = JUNIT_CORPUS / "junit.multiresult.xml"
    final = parse_junit(path, path.read_bytes()).final_results()
    assert {key: result.status for key, result in final.items()} == {
        "test class::test that errors": ERROR,
        "test class::test that fails": FAILED,
        "test class::test that is skipped": SKIPPED,
        "test class::test that succeeds": PASSED,
    }
    # The error's text first (it is why the status is ERROR), then the failure's; the skip's none.
    errors = final["test class::test that errors"]
    assert errors.message == "test teardown failure\ntest failure"
    assert errors.traceback == "stdout\n\nAssertion failed"


def test_corpus_repeated_testcases_are_one_result() -> None:
    path = JUNIT_CORPUS / "mocha" / "latex-utensils.xml"
    run = parse_junit(path, path.read_bytes())
    results = by_key(run, "bibtexParser::parse entry with command")
    assert [(r.status, r.attempt, r.duration) for r in results] == [(PASSED, 0, 0.001)]
    assert len(run.results) == len(run.final_results()) == 101


def test_corpus_run_facts() -> None:
    path = JUNIT_CORPUS / "pytest" / "junit.fail.xml"
    run = parse_junit(path, path.read_bytes())
    assert run.duration == pytest.approx(2.481)
    assert run.started_at is not None and run.finished_at is not None
    assert run.finished_at - run.started_at == pytest.approx(2.481)
    scalatest = next((JUNIT_CORPUS / "scalatest").glob("*.xml"))
    properties = parse_junit(scalatest, scalatest.read_bytes()).metadata["properties"]
    assert properties["java.vendor"] and len(properties) <= PROPERTY_LIMIT


def test_pytest_junit_report(sample_reports: dict[str, object]) -> None:
    path = sample_reports["junit"]
    assert isinstance(path, Path)
    run = parse_junit(path, path.read_bytes())
    final = run.final_results()
    assert len(final) == len(SAMPLE_EXPECTED)
    for node_id, status in SAMPLE_EXPECTED.items():
        result = final[key_from_node_id(node_id)]
        # pytest's JUnit writer records a non-strict xpass as a plain pass: the XPASSED is lost
        # before anvild sees the file.
        assert result.status == (PASSED if status == XPASSED else status), node_id
        assert result.node_id == node_id
    # A collection error has an empty classname and the module's dotted name as name=: it is
    # named by the module's file, as the local run names it.
    assert final["tests.test_broken_import"].node_id == "tests/test_broken_import.py"

    def final_of(node_id: str) -> TestResult:
        return final[key_from_node_id(node_id)]

    fails = final_of("tests/test_outcomes.py::test_fails")
    assert fails.message is not None and "arithmetic is broken" in fails.message
    assert fails.traceback is not None and "assert 1 + 1 == 3" in fails.traceback
    param = final_of("tests/test_outcomes.py::test_param[3]")
    assert param.message is not None and "n was 3" in param.message
    fixture = final_of("tests/test_outcomes.py::test_fixture_error")
    assert fixture.message is not None and "fixture exploded" in fixture.message
    assert final_of("tests/test_outcomes.py::test_skipped").message == "not today"
    assert final_of("tests/test_outcomes.py::test_xfails").message == "known bug"
    assert final_of("tests/test_broken_import.py").message == "collection failure"
    for result in run.results:
        assert isinstance(result.duration, float) and result.duration >= 0, result
    assert (final_of("tests/test_outcomes.py::test_passes").duration or 0) >= 0.02
    assert run.started_at is not None and run.duration is not None and run.duration > 0


def test_pytest_xunit1_names_tests_as_xunit2(
    sample_reports: dict[str, object], tmp_path: Path
) -> None:
    xunit2 = sample_reports["junit"]
    assert isinstance(xunit2, Path)
    root = write_project(tmp_path, SAMPLE_TESTS)
    proc = run_pytest(
        root, "--continue-on-collection-errors", "--junitxml=x1.xml", "-o", "junit_family=xunit1"
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    xunit1_run = parse_junit(root / "x1.xml", (root / "x1.xml").read_bytes())
    xunit2_run = parse_junit(xunit2, xunit2.read_bytes())

    def names(run: ParsedRun) -> set[tuple[str, str, str]]:
        return {(r.node_id, r.key, r.status) for r in run.results}

    assert names(xunit1_run) == names(xunit2_run)
    # Only xunit1 writes file=.
    assert {r.file for r in xunit1_run.results} == {
        "tests/test_outcomes.py",
        "tests/test_broken_import.py",
    }
    assert {r.file for r in xunit2_run.results} == {None}


LAUGHS = "".join(f'<!ENTITY lol{n} "{f"&lol{n - 1};" * 10}">' for n in range(1, 10))
BILLION_LAUGHS = (
    f'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol0 "lol">{LAUGHS}]>'
    '<testsuite><testcase name="&lol9;"/></testsuite>'
)
EXTERNAL_ENTITY = (
    '<?xml version="1.0"?><!DOCTYPE testsuite [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    '<testsuite><testcase name="t"><failure message="&xxe;"/></testcase></testsuite>'
)


@pytest.mark.parametrize(
    ("data", "kind", "reason"),
    [
        (BILLION_LAUGHS, ReportError, "DOCTYPE or entity declaration is refused"),
        (EXTERNAL_ENTITY, ReportError, "DOCTYPE or entity declaration is refused"),
        ("<!DOCTYPE testsuite><testsuite/>", ReportError, "DOCTYPE or entity declaration"),
        (
            '<testsuite><testcase name="a"/><testcase na',
            ReportIncomplete,
            "unclosed token: line 1, column 31",
        ),
        ("<?xml version='1.0'?>", ReportIncomplete, "no element found"),
        (b"", ReportIncomplete, "empty file"),
        (b"  \n", ReportIncomplete, "empty file"),
        (bytes(range(256)), ReportError, "malformed XML: not well-formed"),
        (b"PK\x03\x04\x14\x00\x00\x00", ReportError, "malformed XML"),
        ("<testsuite></testcase>", ReportError, "malformed XML: mismatched tag: line 1"),
        ("<testsuite/><testsuite/>", ReportError, "junk after document element"),
        ('<?xml version="1.0" encoding="klingon"?><a/>', ReportError, "unknown encoding"),
        ('<coverage version="7.4"><packages/></coverage>', NotAReport, "root element <coverage>"),
    ],
    ids=[
        "billion-laughs",
        "external-entity",
        "doctype",
        "truncated",
        "prolog-only",
        "empty",
        "blank",
        "binary",
        "zip",
        "mismatched",
        "two-roots",
        "encoding",
        "not-junit",
    ],
)
def test_bad_xml_is_refused_in_one_line(data: bytes | str, kind: type, reason: str) -> None:
    error = rejection(data)
    assert isinstance(error, kind)
    assert reason in error.what


def test_truncated_pytest_report_is_incomplete(sample_reports: dict[str, object]) -> None:
    path = sample_reports["junit"]
    assert isinstance(path, Path)
    data = path.read_bytes()
    for cut in (1, len(data) // 3, len(data) // 2, len(data) - 1):
        assert isinstance(rejection(data[:cut]), ReportIncomplete), cut


SUREFIRE_RERUNS = """<?xml version="1.0" encoding="UTF-8"?>
<testsuite name="a.b.CTest" tests="2" failures="1" errors="0" skipped="0" time="1.5">
  <properties><property name="java.version" value="21"/></properties>
  <testcase classname="a.b.CTest" name="flaky" time="0.5">
    <flakyFailure message="first try" type="java.lang.AssertionError">
      <stackTrace>java.lang.AssertionError: first try
\tat a.b.CTest.flaky(CTest.java:10)</stackTrace>
      <system-out>out</system-out>
    </flakyFailure>
    <flakyError message="second try" type="java.io.IOException">
      <stackTrace>java.io.IOException: second try</stackTrace>
    </flakyError>
  </testcase>
  <testcase classname="a.b.CTest" name="broken" time="0.2">
    <failure message="always" type="java.lang.AssertionError">AssertionError: always</failure>
    <rerunFailure message="again" type="java.lang.AssertionError">
      <stackTrace>java.lang.AssertionError: again</stackTrace>
    </rerunFailure>
  </testcase>
</testsuite>
"""


def test_surefire_reruns_come_before_the_final_attempt() -> None:
    run = parse(SUREFIRE_RERUNS, "TEST-a.b.CTest.xml")
    flaky = by_key(run, "a.b.CTest::flaky")
    assert [(r.status, r.attempt, r.message) for r in flaky] == [
        (RERUN, 0, "first try"),
        (RERUN, 1, "second try"),
        (PASSED, 2, None),
    ]
    assert flaky[0].traceback is not None and "CTest.java:10" in flaky[0].traceback
    assert flaky[2].duration == 0.5 and flaky[0].duration is None
    broken = by_key(run, "a.b.CTest::broken")
    assert [(r.status, r.attempt, r.message) for r in broken] == [
        (RERUN, 0, "again"),
        (FAILED, 1, "always"),
    ]
    final = run.final_results()
    assert final["a.b.CTest::flaky"].status == PASSED
    assert final["a.b.CTest::broken"].status == FAILED
    assert run.metadata["properties"] == {"java.version": "21"}
    assert run.duration == 1.5


def test_repeated_testcase_is_one_result_with_the_worst_outcome() -> None:
    run = parse(
        """<testsuites>
          <testsuite name="first" time="1"><testcase classname="m" name="t" time="1"/></testsuite>
          <testsuite name="second" time="2,5">
            <testcase classname="m" name="t" time="2"><failure message="boom"/></testcase>
            <testcase classname="m" name="other"/>
          </testsuite>
          <testsuite name="third" time="late">
            <testcase classname="m" name="t" time="3"/>
          </testsuite>
        </testsuites>"""
    )
    # Not three attempts: pytest-rerunfailures writes a failed attempt as a bare testcase, and
    # pytest a teardown error after a failed call as a second one. A later pass does not hide
    # the failure; the times add up (pytest splits one test's time over its testcases).
    results = by_key(run, "m::t")
    assert [(r.status, r.attempt, r.duration, r.message) for r in results] == [
        (FAILED, 0, 6.0, "boom")
    ]
    assert [r.key for r in run.results] == ["m::t", "m::other"]
    # No time on the root: the sum of the suites' readable times.
    assert run.duration == 3.5


def test_nested_suites_and_identity() -> None:
    run = parse(
        """<testsuite name="outer" timestamp="2020-09-04T16:18:04Z" time="3">
          <testsuite name="inner">
            <testsuite name="innermost">
              <testcase classname="tests.test_a.TestX" name="test_y[1]"/>
            </testsuite>
          </testsuite>
          <testcase classname="" name="tests.test_broken">
            <error message="collection failure"/>
          </testcase>
          <testcase name="only name"/>
          <testcase classname="only.classname"/>
          <testcase/>
        </testsuite>"""
    )
    assert [(r.node_id, r.key, r.status) for r in run.results] == [
        ("tests/test_a.py::TestX::test_y[1]", "tests.test_a.TestX::test_y[1]", PASSED),
        ("tests/test_broken.py", "tests.test_broken", ERROR),
        ("only name", "only name", PASSED),
        ("only.classname", "only.classname", PASSED),
    ]
    assert run.started_at == 1599236284.0
    assert run.finished_at == 1599236287.0


def test_outcome_mapping() -> None:
    run = parse(
        """<testsuite>
          <testcase name="xfail"><skipped type="pytest.xfail" message="known bug"/></testcase>
          <testcase name="skip"><skipped type="pytest.skip">
first line of the reason
second line</skipped></testcase>
          <testcase name="disabled" status="disabled"/>
          <testcase name="notrun" status="notrun"/>
          <testcase name="run" status="run"/>
          <testcase name="teardown"><failure message="call"/><error message="teardown"/></testcase>
          <testcase name="long"><failure message="%s"/></testcase>
          <testcase name="bare"><failure/></testcase>
        </testsuite>"""
        % ("x" * (MESSAGE_LIMIT + 10))
    )
    final = run.final_results()
    assert {key: result.status for key, result in final.items()} == {
        "xfail": XFAILED,
        "skip": SKIPPED,
        "disabled": SKIPPED,
        "notrun": SKIPPED,
        "run": PASSED,
        "teardown": ERROR,
        "long": FAILED,
        "bare": FAILED,
    }
    assert final["xfail"].message == "known bug"
    assert final["skip"].message == "first line of the reason"
    assert final["skip"].traceback is not None and "second line" in final["skip"].traceback
    assert final["teardown"].message == "teardown\ncall"
    assert final["long"].message == "x" * MESSAGE_LIMIT
    assert final["bare"].message is None and final["bare"].traceback is None


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ('time="1.5"', 1.5),
        ('time="1,234.5"', 1234.5),
        ('time="12,345,678"', 12345678.0),
        ('time="0,25"', 0.25),
        ('time=" 2 "', 2.0),
        ("", None),
        ('time=""', None),
        ('time="fast"', None),
        ('time="-1"', None),
        ('time="nan"', None),
        ('time="inf"', None),
        ('time="1,2,3"', None),
    ],
)
def test_durations_tolerate_odd_time_attributes(value: str, seconds: float | None) -> None:
    run = parse(f'<testsuite {value}><testcase name="t" {value}/></testsuite>')
    assert run.results[0].duration == seconds
    assert run.duration == seconds


@pytest.mark.parametrize(
    ("timestamp", "epoch"),
    [
        ("2020-09-04T16:18:04.5+00:00", 1599236284.5),
        ("2020-09-04T18:18:04+02:00", 1599236284.0),
        ("2020-09-04T16:18:04Z", 1599236284.0),
        ("Sat, 03 Dec 2022 23:10:07 GMT", 1670109007.0),
        ("yesterday", None),
        ("", None),
    ],
)
def test_started_at_from_timestamp(timestamp: str, epoch: float | None) -> None:
    run = parse(f'<testsuites><testsuite timestamp="{timestamp}"/></testsuites>')
    assert run.started_at == epoch


def test_naive_timestamp_is_local_time() -> None:
    run = parse('<testsuite timestamp="2020-09-04T16:18:04"/>')
    assert run.started_at == time.mktime((2020, 9, 4, 16, 18, 4, 0, 0, -1))


def test_valid_report_without_testcases_is_an_empty_run() -> None:
    for data in ("<testsuites/>", '<testsuite tests="3" failures="1"><properties/></testsuite>'):
        run = parse(data)
        assert run.results == () and run.final_results() == {}


def test_properties_stay_small() -> None:
    properties = "".join(
        f'<property name="p{n}" value="{"v" * 1000}"/>' for n in range(PROPERTY_LIMIT + 20)
    )
    run = parse(
        f"""<testsuites>
          <testsuite><properties>{properties}</properties></testsuite>
          <testsuite><properties><property name="p0" value="later"/></properties></testsuite>
        </testsuites>"""
    )
    kept = run.metadata["properties"]
    assert len(kept) == PROPERTY_LIMIT
    assert kept["p0"] == "v" * PROPERTY_VALUE_LIMIT
    assert parse(
        '<testsuite><properties><property name="a">text</property></properties></testsuite>'
    ).metadata["properties"] == {"a": "text"}
    assert dict(parse("<testsuite/>").metadata) == {}


def test_deep_nesting_does_not_recurse() -> None:
    depth = 5000
    run = parse("<testsuite>" * depth + '<testcase name="deep"/>' + "</testsuite>" * depth)
    assert [r.key for r in run.results] == ["deep"]


def test_texts_are_what_each_element_holds_before_its_first_child() -> None:
    """An outcome's text ends at its first child element (what follows a child is the child's
    tail), a comment or CDATA section inside it does not end it, and only the testcases and
    properties whose ancestors are all suites count."""
    run = parse(
        """<testsuites xmlns:x="urn:x"><testsuite>
          <properties>
            <property name="a">one<!-- c --> two<b/>tail</property>
            <property name="b" value="attr">text</property>
            <x:property name="c" value="namespaced"/>
          </properties>
          <testcase name="cut"><failure>before<![CDATA[ <raw> ]]><!-- c -->after<child>in</child>
            tail</failure><system-out>out</system-out></testcase>
          <testcase name="surefire"><rerunFailure message="again">
            <x:stackTrace>namespaced</x:stackTrace><stackTrace>first</stackTrace>
            <stackTrace>second</stackTrace></rerunFailure></testcase>
          <testcase name="trace in child"><error><stackTrace>at X<frame/>not</stackTrace></error>
          </testcase>
          <system-out><testcase name="inside another element"/></system-out>
          <testcase name="nested"><testcase name="in a testcase"/></testcase>
        </testsuite></testsuites>"""
    )
    assert run.metadata["properties"] == {"a": "one two", "b": "attr", "c": "namespaced"}
    assert [r.key for r in run.results] == [
        "cut",
        "surefire",
        "surefire",
        "trace in child",
        "nested",
    ]
    cut, rerun, _, child_trace, _ = run.results
    assert cut.message == "before <raw> after" and cut.traceback == "before <raw> after"
    assert (rerun.status, rerun.message, rerun.traceback) == (RERUN, "again", "first")
    assert (child_trace.status, child_trace.message, child_trace.traceback) == (ERROR, None, "at X")


def test_a_root_of_another_kind_is_not_a_report_even_when_broken_after_it() -> None:
    """The root decides before what follows it is read: a broken coverage.xml is not a report
    (ignored), not a malformed one."""
    error = rejection("<coverage><packages></coverage>")
    assert isinstance(error, NotAReport) and "root element <coverage>" in error.what
    assert isinstance(rejection("<testsuite><testcase></testsuite>"), ReportError)
    assert not isinstance(rejection("<testsuite><testcase></testsuite>"), NotAReport)


def python_steps(data: bytes) -> int:
    """How many lines of Python and builtin calls reading data runs: a deterministic measure of
    the reader's work (speed itself is measured in bench/)."""
    steps = 0

    def count(frame: FrameType, event: str, arg: object) -> Any:
        nonlocal steps
        steps += 1
        return count

    sys.settrace(count)
    sys.setprofile(count)
    try:
        parse(data)
    finally:
        sys.settrace(None)
        sys.setprofile(None)
    return steps


def distinct_testcases(count: int) -> bytes:
    """count testcases in nested suites, every fifth failing, every seventh rerun."""
    cases = "".join(
        f'<testcase classname="m.C{n % 9}" name="t{n}" time="0.001">'
        + (f'<failure message="boom {n}">trace {n}</failure>' if n % 5 == 0 else "")
        + (
            '<rerunFailure message="again"><stackTrace>at x</stackTrace></rerunFailure>'
            * (n % 7 == 0)
        )
        + "<system-out>out</system-out></testcase>"
        for n in range(count)
    )
    props = '<properties><property name="p" value="v"/></properties>'
    return f"<testsuites><testsuite>{props}<testsuite>{cases}</testsuite></testsuite></testsuites>".encode()


def one_failure_repeated(count: int) -> bytes:
    case = '<testcase classname="c" name="t"><failure message="boom {0}">E   trace {0}</failure></testcase>'
    return ("<testsuite>" + "".join(case.format(n) for n in range(count)) + "</testsuite>").encode()


@pytest.mark.parametrize("shape", [distinct_testcases, one_failure_repeated])
def test_reading_takes_the_same_work_for_each_testcase(shape: Callable[[int], bytes]) -> None:
    """Four times the testcases take at most four times the steps: none looks back over what
    was read before (a stack of open elements searched, each test's earlier results rebuilt)."""
    few, many = python_steps(shape(2_000)), python_steps(shape(8_000))
    assert many <= 4 * few


def test_a_testcase_repeated_stops_adding_text_once_its_result_is_full(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A failing testcase written again and again is one failure whose texts fill up to what a
    result keeps: later copies are not joined in (700,000 of them would each rebuild 64 KB)."""
    joined = 0

    def counted(first: str | None, then: str | None, separator: str) -> str | None:
        nonlocal joined
        joined += len(first or "") + len(then or "")
        return real(first, then, separator)

    real = junit.joined
    monkeypatch.setattr(junit, "joined", counted)
    results = []
    for copies in (5_000, 20_000):
        joined = 0
        run = parse(one_failure_repeated(copies))
        results.append((joined, run.results))
    (few_joined, few), (many_joined, many) = results
    assert few == many and len(few) == 1
    assert few[0].message is not None and few[0].message.startswith("boom 0\nboom 1\n")
    assert len(few[0].message) == MESSAGE_LIMIT
    assert many_joined == few_joined


class FeedCounter:
    """The bytes expat scans while a document is fed to it: each piece, and again the part of
    a tag or comment it had not seen the end of (expat starts that token over)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.scanned = 0
        counter = self

        class Counting(junit.DefusedXMLParser):
            fed = 0

            def feed(self, data: memoryview) -> None:
                counter.scanned += len(data) + self.fed - max(self.parser.CurrentByteIndex, 0)
                self.fed += len(data)
                super().feed(data)

        monkeypatch.setattr(junit, "DefusedXMLParser", Counting)


@pytest.mark.parametrize("names", [[5 * 1024 * 1024], [1024 * 1024] * 7], ids=["5 MB", "7x1 MB"])
def test_long_names_are_scanned_a_bounded_number_of_times(
    monkeypatch: pytest.MonkeyPatch, names: list[int]
) -> None:
    """expat starts a token it has not seen the end of over with each piece: pieces grow while
    one is open, so a tag of any length read is scanned a few times, not once per 64 KB."""
    cases = "".join(
        f'<testcase classname="c" name="{"n" * size}{n}"/>' for n, size in enumerate(names)
    )
    data = f"<testsuite>{cases}</testsuite>".encode()
    counter = FeedCounter(monkeypatch)
    run = parse(data)
    assert len(run.results) == len(names)
    assert counter.scanned <= 3 * len(data)


def test_large_report_is_read_one_testcase_at_a_time() -> None:
    # Many testcases, half repeating one key: each merges into its test, never searched for.
    cases = "".join(
        f'<testcase classname="m" name="t{n if n % 2 else 0}" time="0.001"/>' for n in range(40_000)
    )
    data = f"<testsuites><testsuite>{cases}</testsuite></testsuites>".encode()
    run = parse(data)
    assert len(run.results) == 20_001
    (t0,) = by_key(run, "m::t0")
    assert t0.attempt == 0 and t0.duration == pytest.approx(20.0)


# --- What pytest 9 itself writes, counted as pytest counts it ------------------------------

# One project with every case that gives a test more than one outcome or testcase element in
# pytest's JUnit, or no test function at all. Each module is one row of issue 11.
OUTCOME_TESTS = {
    "test_subtests.py": """
        import unittest

        def test_subtests_fail(subtests):
            for i in range(4):
                with subtests.test(msg="check", i=i):
                    assert i % 2 == 0, f"odd {i}"

        def test_subtests_pass(subtests):
            for i in range(3):
                with subtests.test(i=i):
                    pass

        class TestUnit(unittest.TestCase):
            def test_subtest_fail(self):
                for i in range(3):
                    with self.subTest(i=i):
                        self.assertEqual(i, 0)

            def test_subtest_pass(self):
                for i in range(2):
                    with self.subTest(i=i):
                        pass
    """,
    "test_teardown.py": """
        import pytest

        @pytest.fixture
        def bad_teardown():
            yield
            raise RuntimeError("teardown boom")

        def test_fail_and_teardown(bad_teardown):
            assert False, "call failed"

        def test_pass_and_teardown(bad_teardown):
            pass
    """,
    "test_reruns.py": """
        import os
        import pytest
        from pathlib import Path

        def test_passes():
            pass

        def test_fails_once(tmp_path_factory):
            # a marker file outlives the attempt (and the xdist worker's memory)
            marker = Path(os.environ["MARKERS"]) / "fails_once"
            first = not marker.exists()
            marker.touch()
            assert not first, "first attempt fails"

        def test_always_fails():
            assert False, "always"

        @pytest.mark.skip(reason="not today")
        def test_skipped():
            pass

        @pytest.mark.xfail(reason="known bug")
        def test_xfails():
            assert False
    """,
    "test_import_skip.py": """
        import pytest
        pytest.importorskip("nonexistent")

        def test_never_runs():
            pass
    """,
    "test_module_skip.py": """
        import pytest
        pytest.skip("module skipped on purpose", allow_module_level=True)

        def test_never_runs():
            pass
    """,
    "test_broken.py": """
        import module_that_does_not_exist  # noqa: F401

        def test_never_runs():
            pass
    """,
}
# pytest's words on its summary line and in -rA lines, as anvild's statuses. pytest's JUnit
# writes a non-strict xpass as a pass, so XPASS is a PASSED once read back.
SUMMARY_WORDS = {
    "passed": PASSED,
    "failed": FAILED,
    "error": ERROR,
    "errors": ERROR,
    "skipped": SKIPPED,
    "xfailed": XFAILED,
    "xpassed": PASSED,
    "rerun": RERUN,
}
LINE_WORDS = {
    "PASSED": PASSED,
    "FAILED": FAILED,
    "SUBFAILED": FAILED,
    "ERROR": ERROR,
    "XFAIL": XFAILED,
    "XPASS": PASSED,
}
SHORT_LINE = re.compile(r"([A-Z]+)(?:\[[^\]]*\])?(?: ?\([^)]*\))? (\S+)")
SKIP_LINE = re.compile(r"SKIPPED \[(\d+)\] ([^:]+):\d+: (.*)", re.DOTALL)
SEVERITY_ORDER = (SKIPPED, XFAILED, PASSED, FAILED, ERROR)


@dataclass(frozen=True)
class PytestSession:
    """A real pytest run over OUTCOME_TESTS: its words, and its JUnit file read by anvild."""

    summary: Counter[str]  # the last line: "1 failed, 2 passed, 1 error, 3 rerun in 1.2s"
    verdicts: dict[str, str]  # key -> the most severe of pytest's -rA lines about that test
    # module (key) -> reason, from "SKIPPED [1] test_x.py:2: reason": -rA names no test there,
    # only the file (each module of OUTCOME_TESTS has one skip at most)
    skips: dict[str, str]
    run: ParsedRun
    xml: str

    def tests(self) -> Counter[str]:
        """How many tests pytest's -rA lines give each status."""
        return Counter(self.verdicts.values()) + Counter({SKIPPED: len(self.skips)})

    def parsed(self, module: str | None = None) -> dict[str, str]:
        """anvild's status of each test (of one module) in the parsed run, by key."""
        final = self.run.final_results()
        return {
            key: r.status for key, r in final.items() if module is None or key.startswith(module)
        }

    def parsed_as_pytest_says(self) -> tuple[dict[str, str], set[str]]:
        """The parsed statuses as pytest's lines hold them: the skips only by their module."""
        parsed = self.parsed()
        skipped = {key for key, status in parsed.items() if status == SKIPPED}
        others = {key: status for key, status in parsed.items() if key not in skipped}
        return others, {key.partition("::")[0] for key in skipped}


def pytest_summary(stdout: str) -> Counter[str]:
    """The counts on pytest's summary line, by anvild status ("8 subtests passed" left out)."""
    line = stdout.strip().splitlines()[-1].strip("= ")
    counts: Counter[str] = Counter()
    for part in line.rpartition(" in ")[0].split(", "):
        number, _, word = part.partition(" ")
        if word in SUMMARY_WORDS:
            counts[SUMMARY_WORDS[word]] += int(number)
    return counts


def short_summary_entries(stdout: str) -> list[str]:
    """The entries of pytest's short test summary, one string each. On CI (``CI`` or
    ``BUILD_NUMBER`` set) pytest prints a message whole, so one entry may span lines: a line
    that does not open with an entry's word continues the entry before it."""
    lines = stdout.partition(" short test summary info ")[2].splitlines()[1:-1]
    entries: list[str] = []
    for line in lines:
        opens = SKIP_LINE.match(line) or (
            (match := SHORT_LINE.match(line)) is not None and match[1] in LINE_WORDS
        )
        if opens or not entries:
            entries.append(line)
        else:
            entries[-1] += "\n" + line
    return entries


def pytest_verdicts(stdout: str) -> tuple[dict[str, str], dict[str, str]]:
    """Each test's verdict from pytest's -rA lines: the most severe line naming it (a failed
    subtest fails its test; a teardown error after a pass or a failure makes it an error)."""
    verdicts: dict[str, str] = {}
    skips: dict[str, str] = {}
    for line in short_summary_entries(stdout):
        skipped = SKIP_LINE.match(line)
        if skipped:
            assert skipped[1] == "1", line
            skips[key_from_node_id(skipped[2])] = skipped[3]
            continue
        match = SHORT_LINE.match(line)
        assert match and match[1] in LINE_WORDS, line
        key, status = key_from_node_id(match[2]), LINE_WORDS[match[1]]
        seen = verdicts.get(key, SKIPPED)
        verdicts[key] = max(seen, status, key=SEVERITY_ORDER.index)
    return verdicts, skips


@pytest.fixture(scope="module")
def outcome_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_project(tmp_path_factory.mktemp("outcomes"), OUTCOME_TESTS)


def pytest_session(root: Path, *args: str) -> PytestSession:
    """Run pytest over the outcome project with args and read what it wrote."""
    markers = Path(tempfile.mkdtemp(dir=root))
    report = markers / "junit.xml"
    proc = run_pytest(
        root,
        "-rA",
        "-p",
        "no:cacheprovider",
        "--continue-on-collection-errors",
        f"--junitxml={report}",
        *args,
        env={"MARKERS": str(markers)},
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    verdicts, skips = pytest_verdicts(proc.stdout)
    data = report.read_bytes()
    return PytestSession(
        pytest_summary(proc.stdout), verdicts, skips, parse_junit(report, data), data.decode()
    )


# The variants of a session that change what pytest writes in JUnit.
VARIANTS = {
    "xunit2": (),
    "xunit1": ("-o", "junit_family=xunit1"),
    "reruns": ("--reruns", "2"),
    "xdist": ("-n", "2"),
    "xdist-reruns": ("-n", "2", "--reruns", "2"),
}


@pytest.fixture(scope="module")
def sessions(outcome_project: Path) -> Callable[[str], PytestSession]:
    """The session of a variant, run once for every test that looks at it."""
    return functools.cache(lambda variant: pytest_session(outcome_project, *VARIANTS[variant]))


@pytest.fixture(params=list(VARIANTS))
def session(
    request: pytest.FixtureRequest, sessions: Callable[[str], PytestSession]
) -> PytestSession:
    return sessions(request.param)


def test_pytest_each_test_is_one_result_as_pytest_reports_it(session: PytestSession) -> None:
    # One result per test (no attempt from a repeated testcase), each with the status of the
    # most severe of pytest's own lines about it.
    assert len(session.run.results) == len(session.run.final_results())
    assert session.parsed_as_pytest_says() == (session.verdicts, set(session.skips))
    assert Counter(session.run.counts()) == session.tests()


@pytest.mark.parametrize("variant", ["xunit2", "xunit1", "xdist"])
def test_pytest_summary_line_against_the_stored_counts(
    sessions: Callable[[str], PytestSession], variant: str
) -> None:
    # Without reruns: with them, which attempts pytest counts varies (a passing test with a
    # teardown error is rerun and "passed" three times); the -rA lines still say it per test.
    session = sessions(variant)
    counts = Counter({k: v for k, v in session.run.counts().items() if v})
    # pytest's summary counts reports, anvild tests; they differ exactly by these:
    # - each failed subtest is one "failed" (4 here), beside its test's own verdict: a pytest
    #   subtests test whose subtests failed fails too, a unittest one passes (for anvild both
    #   are one FAILED);
    # - a test failing in call and erroring in teardown is "1 failed, 1 error", a passing one
    #   with a teardown error "1 passed, 1 error": one ERROR each for anvild.
    assert session.summary == Counter({FAILED: 8, PASSED: 5, SKIPPED: 3, XFAILED: 1, ERROR: 3}), (
        "pytest counts differently now: look again at what it writes"
    )
    expected = session.summary.copy()
    expected[FAILED] += -4 + 1 - 1  # the subtests; TestUnit.test_subtest_fail; a failed call
    expected[PASSED] -= 1 + 1  # TestUnit.test_subtest_fail; test_pass_and_teardown's call
    assert counts == expected, session.summary


def test_pytest_subtests_are_one_result_with_every_failure(session: PytestSession) -> None:
    assert session.parsed("test_subtests") == {
        "test_subtests::test_subtests_fail": FAILED,
        "test_subtests::test_subtests_pass": PASSED,
        "test_subtests.TestUnit::test_subtest_fail": FAILED,
        "test_subtests.TestUnit::test_subtest_pass": PASSED,
    }
    final = session.run.final_results()
    fail = final["test_subtests::test_subtests_fail"]
    assert fail.message is not None and fail.traceback is not None
    assert fail.message.count("AssertionError: odd") == 2, fail.message
    assert "contains 2 failed subtests" in fail.message
    assert "odd 1" in fail.traceback and "odd 3" in fail.traceback
    unit = final["test_subtests.TestUnit::test_subtest_fail"]
    assert unit.message is not None and unit.traceback is not None
    assert "1 != 0" in unit.message and "2 != 0" in unit.message
    assert "1 != 0" in unit.traceback and "2 != 0" in unit.traceback


def test_pytest_teardown_error_is_one_error_result(session: PytestSession) -> None:
    assert session.parsed("test_teardown") == {
        "test_teardown::test_fail_and_teardown": ERROR,
        "test_teardown::test_pass_and_teardown": ERROR,
    }
    both = session.run.final_results()["test_teardown::test_fail_and_teardown"]
    assert both.attempt == 0 and both.message is not None and both.traceback is not None
    # the error first (why it is an ERROR), then the call's failure
    assert both.message.startswith('failed on teardown with "RuntimeError: teardown boom"')
    assert "AssertionError: call failed" in both.message
    assert "call failed" in both.traceback and "teardown boom" in both.traceback


def test_pytest_reruns_are_one_result(session: PytestSession) -> None:
    assert session.parsed("test_reruns") == {
        "test_reruns::test_passes": PASSED,
        # passes on its second attempt with --reruns; without, fails
        "test_reruns::test_fails_once": session.verdicts["test_reruns::test_fails_once"],
        "test_reruns::test_always_fails": FAILED,
        "test_reruns::test_skipped": SKIPPED,
        "test_reruns::test_xfails": XFAILED,
    }
    if session.summary[RERUN]:
        assert session.verdicts["test_reruns::test_fails_once"] == PASSED
        # What pytest-rerunfailures writes: one testcase per attempt, the failed ones bare.
        # Nothing tells them from passes, so the "N rerun" of pytest's summary cannot be read
        # back from JUnit: no RERUN attempts, one result.
        assert session.xml.count('name="test_always_fails"') == 3
        assert session.xml.count('name="test_fails_once"') == 2
    assert not [r for r in session.run.results if r.status == RERUN]
    for name in ("test_always_fails", "test_fails_once"):
        # one row each in the history, not a PASSED attempt per bare testcase
        assert len(by_key(session.run, f"test_reruns::{name}")) == 1


def test_pytest_module_skips_and_collection_errors(session: PytestSession) -> None:
    assert session.parsed("test_import_skip") == {"test_import_skip": SKIPPED}
    assert session.parsed("test_module_skip") == {"test_module_skip": SKIPPED}
    assert session.parsed("test_broken") == {"test_broken": ERROR}
    final = session.run.final_results()
    # pytest's reason, as its "SKIPPED [1] test_import_skip.py:2: ..." line gives it, not
    # the "collection skipped" of the message attribute
    assert final["test_import_skip"].message == session.skips["test_import_skip"]
    assert final["test_import_skip"].message == (
        "could not import 'nonexistent': No module named 'nonexistent'"
    )
    assert final["test_module_skip"].message == "module skipped on purpose"
    assert final["test_broken"].message == "collection failure"
    broken = final["test_broken"].traceback
    assert broken is not None and "module_that_does_not_exist" in broken


def test_pytest_run_facts_from_its_suite(outcome_project: Path) -> None:
    # pytest 9 writes the session's start as an aware local time (isoformat of astimezone())
    # and its duration as the suite's time=; a machine far from UTC shows the offset is read.
    before = time.time()
    proc = run_pytest(
        outcome_project,
        "-q",
        "--continue-on-collection-errors",
        "--junitxml=tz.xml",
        env={"TZ": "Asia/Kolkata", "MARKERS": str(outcome_project)},
    )
    after = time.time()
    assert proc.returncode == 1, proc.stdout + proc.stderr
    data = (outcome_project / "tz.xml").read_bytes()
    suite = re.search(rb'<testsuite [^>]*time="([0-9.]+)" timestamp="([^"]+)"', data)
    assert suite is not None and suite[2].endswith(b"+05:30"), data[:300]
    run = parse_junit(outcome_project / "tz.xml", data)
    assert run.started_at is not None and run.finished_at is not None
    assert before <= run.started_at <= run.finished_at <= after
    assert run.duration == float(suite[1])
    # epoch seconds hold about 0.24 µs: start + duration - start is the duration to that grain
    assert run.finished_at - run.started_at == pytest.approx(run.duration, abs=1e-6)


def test_parallel_suites_last_as_long_as_their_span() -> None:
    # Suites that ran side by side (one per worker or per package, as gotestsum and Bazel
    # write them): from the earliest start to the latest end, not the sum of their times.
    run = parse(
        """<testsuites>
          <testsuite name="a" timestamp="2024-05-01T10:00:00+00:00" time="10"/>
          <testsuite name="b" timestamp="2024-05-01T10:00:02+00:00" time="5"/>
          <testsuite name="c" timestamp="2024-05-01T12:00:01+02:00" time="12.5"/>
        </testsuites>"""
    )
    assert run.duration == 13.5
    assert run.started_at == 1714557600.0
    assert run.finished_at == 1714557600.0 + 13.5
    # One suite that does not say when it started: they are taken to have run in sequence.
    unplaced = parse(
        """<testsuites>
          <testsuite name="a" timestamp="2024-05-01T10:00:00+00:00" time="10"/>
          <testsuite name="b" time="5"/>
          <testsuite name="no time" timestamp="2024-05-01T10:00:00+00:00"/>
        </testsuites>"""
    )
    assert unplaced.duration == 15.0
    # The root's own time is the tool's word for the whole run (jest writes it).
    rooted = parse(
        """<testsuites time="11">
          <testsuite timestamp="2024-05-01T10:00:00+00:00" time="10"/>
          <testsuite timestamp="2024-05-01T10:00:00+00:00" time="10"/>
        </testsuites>"""
    )
    assert rooted.duration == 11.0


def test_run_of_module_skips_only_is_stored(tmp_path: Path) -> None:
    project = write_project(
        tmp_path,
        {
            "test_import_skip.py": OUTCOME_TESTS["test_import_skip.py"],
            "test_module_skip.py": OUTCOME_TESTS["test_module_skip.py"],
        },
    )
    proc = run_pytest(project, "-q", "--junitxml=junit.xml")
    # pytest's "no tests ran" (exit 5): no test function ran, but two modules were skipped,
    # which a user looking for their run wants to see
    assert proc.returncode == 5 and pytest_summary(proc.stdout) == {SKIPPED: 2}, proc.stdout
    stored = anvild("ingest", "junit.xml", cwd=project)
    assert stored.returncode == 0, stored.stdout + stored.stderr
    (run,) = json.loads(anvild("history", "--json", cwd=project).stdout)
    assert run["source"] == "junit"
    assert run["counts"]["skipped"] == 2 and sum(run["counts"].values()) == 2
