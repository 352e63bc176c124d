"""The record is the truth: each pytest session read as pytest counted it, by every path.

Real pytest sessions (pytest 9's subtests, pytest-rerunfailures, module-level skips, a failing
teardown, Ctrl-C, an internal error) are read from the session record anvild's plugin writes,
from a pytest-json-report document and from a pytest-reportlog file; each must give what
pytest's own summary says, test for test. One session writing several reports is one run.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from anvild import config, projects, settings
from anvild.parsers.detect import parse_report
from anvild.records import ParsedRun
from anvild.status import ERROR, FAILED, PASSED, RERUN, SKIPPED, XFAILED
from anvild_pytest.record import RECORD_DIR
from tests.conftest import anvild, executions, wait_for, write_project

CASES = {
    "pytest.ini": "[pytest]\n",
    "tests/__init__.py": "",
    "tests/test_cases.py": """
        import os
        from pathlib import Path

        import pytest

        def test_passes():
            pass

        def test_fails():
            assert 1 == 2, "one is not two"

        @pytest.fixture
        def breaks_on_teardown():
            yield
            raise RuntimeError("teardown broke")

        def test_fails_then_teardown_errors(breaks_on_teardown):
            assert False, "call broke first"

        @pytest.fixture
        def breaks_on_setup():
            raise RuntimeError("setup broke")

        def test_setup_and_teardown_error(breaks_on_teardown, breaks_on_setup):
            pass

        @pytest.mark.flaky(reruns=1)  # pytest-rerunfailures
        def test_flaky():
            marker = Path(os.environ["FLAKY_MARKER"])
            if not marker.exists():
                marker.write_text("failed once")
                assert False, "first attempt fails"

        def test_skipped():
            pytest.skip("not here (it's CI)")

        @pytest.mark.xfail(reason="known")
        def test_xfails():
            assert False
    """,
    "tests/test_subtests.py": """
        import unittest

        class Numbers(unittest.TestCase):
            def test_one_subtest_fails(self):
                for i in range(3):
                    with self.subTest(i=i):
                        self.assertNotEqual(i, 1, "i is one")

            def test_all_subtests_pass(self):
                for i in range(3):
                    with self.subTest(i=i):
                        pass

        def test_fixture_subtest_fails(subtests):
            for i in range(2):
                with subtests.test(msg="each", i=i):
                    assert i == 0, "only zero passes"

        def test_subtest_then_its_body_fail(subtests):
            with subtests.test(msg="first"):
                assert False, "a subtest broke"
            assert False, "the body broke too"

        import pytest

        @pytest.fixture
        def teardown_breaks():
            yield
            raise RuntimeError("its teardown broke")

        def test_subtest_then_teardown_fail(subtests, teardown_breaks):
            with subtests.test(msg="one"):
                assert False, "a subtest failed"
    """,
    "tests/test_module_skip.py": """
        import pytest

        pytest.importorskip("a_module_nobody_has")

        def test_never_collected():
            pass
    """,
}

EXPECTED = {
    "tests/test_cases.py::test_passes": [PASSED],
    "tests/test_cases.py::test_fails": [FAILED],
    "tests/test_cases.py::test_fails_then_teardown_errors": [ERROR],
    "tests/test_cases.py::test_setup_and_teardown_error": [ERROR],
    "tests/test_cases.py::test_flaky": [RERUN, PASSED],
    "tests/test_cases.py::test_skipped": [SKIPPED],
    "tests/test_cases.py::test_xfails": [XFAILED],
    "tests/test_subtests.py::Numbers::test_one_subtest_fails": [FAILED],
    "tests/test_subtests.py::Numbers::test_all_subtests_pass": [PASSED],
    "tests/test_subtests.py::test_fixture_subtest_fails": [FAILED],
    "tests/test_subtests.py::test_subtest_then_its_body_fail": [FAILED],
    "tests/test_subtests.py::test_subtest_then_teardown_fail": [ERROR],
    "tests/test_module_skip.py": [SKIPPED],
}
MESSAGES = {
    "tests/test_cases.py::test_fails": "one is not two",
    # pytest prints both its FAILED line (the call's) and its ERROR line (the teardown's)
    "tests/test_cases.py::test_fails_then_teardown_errors": ("call broke first", "teardown broke"),
    "tests/test_cases.py::test_setup_and_teardown_error": ("setup broke", "teardown broke"),
    "tests/test_subtests.py::test_subtest_then_teardown_fail": (
        "a subtest failed",
        "its teardown broke",
    ),
    "tests/test_subtests.py::Numbers::test_one_subtest_fails": "i is one",
    "tests/test_subtests.py::test_fixture_subtest_fails": "only zero passes",
    # its own body's error, as pytest's FAILED line shows it (its subtest's has a line of its own)
    "tests/test_subtests.py::test_subtest_then_its_body_fail": "the body broke too",
    "tests/test_module_skip.py": "a_module_nobody_has",
}
# Whole messages: a skip's reason as pytest's `-rs` line prints it (pytest-json-report writes
# a skip as the text of its (path, line, reason)); the reason's quote and brackets its own.
EXACT = {"tests/test_cases.py::test_skipped": "not here (it's CI)"}
# Variables of the outer session that would change what an inner one does.
UNSET = ("ANVILD_DISABLE", "ANVILD_CONFIG", "PYTEST_ADDOPTS", "PYTEST_PLUGINS", "CI",
         "GITHUB_ACTIONS", "PYTEST_DISABLE_PLUGIN_AUTOLOAD")  # fmt: skip
SUMMARY = re.compile(r"^=*\s*(?P<counts>.*?) in (?P<seconds>[\d.]+)s\b")


def session(
    root: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    base = {
        k: v for k, v in os.environ.items() if k not in UNSET and not k.startswith("PYTEST_XDIST")
    }
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:randomly", "-p", "no:hypothesispytest", *args],
        cwd=root,
        env={**base, "FLAKY_MARKER": str(root / "flaky.marker"), **(env or {})},
        capture_output=True,
        text=True,
        timeout=180,
    )


def summary(proc: subprocess.CompletedProcess[str]) -> tuple[str, float]:
    """pytest's last line: its counts and the time it printed."""
    for line in reversed(proc.stdout.strip().splitlines()):
        found = SUMMARY.match(line.strip())
        if found:
            return found["counts"], float(found["seconds"])
    raise AssertionError(f"no summary line in:\n{proc.stdout}\n{proc.stderr}")


