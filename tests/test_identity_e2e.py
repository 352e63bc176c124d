"""One test identity across formats, proven on a real suite run three ways.

The same suite runs with pytest-json-report (stored as local), with JUnit XML in pytest's xunit2
family (no ``file=``) and in its xunit1 family (``file=``), both stored as CI runs in a GitHub
Actions job. Every test must come out as one test with three runs, named by its pytest node id
in every space.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tests.conftest import run_pytest, write_project
from tests.test_ci import GITHUB, anvild, clean_env

SUITE = {
    "tests/__init__.py": "",
    "tests/test_models.py": """
        import pytest

        @pytest.mark.parametrize("value", [1, "a.b", "x/y", "k::v"])
        def test_param(value):
            assert value

        def test_fails():
            assert 1 == 2, "expected to fail"

        @pytest.mark.skip(reason="not here")
        def test_skipped():
            pass

        class TestOuter:
            def test_outer(self):
                pass

            class TestInner:
                @pytest.mark.parametrize("n", [0, 1])
                def test_inner(self, n):
                    assert n in (0, 1)
    """,
    "tests/sub/__init__.py": "",
    "tests/sub/test_deep.py": """
        def test_in_subpackage():
            pass

        class TestDeep:
            def test_method(self):
                pass
    """,
}

EXPECTED = {
    "tests/test_models.py::test_param[1]": "PASSED",
    "tests/test_models.py::test_param[a.b]": "PASSED",
    "tests/test_models.py::test_param[x/y]": "PASSED",
    "tests/test_models.py::test_param[k::v]": "PASSED",
    "tests/test_models.py::test_fails": "FAILED",
    "tests/test_models.py::test_skipped": "SKIPPED",
    "tests/test_models.py::TestOuter::test_outer": "PASSED",
    "tests/test_models.py::TestOuter::TestInner::test_inner[0]": "PASSED",
    "tests/test_models.py::TestOuter::TestInner::test_inner[1]": "PASSED",
    "tests/sub/test_deep.py::test_in_subpackage": "PASSED",
    "tests/sub/test_deep.py::TestDeep::test_method": "PASSED",
}


def stats(project: Path, space: str, database: dict[str, str] | None = None) -> dict[str, dict]:
    env = clean_env(**(database or {}))
    proc = anvild("stats", "show", "--space", space, "--format", "json", cwd=project, env=env)
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    ids = [row["entity_id"] for row in rows]
    assert len(ids) == len(set(ids)), f"a test appears twice in --space {space}: {ids}"
    return {row["entity_id"]: row for row in rows}


def test_one_identity_for_json_report_xunit2_and_xunit1(tmp_path: Path) -> None:
    project = write_project(tmp_path / "suite", SUITE)
    runs = [
        ("report.json", ["--json-report", "--json-report-file=report.json"]),
        ("xunit2.xml", ["--junitxml=xunit2.xml", "-o", "junit_family=xunit2"]),
        ("xunit1.xml", ["--junitxml=xunit1.xml", "-o", "junit_family=xunit1"]),
    ]
    for name, args in runs:
        proc = run_pytest(project, "-q", *args)
        assert proc.returncode == 1, proc.stdout + proc.stderr  # test_fails fails
        assert (project / name).exists()
    xunit2, xunit1 = (project / "xunit2.xml").read_text(), (project / "xunit1.xml").read_text()
    assert "file=" not in xunit2 and 'file="tests/sub/test_deep.py"' in xunit1
    assert 'classname="tests.test_models.TestOuter.TestInner"' in xunit2

    # CI first: the tests are first known by their JUnit names, then the local run meets them
    ci_env = clean_env(**GITHUB)
    for name in ("xunit2.xml", "xunit1.xml"):
        proc = anvild("ingest", "--space", "ci", name, cwd=project, env=ci_env)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.startswith("stored ci-21589120797-tests")
    local = anvild("ingest", "report.json", cwd=project, env=clean_env())
    assert local.returncode == 0 and local.stdout.startswith("stored local-"), local.stderr

    merged = stats(project, "all")
    assert set(merged) == set(EXPECTED)
    for node_id, status in EXPECTED.items():
        row = merged[node_id]
        assert row["total_runs"] == 3, (node_id, row)
        assert row["last_status"] == status, (node_id, row)
    assert merged["tests/test_models.py::test_fails"]["failed"] == 3
    assert merged["tests/test_models.py::test_skipped"]["skipped"] == 3

    ci = stats(project, "ci")
    assert set(ci) == set(EXPECTED), "CI rows are named by the pytest node ids"
    assert all(row["total_runs"] == 2 and row["space"] == "ci" for row in ci.values())
    assert all(row["total_runs"] == 1 for row in stats(project, "local").values())
    with sqlite3.connect(project / ".anvil" / "history.db") as conn:
        assert conn.execute("SELECT count(*) FROM test").fetchone()[0] == len(EXPECTED)
        assert conn.execute("SELECT count(*) FROM execution").fetchone()[0] == 3


# A file in a directory whose name has a dot: its JUnit class name cannot tell the dot from a
# package separator, so CI first knows it by a path that does not exist.
DOTDIR = {
    "pytest.ini": "[pytest]\n",
    "toolz/tests/data.v2/test_dotdir.py": """
        import os

        def test_flaky():
            assert os.environ.get("FAIL") != "1"
    """,
    "tests/test_err.py": "import module_that_does_not_exist  # noqa: F401\n",
    "tests/test_skipmod.py": """
        import pytest
        pytest.importorskip("module_that_does_not_exist")

        def test_never():
            pass
    """,
}
REAL = "toolz/tests/data.v2/test_dotdir.py::test_flaky"
GUESS = "toolz/tests/data/v2/test_dotdir.py::test_flaky"
KEEP_GOING = ("--continue-on-collection-errors",)


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    """The environment that points anvild at an SQLite file or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return {"ANVILD_DB": str(tmp_path / "history.db")}
    return {"ANVILD_DB": request.getfixturevalue("pg_url")}


