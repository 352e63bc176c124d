"""pytest-reportlog files from real pytest runs, read whole and as they grow."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from anvild.errors import NotAReport, ReportError, ReportIncomplete
from anvild.parsers.detect import parse_report
from anvild.parsers.reportlog import ReportlogReader, parse_reportlog
from anvild.status import ERROR, FAILED, PASSED, RERUN, SKIPPED, XFAILED
from tests.conftest import SAMPLE_EXPECTED, run_pytest, write_project


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def test_every_outcome_matches_what_pytest_printed(sample_reports: dict) -> None:
    run = parse_report(sample_reports["reportlog"])
    assert run.source_format == "reportlog"
    assert {r.node_id: r.status for r in run.results} == SAMPLE_EXPECTED
    assert len(run.results) == len(SAMPLE_EXPECTED)  # one result per test: phases merged
    stdout = sample_reports["stdout"]
    for node_id, status in SAMPLE_EXPECTED.items():
        word = {"XFAILED": "XFAIL", "XPASSED": "XPASS"}.get(status, status)
        if status != SKIPPED:  # pytest prints skips by location, not node id
            assert f"{word} {node_id}" in stdout
    assert run.exit_code == sample_reports["exit_code"] == 1
    assert not run.interrupted
    assert run.started_at is not None and run.finished_at is not None
    assert run.duration == pytest.approx(run.finished_at - run.started_at)
    assert all(r.attempt == 0 for r in run.results)


def test_failure_messages_come_from_the_crash(sample_reports: dict) -> None:
    by_id = {r.node_id: r for r in parse_report(sample_reports["reportlog"]).results}
    fails = by_id["tests/test_outcomes.py::test_fails"]
    assert fails.message is not None and fails.message.startswith(
        "AssertionError: arithmetic is broken"
    )
    assert fails.traceback is not None
    assert '>       assert 1 + 1 == 3, "arithmetic is broken"' in fails.traceback
    assert "tests/test_outcomes.py:13: AssertionError" in fails.traceback
    assert fails.key == "tests.test_outcomes::test_fails" and fails.file == "tests/test_outcomes.py"
    assert (
        by_id["tests/test_outcomes.py::test_fixture_error"].message
        == "RuntimeError: fixture exploded"
    )
    assert "n was 3" in (by_id["tests/test_outcomes.py::test_param[3]"].message or "")
    assert "n = 3" in (by_id["tests/test_outcomes.py::test_param[3]"].traceback or "")
    assert by_id["tests/test_outcomes.py::test_skipped"].message == "not today"
    assert by_id["tests/test_outcomes.py::test_skipped"].traceback is None
    assert by_id["tests/test_outcomes.py::test_xfails"].message == "assert False"
    assert by_id["tests/test_outcomes.py::test_xfails"].traceback is None
    for passing in ("test_passes", "test_xpasses", "TestGroup::test_in_class"):
        result = by_id[f"tests/test_outcomes.py::{passing}"]
        assert result.message is None and result.traceback is None
    collection = by_id["tests/test_broken_import.py"]
    assert collection.status == ERROR and collection.key == "tests.test_broken_import"
    assert "No module named 'module_that_does_not_exist'" in (collection.message or "")
    assert "import module_that_does_not_exist" in (collection.traceback or "")


def test_duration_is_setup_plus_call_plus_teardown(sample_reports: dict) -> None:
    phases: dict[str, float] = {}
    for line in _lines(sample_reports["reportlog"]):
        record = orjson.loads(line)
        if record["$report_type"] == "TestReport":
            phases[record["nodeid"]] = phases.get(record["nodeid"], 0.0) + record["duration"]
    by_id = {r.node_id: r for r in parse_report(sample_reports["reportlog"]).results}
    for node_id, total in phases.items():
        assert by_id[node_id].duration == pytest.approx(total)
    assert (by_id["tests/test_outcomes.py::test_passes"].duration or 0) >= 0.02
    assert by_id["tests/test_broken_import.py"].duration is None


@pytest.mark.parametrize("seed", range(6))
def test_fed_in_random_chunks_reads_the_same_run(sample_reports: dict, seed: int) -> None:
    path = sample_reports["reportlog"]
    data = path.read_bytes()
    whole = parse_reportlog(path, data)
    rng = random.Random(seed)
    reader = ReportlogReader(path)
    seen = [0]
    offset = 0
    while offset < len(data):
        size = rng.choice((1, 7, 64, 500, 4096))
        reader.feed(data[offset : offset + size])
        offset += size
        assert reader.tests_so_far >= seen[-1]
        seen.append(reader.tests_so_far)
    assert reader.complete
    assert reader.finish() == whole
    assert seen[-1] == len(SAMPLE_EXPECTED)
    assert len(set(seen)) > 3  # tests appeared one by one, not all at the end


def test_a_run_in_progress_is_incomplete_until_session_finish(sample_reports: dict) -> None:
    path = sample_reports["reportlog"]
    lines = _lines(path)
    # stop right after test_fails' call phase: its teardown has not been written yet
    cut = next(
        i + 1
        for i, line in enumerate(lines)
        if b'"when": "call"' in line and b'::test_fails"' in line
    )
    reader = ReportlogReader(path)
    reader.feed(b"".join(lines[:cut]))
    assert not reader.complete
    assert reader.tests_so_far == 2  # the collection error and test_passes
    with pytest.raises(ReportIncomplete) as caught:
        reader.finish()
    assert str(caught.value) == f"run not finished: no SessionFinish ({path})"
    partial = reader.finish(interrupted=True)
    assert partial.interrupted and partial.exit_code is None
    assert [(r.node_id, r.status) for r in partial.results] == [
        ("tests/test_broken_import.py", ERROR),
        ("tests/test_outcomes.py::test_passes", PASSED),
        ("tests/test_outcomes.py::test_fails", FAILED),
    ]
    # the run goes on: the same reader reads the rest and the run is complete
    reader.feed(b"".join(lines[cut:]))
    assert reader.complete and reader.finish() == parse_reportlog(path, path.read_bytes())
    assert not reader.finish(interrupted=True).interrupted


def test_whole_file_without_session_finish_is_incomplete(
    sample_reports: dict, tmp_path: Path
) -> None:
    path = tmp_path / "reportlog.jsonl"
    path.write_bytes(b"".join(_lines(sample_reports["reportlog"])[:-1]))
    with pytest.raises(ReportIncomplete, match="run not finished: no SessionFinish"):
        parse_report(path)


def test_truncated_last_line_is_ignored(sample_reports: dict) -> None:
    path = sample_reports["reportlog"]
    data = path.read_bytes()
    expected = parse_reportlog(path, data)
    assert parse_reportlog(path, data + b'{"$report_type": "WarningMess') == expected
    assert parse_reportlog(path, data.rstrip(b"\n")) == expected  # last line lacks its newline
    # cut inside SessionFinish: the line being written is ignored, so the run is not finished
    with pytest.raises(ReportIncomplete):
        parse_reportlog(path, data.rstrip(b"\n")[:-5])


def test_unknown_record_types_and_keys_are_ignored(sample_reports: dict) -> None:
    path = sample_reports["reportlog"]
    expected = parse_reportlog(path, path.read_bytes())
    noisy = [b'{"$report_type": "FromTheFuture", "payload": [1, 2]}\n', b"\n"]
    for line in _lines(path):
        record = orjson.loads(line)
        record["new_key"] = {"nested": True}
        noisy.append(orjson.dumps(record) + b"\n")
    assert parse_reportlog(path, b"".join(noisy)) == expected


def _insert(lines: list[bytes], at: int, line: bytes) -> bytes:
    return b"".join([*lines[:at], line, *lines[at:]])


BINARY = b"\x00" + random.Random(1).randbytes(5000)
BAD_FILES: dict[str, tuple[Callable[[list[bytes]], bytes], type[ReportError], str]] = {
    "garbage-line": (
        lambda lines: _insert(lines, 4, b"not json\n"),
        ReportError,
        "line 5: not valid JSON",
    ),
    "not-an-object": (
        lambda lines: _insert(lines, 2, b"[1, 2]\n"),
        ReportError,
        "line 3: not a JSON object",
    ),
    "empty": (lambda lines: b"", ReportError, "empty report file"),
    "blank": (lambda lines: b"\n  \n", ReportError, "empty report file"),
    "binary": (lambda lines: BINARY, ReportError, "line 1: not valid JSON"),
    "binary-one-line": (
        lambda lines: BINARY.replace(b"\n", b""),
        ReportError,
        "line 1: not valid JSON",
    ),
    "other-json-lines": (lambda lines: b'{"tests": []}\n', NotAReport, 'no "$report_type" lines'),
    "no-nodeid": (
        lambda lines: b'{"$report_type": "TestReport"}\n',
        ReportError,
        "line 1: a TestReport without",
    ),
}


@pytest.mark.parametrize("case", BAD_FILES)
def test_bad_files_are_rejected_with_one_line(
    sample_reports: dict, tmp_path: Path, case: str
) -> None:
    make, error, reason = BAD_FILES[case]
    path = tmp_path / "reportlog.jsonl"
    with pytest.raises(error) as caught:
        parse_reportlog(path, make(_lines(sample_reports["reportlog"])))
    assert not isinstance(caught.value, ReportIncomplete)  # nothing here gets better by waiting
    message = str(caught.value)
    assert reason in message and str(path) in message and "\n" not in message


EDGE_TESTS = {
    "test_edges.py": """
        import pytest

        @pytest.fixture
        def bad_teardown():
            yield
            raise RuntimeError("teardown exploded")

        def test_passes_then_teardown_fails(bad_teardown):
            pass

        def test_fails_and_teardown_fails(bad_teardown):
            assert False, "call broke first"

        @pytest.mark.xfail(run=False, reason="never run")
        def test_xfail_not_run():
            pass

        @pytest.mark.xfail(strict=True, reason="strict")
        def test_strict_xpass():
            pass

        def test_skip_in_call():
            pytest.skip("decided at run time")

        def test_imperative_xfail():
            pytest.xfail("not yet")

        def inner():
            raise KeyError("inner")

        def test_chained_exception():
            try:
                inner()
            except KeyError as exc:
                raise ValueError("outer") from exc
    """,
}


def test_phases_merge_like_pytests_terminal(tmp_path: Path) -> None:
    root = write_project(tmp_path, EDGE_TESTS)
    proc = run_pytest(root, "-rA", "--report-log=reportlog.jsonl")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    run = parse_report(root / "reportlog.jsonl")
    by_name = {r.node_id.split("::")[1]: r for r in run.results}
    assert {name: r.status for name, r in by_name.items()} == {
        "test_passes_then_teardown_fails": ERROR,
        "test_fails_and_teardown_fails": ERROR,  # pytest: "1 failed, 1 error" for one test
        "test_xfail_not_run": XFAILED,
        "test_strict_xpass": FAILED,
        "test_skip_in_call": SKIPPED,
        "test_imperative_xfail": XFAILED,
        "test_chained_exception": FAILED,
    }
    assert by_name["test_passes_then_teardown_fails"].message == "RuntimeError: teardown exploded"
    assert "call broke first" in (by_name["test_fails_and_teardown_fails"].message or "")
    assert by_name["test_skip_in_call"].message == "decided at run time"
    assert "ERROR test_edges.py::test_passes_then_teardown_fails" in proc.stdout
    chained = by_name["test_chained_exception"]
    assert chained.message == "ValueError: outer"
    assert chained.traceback is not None
    inner, outer = chained.traceback.split("The above exception was the direct cause")
    assert 'raise KeyError("inner")' in inner and "test_edges.py:30: KeyError" in inner
    assert 'raise ValueError("outer") from exc' in outer and outer.rstrip().endswith("ValueError")


def test_reruns_are_one_result_per_attempt(tmp_path: Path) -> None:
    pytest.importorskip(
        "pytest_rerunfailures", reason="pytest-rerunfailures is not installed: cannot make reruns"
    )
    counter = tmp_path / "counter.txt"
    root = write_project(
        tmp_path / "project",
        {
            "test_flaky.py": f"""
                from pathlib import Path

                COUNTER = Path({str(counter)!r})

                def test_flaky():
                    n = int(COUNTER.read_text()) if COUNTER.exists() else 0
                    COUNTER.write_text(str(n + 1))
                    assert n >= 2, f"attempt {{n}} failed"

                def test_steady():
                    pass
            """,
        },
    )
    proc = run_pytest(root, "--reruns", "2", "--report-log=reportlog.jsonl")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    reader = ReportlogReader(root / "reportlog.jsonl")
    reader.feed((root / "reportlog.jsonl").read_bytes())
    run = reader.finish()
    flaky = [r for r in run.results if r.node_id == "test_flaky.py::test_flaky"]
    assert [(r.status, r.attempt) for r in flaky] == [(RERUN, 0), (RERUN, 1), (PASSED, 2)]
    assert [r.message for r in flaky[:2]] == [
        "AssertionError: attempt 0 failed\nassert 0 >= 2",
        "AssertionError: attempt 1 failed\nassert 1 >= 2",
    ]
    assert all(r.traceback for r in flaky[:2]) and flaky[2].traceback is None
    assert all((r.duration or 0) > 0 for r in flaky)
    assert run.final_results()["test_flaky::test_flaky"].status == PASSED
    assert reader.tests_so_far == 2 and run.exit_code == 0