def watch(root: Path) -> None:
    project = settings.ProjectConfig(root.resolve(), root.name)
    settings.save(settings.Config(projects=(project,)), config.config_file())
    projects.mark(project)  # what `anvild watch` leaves for the project's sessions


def records(root: Path) -> list[Path]:
    return sorted((root / RECORD_DIR).glob("session-*.jsonl"))


def by_test(run: ParsedRun) -> dict[str, list[str]]:
    seen: dict[str, list[str]] = {}
    for result in run.results:
        seen.setdefault(result.node_id, []).append(result.status)
    return seen


PATHS = {
    # how the session is read: extra pytest options, and where the report is
    "record": ((), None),
    "json": (("--json-report", "--json-report-file=r.json"), "r.json"),
    "reportlog": (("--report-log=r.jsonl",), "r.jsonl"),
}


def read(root: Path, path: str) -> ParsedRun:
    report = PATHS[path][1]
    if report is None:
        [record] = records(root)
        return parse_report(record)
    return parse_report(root / report)


@pytest.mark.parametrize("verbosity", ["-q", "", "-v"], ids=["-q", "default", "-v"])
@pytest.mark.parametrize("path", list(PATHS))
def test_each_test_as_pytest_counted_it(tmp_path: Path, path: str, verbosity: str) -> None:
    root = write_project(tmp_path / "proj", CASES)
    if path == "record":
        watch(root)
    args = [a for a in (verbosity, *PATHS[path][0]) if a]
    proc = session(root, *args)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    counts, seconds = summary(proc)
    # pytest counts failed subtests and a failing teardown on their own too ("5 failed, 4
    # passed, ..., 1 error"); per test it is one verdict
    assert "2 skipped, 1 xfailed, 4 errors" in counts and counts.endswith("1 rerun"), counts
    run = read(root, path)
    assert by_test(run) == EXPECTED
    messages = {r.node_id: r.message or "" for r in run.results}
    assert {node_id: messages[node_id] for node_id in EXACT} == EXACT
    for node_id, texts in MESSAGES.items():
        said = messages[node_id]
        for text in (texts,) if isinstance(texts, str) else texts:
            assert text in said, (node_id, said)
        if not isinstance(texts, str):  # in the order pytest printed them
            assert [said.index(text) for text in texts] == sorted(said.index(t) for t in texts)
    assert run.exit_code == 1 and not run.interrupted
    if path == "record":
        assert run.duration == pytest.approx(seconds, rel=0.05, abs=0.02)
        # and pytest's own line, word for word, which `anvild history` and `show` print
        assert run.metadata["pytest_summary"] == counts
    elif path == "json":  # timed when pytest-json-report saves, before the other summaries
        assert run.duration == pytest.approx(seconds, rel=0.05, abs=0.1)


