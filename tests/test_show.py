"""`anvild show` (a test's card, a run's card) and `anvild stats slower`, on histories with
known answers and on real pytest runs through the daemon."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from anvild import api, cards, slower
from anvild.api import Target
from anvild.errors import Ambiguous, UsageError
from anvild.identity import key_from_node_id
from anvild.provenance import Provenance
from anvild.records import ParsedRun, TestResult
from anvild.store.database import forget
from anvild.store.owner import Owner
from anvild.store.write import Submission, store_run
from tests.conftest import anvild, executions, run_pytest, wait_for, write_project

T = "tests/test_app.py::"
FAILING, FLAKY, SLOW, NEW, STEADY = (
    T + "test_failing",
    T + "test_flaky",
    T + "test_slow",
    T + "test_new",
    T + "test_steady",
)
TRACEBACK = "def test_failing():\n>       assert total() == 3\nE       assert 4 == 3\n"
START = 1_709_200_000.0  # runs a minute apart from here


class Builder:
    """Stores runs one by one, each with its own messages, tracebacks and provenance."""

    def __init__(self, owner: Owner, url: str, root: str) -> None:
        self.owner, self.url, self.root, self.count = owner, url, root, 0

    def run(
        self,
        outcomes: dict[str, str | list[str]],
        *,
        space: str = "local",
        commit: str | None = None,
        durations: dict[str, float] | None = None,
        messages: dict[str, str] | None = None,
        ci_url: str | None = None,
    ) -> str:
        self.count += 1
        results = []
        for node, status in outcomes.items():
            for attempt, one in enumerate(status if isinstance(status, list) else [status]):
                failing = one in ("FAILED", "ERROR", "RERUN")
                message = (messages or {}).get(node, "AssertionError: boom") if failing else None
                results.append(
                    TestResult(
                        node,
                        key_from_node_id(node),
                        one,
                        (durations or {}).get(node, 0.01),
                        attempt,
                        message,
                        TRACEBACK if failing and node == FAILING else None,
                    )
                )
        at = START + self.count * 60
        run = ParsedRun("pytest-json-report", tuple(results), at, at + 2, 2.0, exit_code=1)
        prov = Provenance(
            commit or f"c{self.count:040d}",
            "main",
            False,
            None,
            "devbox",
            "Linux",
            "3.12.1",
            "ci" if space == "ci" else "terminal",
        )
        meta = {"ci_url": ci_url} if ci_url else {}
        sub = Submission(
            run, f"sha{self.count}", self.root, "app", prov, space=space, metadata=meta
        )
        return self.owner.run(lambda db: store_run(db, sub)).execution_id


@pytest.fixture
def built(tmp_path: Path) -> Iterator[tuple[Target, Builder]]:
    root = (tmp_path / "app").resolve()
    root.mkdir()
    url = str(root / ".anvil" / "history.db")
    with Owner(url, tmp_path / "state").open() as owner:
        yield Target(root, url), Builder(owner, url, str(root))
    forget(url)


def build_story(b: Builder) -> list[str]:
    """Twelve local runs: test_failing passes 8 times then fails 4 times with one cause and
    changing numbers; test_flaky alternates on one commit; test_slow goes from 50 ms to
    400 ms in the newest 5 runs; test_new appears in the last run; test_gone leaves before it;
    the last run is also the one whose CI link is known."""
    ids = []
    for n in range(12):
        last = n == 11
        outcomes: dict[str, str | list[str]] = {
            STEADY: "PASSED",
            FAILING: "FAILED" if n >= 8 else "PASSED",
            FLAKY: "FAILED" if n % 2 else ["RERUN", "PASSED"] if n == 4 else "PASSED",
            SLOW: "PASSED",
        }
        if last:
            outcomes[NEW] = "FAILED"
        else:
            outcomes[T + "test_gone"] = "PASSED"
        ids.append(
            b.run(
                outcomes,
                commit="f" * 40 if n >= 8 else None,
                durations={SLOW: 0.4 if n >= 7 else 0.05},
                messages={FAILING: f"AssertionError: assert {n} == 3 at 0x7f{n:04x}"},
                ci_url="https://ci.example/run/12" if last else None,
            )
        )
    return ids


def test_a_failing_test_card(built: tuple[Target, Builder]) -> None:
    target, b = built
    ids = build_story(b)
    card = api.show(target, FAILING)
    assert card["kind"] == "test" and card["entity_id"] == FAILING
    (local,) = card["statistics"]
    assert (local["space"], local["total_runs"], local["passed"], local["failed"]) == (
        "local",
        12,
        8,
        4,
    )
    assert local["failure_rate"] == pytest.approx(4 / 12) and local["flips"] == 1
    results = card["results"]
    assert len(results) == 12 and results[0]["execution_id"] == ids[-1]  # newest first
    assert [r["status"] for r in results[:5]] == ["FAILED"] * 4 + ["PASSED"]
    assert results[0]["message"] == "AssertionError: assert 11 == 3 at 0x7f000b"
    assert results[0]["git_commit"] == "f" * 40 and results[0]["origin"] == "terminal"
    assert results[0]["ci_url"] == "https://ci.example/run/12"
    assert card["first_failure"]["execution_id"] == ids[8]
    assert card["last_failure"]["execution_id"] == ids[11]
    assert card["last_failure"]["message"].startswith("AssertionError: assert 11 == 3")
    assert card["traceback"] == TRACEBACK
    assert card["flaky"]["flaky"] is False and card["flaky"]["broken"] is False
    (duration,) = card["durations"]
    assert duration["slower"] is False and duration["earlier_runs"] == 7


def test_a_flaky_test_card(built: tuple[Target, Builder]) -> None:
    target, b = built
    build_story(b)
    card = api.show(target, FLAKY)
    assert card["flaky"]["flaky"] is True
    assert card["flaky"]["reasons"] == [
        "same_code_different_outcome",
        "passed_on_retry",
        "flip_rate",
    ]
    assert card["flaky"]["spaces"][0]["space"] == "local"
    rerun = next(r for r in card["results"] if r["reran"])
    assert rerun["status"] == "PASSED" and rerun["attempts"] == 2
    assert card["traceback"] is None  # failures kept their message; no traceback stored


def test_a_slower_test_card_and_stats_slower(built: tuple[Target, Builder]) -> None:
    target, b = built
    build_story(b)
    (duration,) = api.show(target, SLOW)["durations"]
    assert duration == {
        "space": "local",
        "recent_median": pytest.approx(0.4),
        "earlier_median": pytest.approx(0.05),
        "ratio": pytest.approx(8.0),
        "recent_runs": 5,
        "earlier_runs": 7,
        "slower": True,
    }
    (found,) = api.slower_tests(target, "all", 30)
    assert found.entity_id == SLOW and found.space == "local"
    assert found.as_row()["ratio"] == pytest.approx(8.0)
    assert api.slower_tests(target, "ci", 30) == []
    assert api.slower_tests(target, "local", 8) == []  # 3 runs before the newest 5: too few


def test_the_slower_rule_needs_twice_and_100_ms() -> None:
    assert slower.change("t", "local", [0.3] * 5 + [0.1] * 5).slower  # type: ignore[union-attr]
    assert not slower.change("t", "local", [0.19] * 5 + [0.1] * 5).slower  # type: ignore[union-attr]
    assert not slower.change("t", "local", [0.08] * 5 + [0.001] * 5).slower  # type: ignore[union-attr]
    assert slower.change("t", "local", [0.3] * 5 + [0.1] * 4) is None  # too few before
    # one slow run among the newest five is not a regression: medians, not means
    assert not slower.change("t", "local", [9.0] + [0.1] * 9).slower  # type: ignore[union-attr]


def test_a_new_test_card(built: tuple[Target, Builder]) -> None:
    target, b = built
    ids = build_story(b)
    card = api.show(target, "test_new")  # a part of the id is enough
    assert card["entity_id"] == NEW
    assert [r["execution_id"] for r in card["results"]] == [ids[-1]]
    assert card["flaky"] == {
        "flaky": False,
        "broken": True,
        "reasons": [],
        "score": None,
        "first_flake": None,
        "last_flake": None,
        "recovered": False,
        "change": None,
        "since": None,
        "spaces": card["flaky"]["spaces"],
    }
    assert card["first_failure"] == card["last_failure"]
    (duration,) = card["durations"]
    assert duration["earlier_median"] is None and duration["recent_runs"] == 1


def test_a_run_card_says_what_changed(built: tuple[Target, Builder]) -> None:
    target, b = built
    ids = build_story(b)
    card = api.show(target, ids[-1])
    assert card["kind"] == "run" and card["execution_id"] == ids[-1]
    assert card["ci_url"] == "https://ci.example/run/12" and card["git_branch"] == "main"
    assert card["hostname"] == "devbox" and card["python_version"] == "3.12.1"
    assert card["tree_dirty"] is False and card["state"] == "complete"
    assert card["counts"]["failed"] == 3 and card["tests"] == 5
    assert card["previous"]["execution_id"] == ids[-2]
    assert [f["entity_id"] for f in card["failures"]] == [FAILING, FLAKY, NEW]
    assert card["newly_failing"] == [
        {"entity_id": FLAKY, "status": "FAILED", "message": "AssertionError: boom"}
    ]
    assert card["fixed"] == []
    assert card["new_tests"] == [{"entity_id": NEW, "status": "FAILED"}]
    assert card["gone"] == [{"entity_id": T + "test_gone", "previous_status": "PASSED"}]
    before = api.show(target, ids[-2])  # test_flaky passed in run 10 after failing in run 9
    assert [f["entity_id"] for f in before["fixed"]] == [FLAKY]
    assert api.show(target, None)["execution_id"] == ids[-1]  # `show` alone: the newest run
    first = api.show(target, ids[0])
    assert first["previous"] is None and first["newly_failing"] == []


def test_ids_that_match_several_or_none(built: tuple[Target, Builder]) -> None:
    target, b = built
    build_story(b)
    with pytest.raises(Ambiguous) as caught:
        api.show(target, "test_")
    assert f"test {FAILING}" in caught.value.candidates and len(caught.value.candidates) == 6
    assert "give more of the id" in str(caught.value)
    with pytest.raises(UsageError, match="no test or run matches 'nothing'"):
        api.show(target, "nothing")
    # a test's own name is enough, whatever other ids it is a part of
    name = FAILING.rsplit("::", 1)[1]
    assert api.show(target, name)["entity_id"] == FAILING


def test_show_without_history(tmp_path: Path) -> None:
    proc = anvild("--project", str(tmp_path), "show")
    # one line naming where it looked, exit 1, as every query where no history exists
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("anvild: error: no history here: no database at")
    assert len(proc.stderr.splitlines()) == 1


def _cli(target: Target, *args: str) -> Any:
    proc = anvild("--project", str(target.project_root), "--db", target.db_url, *args)
    assert proc.returncode == 0, proc.stderr
    return proc


def test_the_commands_print_cards_and_json(built: tuple[Target, Builder]) -> None:
    target, b = built
    ids = build_story(b)
    text = _cli(target, "show", "test_failing").stdout
    assert FAILING in text and "newest first: FFFF........" in text
    assert "Traceback" in text and "E       assert 4 == 3" in text
    assert "AssertionError: assert 11 == 3 at 0x7f000b" in text
    card = json.loads(_cli(target, "show", FAILING, "--json").stdout)
    assert set(card) == {
        "kind",
        "entity_id",
        "statistics",
        "results",
        "flaky",
        "first_failure",
        "last_failure",
        "traceback",
        "durations",
    }
    assert set(card["results"][0]) == {
        "execution_id",
        "space",
        "started_at",
        "status",
        "duration",
        "attempts",
        "reran",
        "message",
        "git_commit",
        "git_branch",
        "tree_dirty",
        "origin",
        "ci_url",
    }
    text = _cli(target, "show").stdout
    assert f"run {ids[-1]}" in text and "CI: https://ci.example/run/12" in text
    assert "Newly failing (1)" in text and "New tests (1)" in text and "Gone (1)" in text
    run = json.loads(_cli(target, "show", "--format", "json", ids[-1]).stdout)
    assert {"newly_failing", "fixed", "new_tests", "gone", "previous", "failures"} <= set(run)
    assert {"git_commit", "git_branch", "tree_dirty", "origin", "hostname", "ci_url"} <= set(run)
    ambiguous = anvild("--project", str(target.project_root), "--db", target.db_url, "show", "t")
    assert ambiguous.returncode == 2 and "matches" in ambiguous.stderr
    slow = json.loads(_cli(target, "stats", "slower", "--json").stdout)
    assert [row["entity_id"] for row in slow] == [SLOW]
    assert set(slow[0]) == {
        "entity_id",
        "space",
        "recent_median",
        "earlier_median",
        "ratio",
        "recent_runs",
        "earlier_runs",
        "slower",
    }
    table = _cli(target, "stats", "slower").stdout
    assert SLOW in table and "400 ms" in table and "50 ms" in table and "8.0x" in table


def test_show_on_real_pytest_runs_through_the_daemon(daemon: int, project: Path) -> None:
    """A real suite recorded by the daemon: the second run breaks a test, adds one, and
    `show` tells the story of both."""
    report = ("--json-report", "--json-report-file=.pytest_cache/report.json")
    suite = write_project(
        project,
        {
            "tests/test_a.py": """
                def total():
                    return 3

                def test_total():
                    assert total() == 3
            """
        },
    )
    run_pytest(suite, *report)
    wait_for(lambda: len(executions(suite)) == 1, 10, "the first run")
    write_project(
        suite,
        {
            "tests/test_a.py": """
                def total():
                    return 4

                def test_total():
                    assert total() == 3

                def test_added():
                    pass
            """
        },
    )
    run_pytest(suite, *report)
    wait_for(lambda: len(executions(suite)) == 2, 10, "the second run")
    run = json.loads(anvild("show", "--json", cwd=suite).stdout)
    assert [row["entity_id"] for row in run["newly_failing"]] == ["tests/test_a.py::test_total"]
    assert run["newly_failing"][0]["message"].startswith("assert 4 == 3")
    assert run["new_tests"] == [{"entity_id": "tests/test_a.py::test_added", "status": "PASSED"}]
    proc = anvild("show", "test_total", cwd=suite)
    assert proc.returncode == 0, proc.stderr
    assert "newest first: F." in proc.stdout and "assert total() == 3" in proc.stdout
    # two runs: their median, named as one
    assert "(median of 2 runs), too few to compare" in proc.stdout, proc.stdout


def test_a_runs_failures_are_listed_in_the_order_they_ran_each_with_its_start(
    tmp_path: Path,
) -> None:
    """pytest ran test_zeta before test_alpha (as defined, not by name): the card lists them
    so, as pytest's own `-ra` does, and each result's timestamp is when it started."""
    tests = """
        import time

        def test_zeta_fails():
            time.sleep(0.05)
            assert False, "zeta"

        def test_middle_passes():
            pass

        def test_alpha_fails():
            assert False, "alpha"
    """
    root = write_project(tmp_path / "proj", {"tests/test_order.py": tests})
    ran = anvild("pytest", "-q", "-p", "no:randomly", "-ra", cwd=root)
    assert ran.returncode == 1, ran.stdout + ran.stderr
    said = [line.split()[1] for line in ran.stdout.splitlines() if line.startswith("FAILED ")]
    card = json.loads(anvild("show", "--json", cwd=root).stdout)
    assert (
        [f["entity_id"] for f in card["failures"]]
        == said
        == [
            "tests/test_order.py::test_zeta_fails",
            "tests/test_order.py::test_alpha_fails",
        ]
    )
    text = anvild("show", cwd=root).stdout
    assert text.index("test_zeta_fails") < text.index("test_alpha_fails"), text
    starts = {}
    for name in ("test_zeta_fails", "test_middle_passes", "test_alpha_fails"):
        [row] = json.loads(
            anvild("history", f"tests/test_order.py::{name}", "--json", cwd=root).stdout
        )
        starts[name] = datetime.fromisoformat(row["timestamp"])
    run_start = datetime.fromisoformat(card["started_at"])
    assert run_start <= starts["test_zeta_fails"] < starts["test_middle_passes"]
    # zeta slept 50 ms before middle started
    gap = (starts["test_middle_passes"] - starts["test_zeta_fails"]).total_seconds()
    assert 0.049 <= gap < 5, gap  # shown to the millisecond
    # shown to the millisecond: a test that passes at once may start in the same one
    assert starts["test_middle_passes"] <= starts["test_alpha_fails"]


@pytest.mark.parametrize(
    ("args", "chosen"),
    [
        ("", False),
        ("-q -p no:randomly -n 2 --reruns 1", False),
        ("--junitxml junit.xml -rA --tb=short", False),
        ("tests/test_a.py", True),
        ("tests/test_a.py::test_one", True),
        ("-q -k models", True),
        ("-m 'not slow'", True),
        ("--lf", True),
        ("-x", True),
        ("--deselect=tests/test_a.py::test_one", True),
    ],
)
def test_which_sessions_ran_a_selection_of_the_suite(args: str, chosen: bool) -> None:
    assert cards.selection(args) is chosen


def test_the_paths_a_config_adds_are_the_suite_its_options_may_select() -> None:
    assert not cards.selection("--strict-markers -p no:cacheprovider tests", added=True)
    assert not cards.selection("--maxfail=2 -rf -x", added=True)  # pytest's docs' own addopts
    assert cards.selection("-ra -m 'not slow' tests", added=True)


def test_a_selection_leaves_the_other_tests_not_run_and_a_full_run_after_it_knows_them(
    tmp_path: Path,
) -> None:
    """`pytest -k one` after a full run: the suite's other tests are not gone, only not run;
    the full run after it calls none of them new, and a test deleted since is gone."""
    tests = "def test_one():\n    pass\n\ndef test_two():\n    pass\n"
    root = write_project(
        tmp_path / "proj",
        {"tests/test_a.py": tests, "tests/test_b.py": "def test_three():\n    pass\n"},
    )
    assert anvild("pytest", "-q", "-p", "no:randomly", cwd=root).returncode == 0
    assert anvild("pytest", "-q", "-p", "no:randomly", "-k", "one", cwd=root).returncode == 0
    card = json.loads(anvild("show", "--json", cwd=root).stdout)
    assert (card["gone"], card["not_run"], card["new_tests"]) == ([], 2, [])
    assert "Not run this time (2): this run was a selection" in anvild("show", cwd=root).stdout
    (root / "tests" / "test_b.py").unlink()
    assert anvild("pytest", "-q", "-p", "no:randomly", cwd=root).returncode == 0
    card = json.loads(anvild("show", "--json", cwd=root).stdout)
    assert card["new_tests"] == []  # test_two ran before the selection
    assert card["not_run"] == 0
    # told against the full run before the selection
    assert card["gone"] == [
        {"entity_id": "tests/test_b.py::test_three", "previous_status": "PASSED"}
    ]


DESELECTING = """
    def pytest_collection_modifyitems(config, items):
        kept = [item for item in items if item.name == "test_one"]
        config.hook.pytest_deselected(items=[item for item in items if item not in kept])
        items[:] = kept
