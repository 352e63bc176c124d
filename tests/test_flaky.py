"""Flaky tests (SPEC section 7): each rule's verdict on histories with known answers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from anvild import api
from anvild.api import Target
from anvild.errors import UsageError
from anvild.flaky import (
    FLIP_RATE,
    PASSED_ON_RETRY,
    SAME_CODE,
    FlakyOptions,
    Verdict,
    deselect_lines,
    parse_threshold,
)
from anvild.identity import key_from_node_id
from anvild.provenance import Provenance
from anvild.records import ParsedRun, TestResult
from anvild.status import ERROR, FAILED, PASSED, RERUN, SKIPPED, XFAILED
from anvild.store import queries
from anvild.store.database import forget, open_database
from anvild.store.owner import Owner
from anvild.store.write import Submission, store_run

ROOT = "/p"
P, F, E, S, X, R = PASSED, FAILED, ERROR, SKIPPED, XFAILED, RERUN


class History:
    """Builds a history run by run; each run gets its own commit unless told otherwise."""

    def __init__(
        self, owner: Owner, url: str, root: str = ROOT, start: float = 1_700_000_000.0
    ) -> None:
        self.owner, self.url, self.root, self.start, self.count = owner, url, root, start, 0

    def run(
        self,
        outcomes: dict[str, str | list[str]],
        *,
        commit: str | None = "auto",
        dirty: bool | None = False,
        diff: str | None = None,
        space: str = "local",
        at: float | None = None,
        durations: dict[str, float] | None = None,
        messages: dict[str, str] | None = None,
        tracebacks: dict[str, str] | None = None,
        ci_url: str | None = None,
    ) -> None:
        self.count += 1
        results = []
        for node, status in outcomes.items():
            attempts = status if isinstance(status, list) else [status]
            duration = (durations or {}).get(node, 0.1)
            for attempt, one in enumerate(attempts):
                failing = one in (F, E, R)
                message = (messages or {}).get(node, "boom") if failing else None
                trace = (tracebacks or {}).get(node) if failing else None
                results.append(
                    TestResult(node, key_from_node_id(node), one, duration, attempt, message, trace)
                )
        at = self.start + self.count * 60 if at is None else at
        run = ParsedRun("pytest-json-report", tuple(results), at, at + 1, 1.0)
        prov = Provenance(
            f"c{self.count}" if commit == "auto" else commit,
            "main",
            dirty,
            diff,
            "host",
            "Linux",
            "3.11",
            "ci" if space == "ci" else "terminal",
        )
        meta = {"ci_url": ci_url} if ci_url else {}
        sub = Submission(run, f"sha{self.count}", self.root, "p", prov, space=space, metadata=meta)
        self.owner.run(lambda db: store_run(db, sub))

    def series(self, node: str, statuses: str, **kwargs: object) -> None:
        """One run per letter: P passed, F failed, E error, S skipped, X xfailed."""
        names = {"P": P, "F": F, "E": E, "S": S, "X": X}
        for letter in statuses:
            self.run({node: names[letter]}, **kwargs)  # type: ignore[arg-type]

    def flaky(self, space: str = "all", **options: float) -> dict[str, Verdict]:
        target = Target(Path(self.root), self.url)
        # broken ones too: these tests read every verdict
        found = api.flaky_tests(target, space, FlakyOptions(**options), broken=True)  # type: ignore[arg-type]
        return {verdict.entity_id: verdict for verdict in found}


@pytest.fixture
def history(tmp_path: Path) -> Iterator[History]:
    url = str(tmp_path / ".anvil" / "history.db")
    with Owner(url, tmp_path / "state").open() as owner:
        yield History(owner, url)
    forget(url)


def test_alternating_outcomes_flag_the_flip_rate(history: History) -> None:
    history.series("t.py::flip", "PFPFPF")
    history.series("t.py::stable", "PPPPPP")
    found = history.flaky()
    assert set(found) == {"t.py::flip"}
    row = found["t.py::flip"].as_row()
    assert row["reasons"] == [FLIP_RATE] and row["broken"] is False
    assert (row["runs"], row["passed"], row["failed"], row["flips"]) == (6, 3, 3, 5)
    assert row["flip_rate"] == 1.0 and row["failure_rate"] == 0.5
    assert row["space"] == "all"


def test_flip_rate_threshold_boundary(history: History) -> None:
    # 21 runs, two flips: 2 / (21 - 1) = exactly 10 % (one flip for good is a regression)
    history.series("t.py::once", "PPPPPPPPPPFPPPPPPPPPP")
    assert history.flaky(threshold=10)["t.py::once"].reasons == (FLIP_RATE,)
    assert "t.py::once" not in history.flaky(threshold=10.01)
    assert history.flaky(threshold=parse_threshold("10%"))["t.py::once"].flip_rate == 0.1


def test_min_runs_boundary(history: History) -> None:
    history.series("t.py::short", "PFPF")  # four runs, every one a flip
    assert "t.py::short" not in history.flaky(min_runs=5)
    assert history.flaky(min_runs=4)["t.py::short"].reasons == (FLIP_RATE,)


def test_same_commit_and_clean_tree_pass_and_fail(history: History) -> None:
    history.run({"t.py::a": P, "t.py::b": P}, commit="abc")
    history.run({"t.py::a": F, "t.py::b": P}, commit="abc")
    found = history.flaky()
    assert set(found) == {"t.py::a"}
    assert found["t.py::a"].reasons == (SAME_CODE,)  # two runs: too few for the flip rate


def test_dirty_tree_edits_with_different_diffs_do_not_count(history: History) -> None:
    # A developer editing: the same commit, four different uncommitted diffs.
    for n, status in enumerate([F, P, F, P]):
        history.run({"t.py::edited": status}, commit="abc", dirty=True, diff=f"diff{n}")
    # Dirty without a diff hash is unknown code: no evidence either.
    history.run({"t.py::unknown": F}, commit="abc", dirty=True, diff=None)
    history.run({"t.py::unknown": P}, commit="abc", dirty=True, diff=None)
    # No commit at all (not a git checkout): no evidence.
    history.run({"t.py::nogit": F}, commit=None)
    history.run({"t.py::nogit": P}, commit=None)
    assert history.flaky() == {}


def test_the_same_dirty_diff_with_both_outcomes_counts(history: History) -> None:
    history.run({"t.py::a": P}, commit="abc", dirty=True, diff="d1")
    history.run({"t.py::a": P}, commit="abc", dirty=True, diff="d2")
    history.run({"t.py::a": F}, commit="abc", dirty=True, diff="d1")
    assert history.flaky()["t.py::a"].reasons == (SAME_CODE,)


def test_a_dirty_run_is_not_the_clean_commit(history: History) -> None:
    history.run({"t.py::a": P}, commit="abc", dirty=False)
    history.run({"t.py::a": F}, commit="abc", dirty=True, diff="d1")
    assert history.flaky() == {}


def test_ci_runs_without_a_tree_state_count_as_the_clean_commit(history: History) -> None:
    history.run({"t.py::a": P}, commit="abc", dirty=None, space="ci")
    history.run({"t.py::a": F}, commit="abc", dirty=None, space="ci")
    history.run({"t.py::b": P}, commit="abc", dirty=None)  # local: unknown state, no evidence
    history.run({"t.py::b": F}, commit="abc", dirty=None)
    found = history.flaky()
    assert set(found) == {"t.py::a"} and found["t.py::a"].reasons == (SAME_CODE,)


def test_passed_on_retry(history: History) -> None:
    history.run({"t.py::retried": [R, P], "t.py::gave_up": [R, R, F]})
    found = history.flaky()
    assert found["t.py::retried"].reasons == (PASSED_ON_RETRY,)
    assert found["t.py::retried"].passed_on_retry == 1
    assert (found["t.py::retried"].runs, found["t.py::retried"].passed) == (1, 1)
    # reruns that never passed: a failure, and with nothing else, broken
    assert found["t.py::gave_up"].broken and not found["t.py::gave_up"].reasons


def test_broken_is_reported_apart_and_never_flaky(history: History) -> None:
    history.series("t.py::broken", "FFEFFF")
    history.series("t.py::flip", "PFPFPF")
    found = history.flaky()
    broken = found["t.py::broken"]
    assert broken.broken and not broken.flaky
    row = broken.as_row()
    assert row["broken"] is True and row["reasons"] == []
    assert (row["runs"], row["failed"], row["failure_rate"]) == (6, 6, 1.0)
    assert list(found) == ["t.py::flip", "t.py::broken"]  # flaky first, broken after
    # the lines name the tests listed: broken ones only when asked for (`--broken`)
    assert deselect_lines(v for v in found.values() if v.flaky) == ["--deselect t.py::flip"]
    assert deselect_lines(found.values()) == ["--deselect t.py::broken", "--deselect t.py::flip"]


def test_skips_never_count(history: History) -> None:
    # Skipped and xfailed runs are not runs: P F P F P F with skips in between.
    history.series("t.py::a", "PSFXPSFSPXF")
    history.series("t.py::skips", "SSXSS")
    history.series("t.py::broken", "FSFXF")
    found = history.flaky()
    assert (found["t.py::a"].runs, found["t.py::a"].flips) == (6, 5)
    assert "t.py::skips" not in found
    assert found["t.py::broken"].broken and found["t.py::broken"].runs == 3


def test_old_flakiness_outside_the_window_does_not_count(history: History) -> None:
    history.run({"t.py::a": P}, commit="old")
    history.run({"t.py::a": F}, commit="old")  # same code, different outcome: long ago
    history.series("t.py::a", "PFPFPF")
    history.series("t.py::a", "P" * 10)
    assert "t.py::a" not in history.flaky(window=10)
    assert history.flaky(window=16)["t.py::a"].reasons == (FLIP_RATE,)
    both = history.flaky(window=18)["t.py::a"]
    assert both.reasons == (SAME_CODE, FLIP_RATE) and both.runs == 18


def test_window_counts_executed_runs_not_skips(history: History) -> None:
    history.series("t.py::a", "FP")  # a flip: inside a window of 3 executed runs
    history.series("t.py::a", "SSSSF")
    found = history.flaky(window=3, min_runs=3, threshold=50)
    assert found["t.py::a"].runs == 3 and found["t.py::a"].flips == 2


def test_spaces_apart_and_merged(history: History) -> None:
    history.run({"t.py::a": P}, commit="abc")
    history.run({"t.py::a": F}, commit="abc")
    history.run({"t.py::a": [R, P]}, space="ci")
    history.run({"t.py::a": P}, space="ci")
    assert history.flaky("local")["t.py::a"].reasons == (SAME_CODE,)
    assert history.flaky("ci")["t.py::a"].reasons == (PASSED_ON_RETRY,)
    merged = history.flaky("all")["t.py::a"].as_row()
    assert merged["space"] == "all"
    assert merged["reasons"] == [SAME_CODE, PASSED_ON_RETRY]
    assert (merged["runs"], merged["passed"], merged["failed"], merged["flips"]) == (4, 3, 1, 1)
    assert merged["flip_rate"] == 0.5  # 1 flip over (2 - 1) + (2 - 1) possible transitions


def test_broken_locally_but_passing_in_ci_is_not_broken_when_merged(history: History) -> None:
    history.series("t.py::a", "FFF")
    history.series("t.py::a", "PPP", space="ci")
    assert history.flaky("local")["t.py::a"].broken
    assert "t.py::a" not in history.flaky("ci")
    assert "t.py::a" not in history.flaky("all")


def test_a_regression_backfilled_out_of_order_is_not_flaky(history: History) -> None:
    # by date: P P F F (a regression); stored in the order 3, 1, 4, 2
    by_day = {1: P, 2: P, 3: F, 4: F}
    for day in (3, 1, 4, 2):
        history.run({"t.py::r": by_day[day]}, at=history.start + day * 86_400)
    # stored order would say 3 flips out of 3 (100 %); by date it is 1 of 3
    assert "t.py::r" not in history.flaky("local", min_runs=4, threshold=50)
    # one flip for good is a regression, whatever the threshold
    assert "t.py::r" not in history.flaky("local", min_runs=2, threshold=1)
    # the window is the newest runs by start time: the last two failed, so it is broken
    assert history.flaky("local", window=2)["t.py::r"].broken


def test_the_window_is_the_newest_runs_by_start_time(history: History) -> None:
    # runs by date: F F P F P F (flaky), then P P P stored last but dated earliest
    for n, status in enumerate("FFPFPF"):
        history.series("t.py::w", status, at=history.start + 1000 + n)
    for n in range(3):
        history.series("t.py::w", "P", at=history.start + n)
    newest = history.flaky("local", window=6)["t.py::w"]
    assert (newest.runs, newest.passed, newest.flips) == (6, 2, 4)
    assert FLIP_RATE in newest.reasons


def test_only_tests_that_ever_failed_are_read_from_history(
    history: History, monkeypatch: pytest.MonkeyPatch
) -> None:
    for _ in range(6):
        history.run({f"t.py::ok{n}": P for n in range(20)} | {"t.py::bad": F})
    read = []
    real = queries.window_attempts

    def spy(project: int, test: int, space: str, window: int, *rest: object) -> list:
        rows = real(project, test, space, window, *rest)
        read.append(len(rows))
        return rows

    monkeypatch.setattr(queries, "window_attempts", spy)
    assert list(history.flaky(window=4)) == ["t.py::bad"]
    assert read == [4]  # one test, its four newest runs


def test_a_window_of_a_test_that_never_repeats_is_read_to_one_row_past_it(
    history: History, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A candidate whose statistics show no rerun and no skip has one executed attempt in each
    run: its window is read in one query of window + 1 rows. One that was rerun or skipped
    gets room for its repeats, and its window is the same as read from its start."""
    for n in range(30):
        history.run({"t.py::plain": [P, F][n % 2], "t.py::rerun": [R, P] if n % 3 else F,
                     "t.py::skips": S if n % 4 == 0 else [P, F][n % 2]})  # fmt: skip
    history.run({"t.py::plain": P, "t.py::rerun": P, "t.py::skips": P})
    open_database(history.url)
    project = queries.project_id(ROOT)
    assert project is not None
    repeats = {r["entity_id"]: r["repeats"] for r in queries.flaky_candidates(project, ("local",))}
    assert repeats == {"t.py::plain": 0, "t.py::rerun": 20, "t.py::skips": 8}
    fetched: list[int] = []
    real = queries.database.obj.execute_sql

    def spy(sql: str, params: object = None, *rest: object, **named: object) -> object:
        cursor = real(sql, params, *rest, **named)
        if "LIMIT" in sql and "OFFSET" not in sql:
            rows = cursor.fetchall()
            fetched.append(len(rows))
            return _Rows(rows)
        return cursor

    monkeypatch.setattr(queries.database.obj, "execute_sql", spy)
    verdicts = history.flaky(window=10)
    assert fetched[0] == 11 and len(fetched) == 3, fetched  # plain first: 10 runs and one row
    assert fetched[1] > 11 and fetched[2] > 11, fetched  # the others: room for their repeats
    monkeypatch.undo()
    real_window = queries.window_attempts
    monkeypatch.setattr(  # every test given room, as before the statistics were asked
        queries, "window_attempts", lambda *args: real_window(*args[:5])
    )
    assert history.flaky(window=10) == verdicts
    assert [v.runs for v in verdicts.values()] == [10, 10, 10]


