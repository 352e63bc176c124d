"""Flaky detection that holds up in CI (issue 15), on real `anvild ingest` of real report files:
outages are no evidence, regressions and fixes are not flaky, each flaky row has a score with
its evidence, and a lifecycle (first and last flake, recovered)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import anvild

START = 1_760_000_000.0
STEADY = [f"tests/test_s.py::test_steady_{n}" for n in range(9)]
ONE = "tests/test_x.py::test_one"


def _item(nodeid: str, outcome: str) -> dict[str, Any]:
    phase = {"duration": 0.01, "outcome": "passed"}
    failed = {"duration": 0.01, "outcome": "failed", "crash": {"message": "boom"}, "longrepr": "E"}
    item: dict[str, Any] = {"nodeid": nodeid, "lineno": 1, "outcome": outcome, "keywords": []}
    item.update(setup=phase, call=failed if outcome == "failed" else phase, teardown=phase)
    return item


class Reports:
    """Report files of a project's runs, one a call, each a minute after the last."""

    def __init__(self, root: Path) -> None:
        self.root, self.dir, self.count = root, root / "reports", 0
        (root / ".anvil").mkdir(parents=True)
        self.dir.mkdir()

    def run(
        self,
        outcomes: dict[str, str],
        commit: str,
        exitcode: int | None = None,
        collectors: list[dict[str, Any]] | None = None,
    ) -> None:
        self.count += 1
        started = START + self.count * 60
        failing = any(o != "passed" for o in outcomes.values()) or bool(collectors)
        doc = {
            "created": started + 1,
            "duration": 1.0,
            "exitcode": (1 if failing else 0) if exitcode is None else exitcode,
            "root": str(self.root),
            "environment": {},
            "summary": {"total": len(outcomes)},
            "collectors": collectors or [],
            "tests": [_item(node, o) for node, o in outcomes.items()],
            "anvild": {
                "session_id": f"{self.count:032x}",
                "git_commit": commit,
                "git_branch": "main",
                "tree_dirty": False,
                "started_at": started,
                "duration": 1.0,
            },
        }
        (self.dir / f"run-{self.count:03d}.json").write_text(json.dumps(doc))

    def series(self, node: str, outcomes: str, commits: str | None = None) -> None:
        """One run per letter (P passed, F failed) beside the steady tests; commits: a letter
        per run naming its commit (default: each run its own)."""
        for n, letter in enumerate(outcomes):
            commit = (commits[n] if commits else str(self.count)) * 40
            self.run({**dict.fromkeys(STEADY, "passed"), node: _OUTCOME[letter]}, commit)

    def ingest(self) -> None:
        proc = anvild("ingest", str(self.dir), cwd=self.root)
        assert proc.returncode == 0, proc.stderr

    def json(self, *args: str) -> Any:
        proc = anvild(*args, cwd=self.root)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)

    def flaky(self, *args: str) -> dict[str, dict[str, Any]]:
        rows = self.json("stats", "flaky", "--format", "json", *args)
        return {row["entity_id"]: row for row in rows}

    def runs(self) -> list[dict[str, Any]]:
        return list(reversed(self.json("history", "--json", "--limit", "200")))  # oldest first


_OUTCOME = {"P": "passed", "F": "failed"}


@pytest.fixture
def reports(tmp_path: Path) -> Reports:
    return Reports(tmp_path / "project")


def test_an_outage_is_marked_kept_and_no_evidence(reports: Reports) -> None:
    everyone = [*STEADY, ONE]
    for n in range(6):  # one commit; in run 3 the database was down: 9 of 10 tests failed
        down = n == 2
        outcomes = {t: "failed" if down and t != STEADY[0] else "passed" for t in everyone}
        reports.run(outcomes, "a" * 40)
    reports.ingest()
    # without the outage rule, each of the 9 would be "same code, different outcome"
    assert reports.flaky("--threshold", "1", "--min-runs", "2") == {}
    runs = reports.runs()
    assert [run["outage"] for run in runs] == [False, False, True, False, False, False]
    card = reports.json("show", runs[2]["execution_id"], "--json")
    assert card["outage"] is True
    shown = anvild("show", runs[2]["execution_id"], cwd=reports.root).stdout
    assert "outage: most of its tests failed" in shown
    # kept in the history and the statistics
    (stat,) = [r for r in reports.json("stats", "show", "--json") if r["entity_id"] == ONE]
    assert (stat["total_runs"], stat["failed"]) == (6, 1)
    # the share is an option: at 95 % the run is evidence again
    assert set(reports.flaky("--outage", "95")) == set(everyone) - {STEADY[0]}