INTERRUPTED = {
    "pytest.ini": "[pytest]\n",
    "test_stop.py": """
        def test_first():
            pass

        def test_pressed_ctrl_c():
            raise KeyboardInterrupt

        def test_never_reached():
            pass
    """,
}


@pytest.mark.parametrize("path", list(PATHS))
def test_ctrl_c_is_an_interrupted_run_without_the_unfinished_test(
    tmp_path: Path, path: str
) -> None:
    root = write_project(tmp_path / "proj", INTERRUPTED)
    if path == "record":
        watch(root)
    proc = session(root, "-q", *PATHS[path][0])
    assert proc.returncode == 2, proc.stdout + proc.stderr
    run = read(root, path)
    assert by_test(run) == {"test_stop.py::test_first": [PASSED]}
    assert run.interrupted and run.exit_code == 2
    report = records(root)[0] if path == "record" else root / str(PATHS[path][1])
    assert anvild("ingest", str(report), cwd=root).returncode == 0
    [stored] = json.loads(anvild("history", "--json", cwd=root).stdout)
    assert (stored["state"], stored["exit_code"], stored["counts"]["passed"]) == (
        "interrupted",
        2,
        1,
    )


CRASHING = {
    "pytest.ini": "[pytest]\n",
    "conftest.py": """
        def pytest_runtest_logfinish(nodeid, location):
            if nodeid.endswith("test_second"):
                raise RuntimeError("a plugin's bug")
    """,
    "test_crash.py": """
        def test_first():
            pass

        def test_second():
            assert 0

        def test_third():
            pass
    """,
}


@pytest.mark.parametrize("path", list(PATHS))
def test_an_internal_error_is_stored_with_what_ran(tmp_path: Path, path: str) -> None:
    root = write_project(tmp_path / "proj", CRASHING)
    if path == "record":
        watch(root)
    proc = session(root, "-q", *PATHS[path][0])
    assert proc.returncode == 3, proc.stdout + proc.stderr
    run = read(root, path)
    assert by_test(run) == {
        "test_crash.py::test_first": [PASSED],
        "test_crash.py::test_second": [FAILED],
    }
    assert run.exit_code == 3


@pytest.mark.parametrize("path", list(PATHS))
def test_a_run_of_only_module_level_skips_is_a_run(tmp_path: Path, path: str) -> None:
    root = write_project(
        tmp_path / "proj",
        {
            "pytest.ini": "[pytest]\n",
            "tests/test_module_skip.py": CASES["tests/test_module_skip.py"],
        },
    )
    if path == "record":
        watch(root)
    proc = session(root, "-q", *PATHS[path][0])
    # pytest exits with 5 (no test collected) and says "1 skipped": the skip is the run
    assert proc.returncode == 5 and summary(proc)[0] == "1 skipped", proc.stdout
    assert by_test(read(root, path)) == {"tests/test_module_skip.py": [SKIPPED]}


ALL_REPORTS = ("--json-report", "--json-report-file=.pytest_cache/report.json",
               "--junitxml=junit.xml", "--report-log=.pytest_cache/reportlog.jsonl")  # fmt: skip


def test_a_session_writing_every_report_is_one_run_by_ingest(tmp_path: Path) -> None:
    root = write_project(tmp_path / "proj", CASES)
    watch(root)
    proc = session(root, "-q", *ALL_REPORTS)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    [record] = records(root)
    reports = [root / "junit.xml", root / ".pytest_cache/report.json",
               root / ".pytest_cache/reportlog.jsonl", record]  # fmt: skip
    ingested = anvild("ingest", *map(str, reports), cwd=root)
    assert ingested.returncode == 0, ingested.stderr
    assert [row[1] for row in executions(root)] == ["anvild"]  # the record, whichever came first
    assert ingested.stderr.count("recorded as its pytest session from") == 3, ingested.stderr
    # the same reports again, in another order, store nothing more
    again = anvild("ingest", *map(str, reversed(reports)), cwd=root)
    assert again.returncode == 0 and len(executions(root)) == 1, again.stderr


def test_without_their_record_the_reports_of_a_session_are_still_one_run(tmp_path: Path) -> None:
    root = write_project(tmp_path / "proj", CASES)
    proc = session(root, "-q", *ALL_REPORTS)  # not watched: the plugin names the session only
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert records(root) == []
    reports = [root / "junit.xml", root / ".pytest_cache/report.json",
               root / ".pytest_cache/reportlog.jsonl"]  # fmt: skip
    ingested = anvild("ingest", *map(str, reports), cwd=root)
    assert ingested.returncode == 0, ingested.stderr
    assert [row[1] for row in executions(root)] == ["junit"]
    assert (
        ingested.stderr.count("already stored as") + ingested.stdout.count("already stored as") == 2
    )