class _Rows:
    def __init__(self, rows: list[tuple[object, ...]]) -> None:
        self.rows = rows

    def fetchall(self) -> list[tuple[object, ...]]:
        return self.rows


@pytest.mark.parametrize(
    ("text", "value"), [("10", 10.0), ("10%", 10.0), (" 12.5 % ", 12.5), ("0", 0.0)]
)
def test_threshold_accepts_a_percentage(text: str, value: float) -> None:
    assert parse_threshold(text) == value


@pytest.mark.parametrize("text", ["abc", "150", "-1", "10%%", ""])
def test_threshold_refuses_what_is_not_a_percentage(text: str) -> None:
    with pytest.raises(UsageError, match="--threshold"):
        parse_threshold(text)


def anvild(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "anvild", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        env=os.environ.copy(),
    )


@pytest.fixture
def cli_history(tmp_path: Path) -> Iterator[tuple[Path, History]]:
    """A history stored for the project at tmp_path/proj, read by the real command."""
    project = tmp_path / "proj"
    project.mkdir()
    url = str(project / ".anvil" / "history.db")
    with Owner(url, tmp_path / "state").open() as owner:
        yield project, History(owner, url, str(project))
    forget(url)


def test_command_json_table_and_deselect(cli_history: tuple[Path, History]) -> None:
    project, history = cli_history
    history.series("tests/test_a.py::test_flip[1]", "PFPFPF")
    history.series("tests/test_a.py::test_broken", "FFFFFF")
    history.series("tests/test_a.py::test_ok", "PPPPPP")

    proc = anvild("stats", "flaky", "--format", "json", "--threshold", "10%", cwd=project)
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert [row["entity_id"] for row in rows] == ["tests/test_a.py::test_flip[1]"], "flaky only"
    assert rows[0]["broken"] is False

    proc = anvild("stats", "flaky", "--format", "json", "--broken", cwd=project)
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert [row["entity_id"] for row in rows] == [
        "tests/test_a.py::test_flip[1]",
        "tests/test_a.py::test_broken",
    ]
    assert set(rows[0]) >= {
        "entity_id",
        "space",
        "runs",
        "passed",
        "failed",
        "flips",
        "flip_rate",
        "failure_rate",
        "reasons",
        "broken",
    }
    assert rows[0]["reasons"] == ["flip_rate"] and rows[1]["broken"] is True

    proc = anvild("stats", "flaky", "--format", "deselect", cwd=project)
    assert proc.stdout == "--deselect 'tests/test_a.py::test_flip[1]'\n"
    proc = anvild("stats", "flaky", "--format", "deselect", "--broken", cwd=project)
    assert proc.stdout.splitlines() == [
        "--deselect tests/test_a.py::test_broken",
        "--deselect 'tests/test_a.py::test_flip[1]'",
    ]

    proc = anvild("stats", "flaky", "--space", "local", cwd=project)
    assert proc.returncode == 0, proc.stderr
    assert "Flaky tests" in proc.stdout and "flip rate" in proc.stdout
    assert "Broken tests" not in proc.stdout and "test_broken" not in proc.stdout
    assert "test_ok" not in proc.stdout
    proc = anvild("stats", "flaky", "--space", "local", "--broken", cwd=project)
    assert proc.returncode == 0, proc.stderr
    assert "Flaky tests" in proc.stdout
    assert "Broken tests" in proc.stdout and "test_broken" in proc.stdout

    proc = anvild("stats", "flaky", "--threshold", "lots", cwd=project)
    assert proc.returncode == 2 and "--threshold" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_command_on_an_empty_project(tmp_path: Path) -> None:
    # where no history exists, a query says so in one line and exits 1 (no empty answer)
    for fmt in ("json", "table"):
        proc = anvild("stats", "flaky", "--format", fmt, cwd=tmp_path)
        assert proc.returncode == 1 and proc.stdout == "", proc.stdout
        assert proc.stderr.startswith("anvild: error: no history here"), proc.stderr