def test_a_local_run_gives_a_ci_test_its_real_node_id(
    tmp_path: Path, database: dict[str, str]
) -> None:
    project = write_project(tmp_path / "suite", DOTDIR)
    for name, fail in (("ci-pass.xml", "0"), ("ci-fail.xml", "1"), ("ci-late.xml", "1")):
        proc = run_pytest(project, "-q", *KEEP_GOING, f"--junitxml={name}", env={"FAIL": fail})
        assert proc.returncode in (1, 2), proc.stdout + proc.stderr  # the collection error
    assert 'classname="toolz.tests.data.v2.test_dotdir"' in (project / "ci-pass.xml").read_text()
    proc = run_pytest(project, "-q", *KEEP_GOING, "--json-report", "--json-report-file=local.json")
    assert (project / "local.json").exists(), proc.stdout + proc.stderr

    ci_env = clean_env(**GITHUB, **database)
    for name in ("ci-pass.xml", "ci-fail.xml"):
        proc = anvild("ingest", "--space", "ci", name, cwd=project, env=ci_env)
        assert proc.returncode == 0, proc.stderr
    before = set(stats(project, "ci", database))
    assert GUESS in before, "CI alone can only guess"
    assert {"tests/test_err.py", "tests/test_skipmod.py"} <= before, "modules named as files"

    local = anvild("ingest", "local.json", cwd=project, env=clean_env(**database))
    assert local.returncode == 0, local.stderr
    # a JUnit report after the local run keeps the real node id
    late = anvild("ingest", "--space", "ci", "ci-late.xml", cwd=project, env=ci_env)
    assert late.returncode == 0, late.stderr

    merged = stats(project, "all", database)
    assert REAL in merged and GUESS not in merged
    assert merged[REAL]["total_runs"] == 4
    assert merged["tests/test_err.py"]["errors"] == 4, "one test: CI's and the local error"
    assert merged["tests/test_skipmod.py"]["skipped"] == 4, "CI's three and the local skip"
    deselect = anvild(
        "stats", "flaky", "--format", "deselect", cwd=project, env=clean_env(**database)
    )
    assert deselect.stdout.splitlines() == [f"--deselect {REAL}"], deselect.stderr