"""
SELECTED_ELSEWHERE = {
    # how a session ran part of the suite with no selecting argument of its own: (files written
    # into the project after its full run, the environment, the directory it starts in)
    "-k in [tool.pytest] addopts": (
        {"pyproject.toml": '[tool.pytest]\naddopts = ["-k", "one"]\n'},
        {},
        ".",
    ),
    "-k in PYTEST_ADDOPTS": ({}, {"PYTEST_ADDOPTS": "-k one"}, "."),
    "started in a subdirectory": ({}, {}, "tests/a"),
    "a conftest deselects": ({"conftest.py": DESELECTING}, {}, "."),
}


@pytest.mark.parametrize("how", list(SELECTED_ELSEWHERE))
def test_a_selection_made_by_the_config_or_the_directory_leaves_the_rest_not_run(
    tmp_path: Path, how: str
) -> None:
    """pytest 9's `[tool.pytest]` addopts, PYTEST_ADDOPTS, `cd tests/a && pytest` or a
    conftest's deselection: the session ran part of the suite, as `pytest -k one` does; the
    others are not run, not gone."""
    files, env, where = SELECTED_ELSEWHERE[how]
    root = write_project(
        tmp_path / "proj",
        {
            "pyproject.toml": "[tool.pytest]\n",
            "tests/a/test_a.py": "def test_one():\n    pass\n",
            "tests/b/test_b.py": "def test_two():\n    pass\n",
        },
    )
    assert anvild("pytest", "-q", "-p", "no:randomly", cwd=root).returncode == 0
    write_project(root, files)
    ran = anvild("pytest", "-q", "-p", "no:randomly", cwd=root / where, env=env)
    assert ran.returncode == 0 and "1 passed" in ran.stdout, ran.stdout + ran.stderr
    card = json.loads(anvild("show", "--json", cwd=root).stdout)
    assert (card["tests"], card["gone"], card["not_run"]) == (1, [], 1)


def test_a_session_started_in_a_subdirectory_without_a_config_names_its_tests_as_before(
    tmp_path: Path,
) -> None:
    """No pytest config file: `cd tests && pytest` makes tests/ pytest's rootdir, and pytest
    names `tests/test_a.py::test_one` `test_a.py::test_one`. It is the same test: its history
    goes on, nothing is new, and the tests outside tests/ are not run, not gone."""
    root = write_project(
        tmp_path / "proj",
        {
            "tests/test_a.py": "def test_one():\n    pass\n\ndef test_two():\n    assert 0\n",
            "docs/test_doc.py": "def test_example():\n    pass\n",
        },
    )
    assert anvild("pytest", "-q", "-p", "no:randomly", cwd=root).returncode == 1
    ran = anvild("pytest", "-q", "-p", "no:randomly", "-rA", cwd=root / "tests")
    assert "PASSED test_a.py::test_one" in ran.stdout, ran.stdout + ran.stderr  # pytest's name
    card = json.loads(anvild("show", "--json", cwd=root).stdout)
    # the docs' test was not run this time: tests/ is a part of the suite
    assert (card["new_tests"], card["gone"], card["not_run"], card["tests"]) == ([], [], 1, 2)
    assert [f["entity_id"] for f in card["failures"]] == ["tests/test_a.py::test_two"]
    results = json.loads(anvild("history", "tests/test_a.py::test_one", "--json", cwd=root).stdout)
    assert [r["status"] for r in results] == ["PASSED", "PASSED"]


def test_a_run_from_the_project_root_or_another_checkout_keeps_its_names(tmp_path: Path) -> None:
    from anvild.ingest import from_project_root

    result = TestResult("test_a.py::test_one", key_from_node_id("test_a.py::test_one"), "PASSED")
    run = ParsedRun("anvild", (result,), root=str(tmp_path / "proj" / "tests"))
    [moved] = from_project_root(run, tmp_path / "proj").results
    assert (moved.node_id, moved.key) == (
        "tests/test_a.py::test_one",
        key_from_node_id("tests/test_a.py::test_one"),
    )
    for root in (tmp_path / "proj", tmp_path / "ci-runner" / "proj" / "tests"):
        kept = ParsedRun("anvild", (result,), root=str(root))
        assert from_project_root(kept, tmp_path / "proj").results == (result,)


def test_a_test_that_passed_only_on_rerun_is_not_said_never_to_have_failed(tmp_path: Path) -> None:
    """pytest-rerunfailures: the test's first attempt failed, its rerun passed. Its card says
    so, not `never failed`."""
    flaky = """
        from pathlib import Path

        def test_flaky():
            mark = Path(__file__).with_suffix(".ran")
            first = not mark.exists()
            mark.write_text("x")
            assert not first
    """
    root = write_project(tmp_path / "proj", {"tests/test_f.py": flaky})
    ran = anvild("pytest", "-q", "-p", "no:randomly", "--reruns", "1", cwd=root)
    assert ran.returncode == 0 and "1 passed, 1 rerun" in ran.stdout, ran.stdout + ran.stderr
    card = anvild("show", "test_flaky", cwd=root).stdout
    assert "never failed" not in card
    assert "an attempt failed and passed on rerun in 1 run of the newest 1" in card, card