def test_the_daemon_stores_one_run_per_session_with_live_progress(
    tmp_path: Path, project: Path, daemon: int
) -> None:
    write_project(project, CASES)
    proc = session(project, "-q", *ALL_REPORTS)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    wait_for(lambda: executions(project), 30, "the session to be stored")
    [record] = records(project)

    def settled() -> bool:
        done = json.loads(anvild("status", "--json").stdout)
        return not done.get("in_progress") and not done.get("storing") and not done.get("pending")

    wait_for(settled, 30, "the daemon to read every report")
    assert [row[1] for row in executions(project)] == ["anvild"]
    [run] = json.loads(anvild("history", "--json", cwd=project).stdout)
    assert run["state"] == "complete" and run["session_id"] == parse_report(record).session_id
    assert run["duration"] == pytest.approx(summary(proc)[1], rel=0.05, abs=0.02)


LIVE = {
    "pytest.ini": "[pytest]\n",
    "test_live.py": """
        import time
        from pathlib import Path

        def test_first():
            pass

        def test_waits_for_the_go():
            deadline = time.monotonic() + 60
            while not Path("go").exists():
                assert time.monotonic() < deadline, "no go within 60 s"
                time.sleep(0.02)
    """,
}


def test_live_progress_shows_one_run_per_session(project: Path, daemon: int) -> None:
    write_project(project, LIVE)
    base = {k: v for k, v in os.environ.items() if k not in UNSET}
    pytest_run = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:randomly",
            "test_live.py",
            "--report-log=.pytest_cache/reportlog.jsonl",
        ],
        cwd=project,
        env=base,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        def progress() -> list[dict[str, object]]:
            # each file is looked at on its own turn: wait for the record's look at the first
            # test (the reportlog may be ahead of it, or behind)
            going = json.loads(anvild("status", "--json").stdout)["in_progress"]
            record = [run for run in going if Path(str(run["path"])).parent == project / RECORD_DIR]
            return going if any(run["tests_so_far"] for run in record) else []

        going = wait_for(progress, 60, "the session's first test in `anvild status`")
        assert isinstance(going, list) and len(going) == 1, going
        assert Path(str(going[0]["path"])).parent == project / RECORD_DIR
    finally:
        (project / "go").write_text("go")
        assert pytest_run.wait(timeout=90) == 0
    wait_for(lambda: executions(project), 30, "the session to be stored")
    assert [row[1] for row in executions(project)] == ["anvild"]


def test_a_project_listing_its_own_globs_still_has_its_sessions_stored(project: Path) -> None:
    """A config written before the session records (or by `watch --report`) lists its globs
    without theirs: the daemon watches the records whatever the list says."""
    write_project(
        project, {"pytest.ini": "[pytest]\n", "test_one.py": "def test_one():\n    pass\n"}
    )
    only = settings.ProjectConfig(project.resolve(), project.name, reports=("junit*.xml",))
    settings.save(settings.Config(projects=(only,)), config.config_file())
    started = anvild("start")
    assert started.returncode == 0, started.stderr
    try:
        proc = session(project, "-q", "test_one.py")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        wait_for(lambda: executions(project), 30, "the session to be stored")
        assert [row[1:] for row in executions(project)] == [("anvild", 1)]
    finally:
        assert anvild("stop").returncode == 0


@pytest.mark.parametrize("path", list(PATHS))
def test_a_failed_subtest_still_fails_its_test_under_reruns(tmp_path: Path, path: str) -> None:
    """pytest-rerunfailures logs a test's phases after each attempt and its subtests as they
    happen: the failed subtest comes before its test's setup."""
    root = write_project(
        tmp_path / "proj",
        {"pytest.ini": "[pytest]\n", "test_u.py": CASES["tests/test_subtests.py"]},
    )
    if path == "record":
        watch(root)
    proc = session(root, "-q", "--reruns", "1", *PATHS[path][0])
    assert proc.returncode == 1, proc.stdout + proc.stderr
    run = read(root, path)
    statuses = by_test(run)
    assert statuses["test_u.py::Numbers::test_one_subtest_fails"] == [FAILED]
    assert statuses["test_u.py::Numbers::test_all_subtests_pass"] == [PASSED]
    # the fixture's subtest fails its test, which pytest-rerunfailures then reruns; a JSON
    # report keeps one entry per test, whose last word after a failed rerun is "failed"
    reruns = [FAILED] if path == "json" else [RERUN, FAILED]
    assert statuses["test_u.py::test_fixture_subtest_fails"] == reruns