def test_a_run_that_failed_at_collection_for_everything_is_an_outage(reports: Reports) -> None:
    reports.series(ONE, "PP")
    collector = {
        "nodeid": "tests/test_x.py",
        "outcome": "failed",
        "result": [],
        "longrepr": "ImportError: cannot import name 'db'",
    }
    reports.run({}, "b" * 40, exitcode=2, collectors=[collector])
    reports.series(ONE, "PP")
    reports.ingest()
    assert [run["outage"] for run in reports.runs()] == [False, False, True, False, False]


def test_a_regression_is_not_flaky_and_says_since_when(reports: Reports) -> None:
    # passed on commits a, b; fails from commit c on
    reports.series(ONE, "PPPPFFFF", commits="aabbccdd")
    reports.ingest()
    assert ONE not in reports.flaky("--threshold", "1", "--min-runs", "2")
    since = reports.runs()[4]
    card = reports.json("show", ONE, "--json")
    assert card["flaky"]["flaky"] is False and card["flaky"]["change"] == "regression"
    assert card["flaky"]["since"]["execution_id"] == since["execution_id"]
    assert card["flaky"]["since"]["git_commit"] == "c" * 40
    text = anvild("show", ONE, cwd=reports.root).stdout
    assert f"regression, not flaky: failing since {since['execution_id']}" in text
    assert "commit cccccccccccc" in text


def test_a_fix_is_not_flaky(reports: Reports) -> None:
    reports.series(ONE, "FFFPPPPP", commits="aaabbbcc")
    reports.ingest()
    assert reports.flaky("--threshold", "1", "--min-runs", "2") == {}
    card = reports.json("show", ONE, "--json")
    assert card["flaky"]["change"] == "fixed"
    assert card["flaky"]["since"]["execution_id"] == reports.runs()[3]["execution_id"]
    assert "fixed, not flaky: passing since" in anvild("show", ONE, cwd=reports.root).stdout


def test_a_regression_on_the_same_code_is_still_flaky(reports: Reports) -> None:
    # the same commit passed and then failed: the strongest evidence (SPEC 7, rule 1)
    reports.series(ONE, "PPFF", commits="aaaa")
    reports.ingest()
    assert reports.flaky()[ONE]["reasons"] == ["same_code_different_outcome"]


def test_each_flaky_row_has_a_score_and_its_evidence(reports: Reports) -> None:
    strong, weak = "tests/test_x.py::test_strong", "tests/test_x.py::test_weak"
    for n in range(24):
        outcomes = {**dict.fromkeys(STEADY, "passed"), strong: "failed" if n % 2 else "passed"}
        outcomes[weak] = "failed" if n == 10 else "passed"
        reports.run(outcomes, "a" * 40)
    reports.ingest()
    found = reports.flaky()
    assert set(found) == {strong, weak}
    assert found[weak]["reasons"] == ["same_code_different_outcome"]
    for row in found.values():
        assert 0.0 <= row["score"] <= 1.0
        evidence = row["evidence"]
        assert (evidence["runs"], evidence["outages_left_out"]) == (24, 0)
        assert evidence["failures"] + evidence["passes"] == 24
    assert (found[weak]["evidence"]["failures"], found[strong]["evidence"]["failures"]) == (1, 12)
    assert found[strong]["score"] > 0.99 > found[weak]["score"]
    assert list(found) == [strong, weak]  # the stronger first
    assert set(reports.flaky("--min-score", "0.99")) == {strong}
    table = anvild("stats", "flaky", cwd=reports.root).stdout
    assert "score" in table and "last flake" in table and "state" in table


def test_lifecycle_first_and_last_flake_and_recovered(reports: Reports) -> None:
    reports.series(ONE, "PFPFP" + "P" * 25, commits="aaaaa" + "b" * 25)
    reports.ingest()
    runs = reports.runs()
    row = reports.flaky("--recovered-after", "20")[ONE]
    assert row["first_flake"]["execution_id"] == runs[1]["execution_id"]
    assert row["last_flake"]["execution_id"] == runs[3]["execution_id"]
    assert row["runs_since_flake"] == 26 and row["recovered"] is True
    assert reports.flaky("--recovered-after", "30")[ONE]["recovered"] is False
    card = reports.json("show", ONE, "--json")["flaky"]
    assert (
        card["recovered"] is True and card["first_flake"]["execution_id"] == runs[1]["execution_id"]
    )
    assert "recovered (no flake in its newest runs)" in anvild("show", ONE, cwd=reports.root).stdout


def test_a_test_seen_failing_only_in_outages_is_broken_not_flaky(reports: Reports) -> None:
    reports.run(dict.fromkeys(STEADY, "failed"), "a" * 40)  # its only run: everything failed
    reports.run(dict.fromkeys(STEADY, "failed"), "a" * 40)
    reports.ingest()
    assert [run["outage"] for run in reports.runs()] == [True, True]
    assert reports.flaky() == {}
    broken = reports.flaky("--broken")
    assert set(broken) == set(STEADY) and all(row["broken"] for row in broken.values())
    assert broken[STEADY[0]]["evidence"]["outages_left_out"] == 2
