"""pytest-json-report documents from real pytest runs, and the ways they can be wrong."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from anvild.errors import NotAReport, NotARun, ReportError, ReportIncomplete
from anvild.parsers import json_report
from anvild.parsers.detect import detect_format, parse_report
from anvild.status import ERROR, FAILED, PASSED, RERUN, SKIPPED
from tests.conftest import SAMPLE_EXPECTED, run_pytest, write_project


def test_every_outcome_matches_what_pytest_printed(sample_reports: dict) -> None:
    run = parse_report(sample_reports["json"])
    statuses = {r.node_id: r.status for r in run.results}
    assert statuses == SAMPLE_EXPECTED
    # pytest's own summary lines agree with the stored status of each test
    stdout = sample_reports["stdout"]
    for node_id, status in SAMPLE_EXPECTED.items():
        word = {"XFAILED": "XFAIL", "XPASSED": "XPASS"}.get(status, status)
        if status != SKIPPED:  # pytest prints skips by location, not node id
            assert f"{word} {node_id}" in stdout
    assert run.exit_code == sample_reports["exit_code"] == 1
    assert run.source_format == "pytest-json-report"


def test_duration_is_setup_plus_call_plus_teardown(sample_reports: dict) -> None:
    raw = {t["nodeid"]: t for t in json.loads(sample_reports["json"].read_text())["tests"]}
    run = parse_report(sample_reports["json"])
    for result in run.results:
        if result.node_id not in raw:
            continue  # the collection error has no phases
        phases = [
            raw[result.node_id].get(p, {}).get("duration", 0.0)
            for p in ("setup", "call", "teardown")
        ]
        assert result.duration == pytest.approx(sum(phases))
    by_id = {r.node_id: r for r in run.results}
    assert by_id["tests/test_outcomes.py::test_passes"].duration >= 0.02


def test_failure_messages_come_from_the_crash(sample_reports: dict) -> None:
    by_id = {r.node_id: r for r in parse_report(sample_reports["json"]).results}
    assert by_id["tests/test_outcomes.py::test_fails"].message.startswith(
        "AssertionError: arithmetic is broken"
    )
    assert "fixture exploded" in by_id["tests/test_outcomes.py::test_fixture_error"].message
    assert "n was 3" in by_id["tests/test_outcomes.py::test_param[3]"].message
    collection = by_id["tests/test_broken_import.py"]
    assert collection.status == ERROR
    assert "No module named 'module_that_does_not_exist'" in collection.message
    assert "import module_that_does_not_exist" in collection.traceback
    assert by_id["tests/test_outcomes.py::test_passes"].message is None


def test_collect_only_report_is_not_a_run(tmp_path: Path) -> None:
    root = write_project(tmp_path, {"test_a.py": "def test_a():\n    pass\n"})
    proc = run_pytest(root, "--collect-only", "--json-report", "--json-report-file=r.json")
    assert proc.returncode == 0, proc.stdout
    with pytest.raises(NotARun, match="collect-only"):
        parse_report(root / "r.json")


def _doc(tests: list, **extra: object) -> bytes:
    doc = {
        "created": 1.0,
        "duration": 0.5,
        "exitcode": 0,
        "root": "/x",
        "summary": {"total": len(tests)},
        "tests": tests,
        **extra,
    }
    return json.dumps(doc).encode()


def test_unknown_plugin_outcomes_are_mapped_and_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    json_report._warned_outcomes.clear()
    tests = [
        {"nodeid": "t.py::a", "outcome": "timeout"},
        {"nodeid": "t.py::b", "outcome": "weird-failure"},
        {"nodeid": "t.py::c", "outcome": "weird-failure"},
        {"nodeid": "t.py::d", "outcome": "mystery"},
        {"nodeid": "t.py::e", "outcome": "rerun"},
        {"nodeid": "t.py::e", "outcome": "passed"},
    ]
    with caplog.at_level(logging.WARNING):
        run = json_report.parse_json_report(Path("r.json"), _doc(tests))
    assert [r.status for r in run.results] == [FAILED, FAILED, FAILED, SKIPPED, RERUN, PASSED]
    assert [r.attempt for r in run.results][-2:] == [0, 1]
    warnings = [rec.getMessage() for rec in caplog.records]
    assert sum("weird-failure" in w for w in warnings) == 1
    assert len(warnings) == 3  # timeout, weird-failure, mystery: each once


@pytest.mark.parametrize(
    ("content", "error", "reason"),
    [
        (
            b'{"created": 1.0, "summary": {"total": 2}, "tests": [{"nodeid": "a"',
            ReportIncomplete,
            "ends early",
        ),
        (b"", ReportError, "empty report file"),
        (b"\x00\x01\x02\xff" * 20, NotAReport, "binary file"),
        (b'{"summary": {}, "tests": {"a": 1}}', ReportError, "'tests' is not a list"),
        (b'{"summary": {}, "tests": [1, 2]}', ReportError, "not an object"),
        (b'{"summary": {}, "tests": [{"outcome": "passed"}]}', ReportError, "without a 'nodeid'"),
        (b'{"hello": "world"}', NotAReport, "no 'summary'"),
        (b"[1, 2, 3]", NotAReport, "neither JSON nor XML"),
        (b'{"summary": {}, "tests": []} trailing', ReportError, "not valid JSON"),
    ],
)
def test_bad_documents_raise_one_clear_error(
    content: bytes, error: type, reason: str, tmp_path: Path
) -> None:
    path = tmp_path / "report.json"
    path.write_bytes(content)
    with pytest.raises(error) as caught:
        parse_report(path)
    message = str(caught.value)
    assert reason in message
    assert str(path) in message
    assert "\n" not in message


def test_format_is_detected_by_content_not_name(sample_reports: dict, tmp_path: Path) -> None:
    for kind, expected in (
        ("json", "pytest-json-report"),
        ("junit", "junit"),
        ("reportlog", "reportlog"),
    ):
        renamed = tmp_path / f"{kind}.txt"
        renamed.write_bytes(sample_reports[kind].read_bytes())
        assert detect_format(renamed, renamed.read_bytes()) == expected


def test_wrong_types_inside_tests_do_not_crash(tmp_path: Path) -> None:
    tests = [
        {
            "nodeid": "t.py::a",
            "outcome": "failed",
            "setup": "x",
            "call": {"duration": "slow", "crash": {"message": 5}, "longrepr": ["a"]},
        }
    ]
    run = json_report.parse_json_report(tmp_path / "r.json", _doc(tests, exitcode="one"))
    assert run.results[0].status == FAILED
    assert run.results[0].duration is None
    assert run.exit_code is None


# Tests of every shape the outcome rules tell apart: passes, failures in each phase, skips with
# their reason, xfail and xpass, reruns ending in a pass or not, a failed subtest, a test set up
# and never called (interrupted), durations missing or huge, clipped names and messages.
_SHAPES = [
    {"nodeid": "t.py::ok", "outcome": "passed", "setup": {"duration": 0.1, "outcome": "passed"},
     "call": {"duration": 0.2, "outcome": "passed"},
     "teardown": {"duration": 0.3, "outcome": "passed"}},
    {"nodeid": "t.py::T::fails[1]", "outcome": "failed", "call": {"duration": 1.0,
     "outcome": "failed", "crash": {"message": "AssertionError: no"}, "longrepr": "tb\nE  no"}},
    {"nodeid": "t.py::setup_error", "outcome": "error", "setup": {"outcome": "failed",
     "longrepr": "fixture\nE   boom\n"}},
    {"nodeid": "t.py::skipped", "outcome": "skipped", "setup": {"outcome": "skipped",
     "crash": {"message": "Skipped: later"}, "longrepr": "('t.py', 1, 'Skipped: later')"}},
    {"nodeid": "t.py::xfail", "outcome": "xfailed", "call": {"outcome": "skipped",
     "crash": {"message": "reason"}, "longrepr": "tb"}},
    {"nodeid": "t.py::xpass", "outcome": "xpassed", "call": {"outcome": "passed"}},
    {"nodeid": "t.py::flaky", "outcome": "rerun", "call": {"duration": 2.0, "outcome": "passed"}},
    {"nodeid": "t.py::gave_up", "outcome": "rerun", "call": {"outcome": "failed",
     "crash": {"message": "still no"}}},
    {"nodeid": "t.py::sub", "outcome": "subtests passed", "call": {"outcome": "passed"},
     "anvild_subtest_failure": {"message": None, "longrepr": "sub tb\nE  sub failed"}},
    {"nodeid": "t.py::interrupted", "outcome": "passed", "setup": {"outcome": "passed"}},
    {"nodeid": "t.py::huge", "outcome": "passed", "setup": {"duration": 1e308},
     "call": {"duration": 1e308}},
    {"nodeid": "t.py::" + "n" * 600, "outcome": "failed",
     "call": {"outcome": "failed", "crash": {"message": "m" * 5000}}},
    {"nodeid": "t.py::ok", "outcome": "passed", "call": {"outcome": "passed"}},  # again
    {"nodeid": "t.py::plugin", "outcome": "Timeout", "call": {"outcome": "failed"}},
]  # fmt: skip


def test_the_tolerant_reading_gives_each_test_what_the_typed_one_does(tmp_path: Path) -> None:
    """One field of an odd type anywhere makes a report read the tolerant way: every other
    test comes out of it exactly as the typed reading gives it (the rules have one home)."""
    path = tmp_path / "r.json"
    typed = json_report.parse_json_report(path, _doc(_SHAPES))
    odd = {"nodeid": "t.py::odd", "outcome": "passed", "call": {"duration": "slow"}}
    tolerant = json_report.parse_json_report(path, _doc([odd, *_SHAPES]))
    assert tolerant.results[0].node_id == "t.py::odd" and tolerant.results[0].duration is None
    assert tolerant.results[1:] == typed.results
    by_id = {(r.node_id, r.attempt): r for r in typed.results}
    assert [(r.status, r.duration) for r in typed.results if r.node_id == "t.py::flaky"] == [
        (RERUN, None),
        (PASSED, 2.0),
    ]
    assert by_id["t.py::sub", 0].status == FAILED
    assert by_id["t.py::sub", 0].message == "E  sub failed"
    assert ("t.py::interrupted", 0) not in by_id
    assert by_id["t.py::huge", 0].duration is None
    assert by_id["t.py::ok", 0].duration == pytest.approx(0.6) and by_id["t.py::ok", 1]
    assert by_id["t.py::skipped", 0].traceback is None
    assert by_id["t.py::setup_error", 0].message == "boom"  # without pytest's `E   `


@pytest.mark.parametrize("path", ["/src/tests/test_a.py", "C:\\src\\test_a.py", "/t/it's.py"])
@pytest.mark.parametrize(
    "reason",
    ["not here", "it's CI", 'say "no"', "a\\b", "two\nlines", "(x, 'y')", "é ✓", "", "Skipped: x"],
)
def test_a_skips_reason_reads_as_pytests_own_line_shows_it(path: str, reason: str) -> None:
    """pytest writes a skip as the repr of (path, line, "Skipped: reason"); read without a
    parser when it holds no quote or backslash, it says the same as any other."""
    from anvild.records import clip_message, skip_reason

    assert skip_reason(repr((path, 12, f"Skipped: {reason}"))) == clip_message(reason)
    unmarked = clip_message(reason.removeprefix("Skipped: "))
    assert skip_reason(repr((path, 12, reason))) == unmarked