@pytest.mark.parametrize("shape", ["one attempt", "reruns", "skipped runs between"])
def test_a_window_read_newest_first_is_the_window_found_from_its_start(
    history: History, shape: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A test's window is read newest first up to a bound where that holds it, else from the
    window's start: both ways give the same attempts, with reruns (three rows a run) and with
    runs where the test was skipped between the ones it ran in."""
    import random

    from anvild.store import queries
    from anvild.store.database import open_database

    rng = random.Random(shape)
    for n in range(40):
        if shape == "reruns":
            status: str | list[str] = [R, R, rng.choice([P, F])]
        elif shape == "skipped runs between" and n % 3:
            status = S
        else:
            status = rng.choice([P, F])
        history.run({"t.py::w": status, "t.py::other": P})
    open_database(history.url)
    project = queries.project_id(ROOT)
    assert project is not None
    test = next(t for t in queries.flaky_candidates(project, ("local",)))["test_id"]
    for window in (1, 5, 12, 100):
        fast = queries.window_attempts(project, test, "local", window)
        # told it never repeats (statistics can say so): the bound is one row past the window;
        # a run with several attempts or a skip makes it fall back, never cut the window short
        tight = queries.window_attempts(project, test, "local", window, repeats=False)
        with monkeypatch.context() as patched:  # the bound taken away: the start query decides
            patched.setattr(queries, "_newest_window", lambda *args, **kwargs: None)
            slow = queries.window_attempts(project, test, "local", window)
        assert fast == slow == tight, window
        executed = {row[0] for row in fast if row[2] not in (S, X)}
        assert len(executed) == min(window, 40 if shape != "skipped runs between" else 14)


def test_the_window_reads_walk_the_runs_and_probe_each_not_the_tests_whole_history(
    tmp_path: Path,
) -> None:
    """`stats flaky` reads each candidate's window by walking the project's runs newest first
    and probing the test's results of each: SQLite's plan for each window query starts at the
    runs' index and sorts nothing (a plan over the test's whole history, sorted, took 13 times
    as long on 10 M results)."""
    from anvild.store import order, queries
    from anvild.store.database import forget, open_database

    url = str(tmp_path / "history.db")
    db = open_database(url)
    try:
        p = db.param
        for sql, params in (
            (queries._NEWEST_SQL.format(p=p, recent="", newest=order.NEWEST_FIRST), 4),
            (queries._WINDOW_START_SQL.format(p=p, recent="", newest=order.NEWEST_FIRST), 4),
            (queries._WINDOW_SQL.format(p=p, recent="", oldest=order.OLDEST_FIRST), 3),
        ):
            plan = [row[3] for row in db.execute_sql("EXPLAIN QUERY PLAN " + sql, (1,) * params)]
            assert plan[0].startswith("SEARCH e USING COVERING INDEX"), plan
            assert not any("TEMP B-TREE" in step for step in plan), plan
            assert any(step.startswith("SEARCH h") and "execution_id=?" in step for step in plan)
    finally:
        forget(url)
