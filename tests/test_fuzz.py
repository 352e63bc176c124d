"""Fuzzing the parsers: whatever bytes arrive, the answer is a run or one ReportError."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from anvild.errors import ReportError
from anvild.parsers.detect import parse_bytes
from anvild.records import ParsedRun
from anvild.status import STATUSES

FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _check(data: bytes) -> None:
    try:
        run = parse_bytes(Path("fuzzed"), data)
    except ReportError as exc:
        assert "\n" not in str(exc) and "fuzzed" in str(exc)
        return
    assert isinstance(run, ParsedRun)
    assert all(r.status in STATUSES and r.node_id and r.key for r in run.results)


@FUZZ
@given(st.binary(max_size=2000))
def test_random_bytes(data: bytes) -> None:
    _check(data)


@FUZZ
@given(st.data())
def test_real_reports_cut_and_mutated(sample_reports: dict, data: st.DataObject) -> None:
    kind = data.draw(st.sampled_from(["json", "junit", "reportlog"]))
    original = Path(sample_reports[kind]).read_bytes()
    cut = data.draw(st.integers(0, len(original)))
    noise = data.draw(st.binary(max_size=40))
    at = data.draw(st.integers(0, cut))
    _check(original[:at] + noise + original[at:cut])


@FUZZ
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
        lambda inner: (
            st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
        ),
        max_leaves=30,
    )
)
def test_json_of_any_shape_with_pytest_keys(value: object) -> None:
    import json

    for doc in (
        {"summary": {"total": 1}, "tests": value},
        {"summary": value, "tests": [value]},
        {"summary": {}, "tests": [{"nodeid": "t.py::a", "outcome": value, "call": value}]},
    ):
        _check(json.dumps(doc, default=str).encode())


def test_deep_nesting_and_huge_strings() -> None:
    _check(b"[" * 100_000 + b"]" * 100_000)
    _check(b'{"summary": {}, "tests": [' + b"[" * 50_000 + b"]" * 50_000 + b"]}")
    huge = "x" * 5_000_000
    _check(
        (
            '{"summary": {"total": 1}, "tests": [{"nodeid": "t.py::a", "outcome": "failed", '
            '"call": {"outcome": "failed", "crash": {"message": "' + huge + '"}}}]}'
        ).encode()
    )
    _check(b"<testsuite>" + b"<testsuite>" * 20_000 + b"</testsuite>" * 20_001)
