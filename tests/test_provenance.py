"""The tree state that decides "same code": what makes a git work tree dirty and its diff hash,
in real git repositories."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from anvild.provenance import git_state
from anvild_pytest import provenance as plugin_side

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git work tree with one commit: a test file and a .gitignore that ignores nothing of
    pytest's or anvild's (a fresh clone, before pytest made its cache dir)."""
    root = tmp_path / "repo"
    (root / "tests").mkdir(parents=True)
    (root / "tests" / "test_a.py").write_text("def test_a():\n    pass\n")
    (root / ".gitignore").write_text("__pycache__/\n")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", ".")
    git(root, "commit", "-qm", "init")
    return root


def write(path: Path, text: str = "x") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


# What pytest, its report plugins and anvild write in a project, by the default report globs.
TOOL_FILES = (
    ".pytest_cache/report.json",  # pytest-json-report first: no .gitignore in the dir
    ".pytest_cache/v/cache/lastfailed",
    ".pytest_cache/reportlog.jsonl",
    ".report.json",
    "junit.xml",
    "junit-py311.xml",
    "reports/unit/a/results.xml",
    "test-results/pytest.xml",
    ".anvil/history.db",
    ".anvil/history.db-wal",
    "sub/.pytest_cache/README.md",
)


def test_files_written_by_pytest_and_anvild_leave_the_tree_clean(repo: Path) -> None:
    for name in TOOL_FILES:
        write(repo / name)
    state = git_state(repo)
    assert (state.dirty, state.diff_hash) == (False, None)
    assert state.commit == git(repo, "rev-parse", "HEAD") and state.branch == "main"


def test_configured_report_globs_leave_the_tree_clean(repo: Path) -> None:
    write(repo / "ide" / "out" / "results.xml")
    assert git_state(repo).dirty is True
    state = git_state(repo, ("ide/**/*.xml",))
    assert (state.dirty, state.diff_hash) == (False, None)


def test_other_files_still_make_the_tree_dirty(repo: Path) -> None:
    write(repo / "junit.xml")
    for name in ("notes.txt", "reports.xml", "sub/junit.xml", "reports.py"):
        write(repo / name)
        assert git_state(repo).dirty is True, name
        (repo / name).unlink()
    (repo / "tests" / "test_a.py").write_text("def test_a():\n    assert 0\n")
    assert git_state(repo).dirty is True


def test_a_tracked_report_file_is_left_out_of_the_diff_hash(repo: Path) -> None:
    write(repo / "junit.xml", "<testsuite/>")
    git(repo, "add", "junit.xml")
    git(repo, "commit", "-qm", "a report committed by mistake")
    (repo / "tests" / "test_a.py").write_text("def test_a():\n    assert 0\n")
    before = git_state(repo)
    write(repo / "junit.xml", "<testsuite tests='1'/>")
    write(repo / ".pytest_cache" / "report.json", "{}")
    after = git_state(repo)
    assert before.dirty and after.dirty
    assert before.diff_hash == after.diff_hash


def test_report_files_do_not_change_the_diff_hash(repo: Path) -> None:
    (repo / "tests" / "test_a.py").write_text("def test_a():\n    assert 0\n")
    write(repo / "tests" / "test_new.py", "def test_new():\n    pass\n")
    first = git_state(repo)
    for name in TOOL_FILES:
        write(repo / name, "a run's output")
    assert git_state(repo) == first


def test_editing_an_untracked_file_changes_the_diff_hash(repo: Path) -> None:
    new = repo / "tests" / "test_new.py"
    write(new, "def test_new():\n    pass\n")
    passing = git_state(repo)
    write(new, "def test_new():\n    assert 0\n")
    failing = git_state(repo)
    assert passing.dirty and failing.dirty
    assert passing.diff_hash != failing.diff_hash
    write(new, "def test_new():\n    pass\n")
    assert git_state(repo).diff_hash == passing.diff_hash, "same content, same code"


def test_untracked_files_are_hashed_from_the_repository_root(repo: Path) -> None:
    # a project below the git root: status names paths from the root, read from there
    write(repo / "pkg" / "tests" / "test_x.py", "one")
    project = repo / "pkg"
    first = git_state(project)
    write(repo / "pkg" / "tests" / "test_x.py", "two")
    assert git_state(project).diff_hash != first.diff_hash


def test_big_untracked_files_are_known_by_size_and_mtime(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(plugin_side, "CONTENT_LIMIT", 8)
    big = repo / "data.bin"
    write(big, "0123456789")
    stamp = big.stat().st_mtime_ns
    first = git_state(repo)
    write(big, "9876543210")  # same size: rewritten with the old mtime, it is not read
    os.utime(big, ns=(stamp, stamp))
    assert git_state(repo).diff_hash == first.diff_hash
    os.utime(big, ns=(stamp + 10**9, stamp + 10**9))
    assert git_state(repo).diff_hash != first.diff_hash


def test_untracked_symlinks_are_hashed_by_target_not_followed(repo: Path) -> None:
    (repo / "link").symlink_to("/nonexistent/target")
    first = git_state(repo)
    assert first.dirty
    (repo / "link").unlink()
    (repo / "link").symlink_to("/another/target")
    assert git_state(repo).diff_hash != first.diff_hash


def test_the_second_pytest_run_in_a_fresh_clone_is_clean(repo: Path) -> None:
    # A user's --json-report-file in .pytest_cache, without pytest's cache plugin: the
    # report plugin makes the directory, without the .gitignore pytest would write.
    args = ["-p", "no:cacheprovider", "--json-report", "--json-report-file=.pytest_cache/r.json"]
    args += ["--junitxml=junit.xml", "-q"]
    env = {k: v for k, v in os.environ.items() if k not in ("ANVILD_DISABLE", "PYTEST_ADDOPTS")}
    for _ in range(2):
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", *args],
            cwd=repo,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        facts = json.loads((repo / ".pytest_cache" / "r.json").read_text())["anvild"]
        assert (facts["tree_dirty"], facts["diff_hash"]) == (False, None), facts
    assert not (repo / ".pytest_cache" / ".gitignore").exists()


def test_a_watched_projects_globs_travel_to_the_ingest(repo: Path, tmp_path: Path) -> None:
    from anvild import settings
    from anvild.api import Target
    from anvild.ingest import IngestOptions, submission
    from anvild.records import ParsedRun

    path = tmp_path / "config.toml"
    project = settings.ProjectConfig(repo.resolve(), "repo", reports=("ide/*.xml",))
    settings.save(settings.Config(projects=(project,)), path)
    target = Target.resolve(str(repo), None, path)
    assert target.reports == ("ide/*.xml",)
    write(repo / "ide" / "results.xml")
    options = IngestOptions(target.project_root, reports=target.reports)
    sub = submission(ParsedRun("junit", ()), "0" * 64, "ide/results.xml", options)
    assert sub.provenance.tree_dirty is False


JUNIT = (
    '<testsuites><testsuite name="s" tests="1">'
    '<testcase classname="t" name="test_{n}" time="0.1"/></testsuite></testsuites>'
)


def test_one_ingest_of_many_reports_reads_the_work_tree_once(repo: Path, tmp_path: Path) -> None:
    """Reading the tree hashes its untracked files, the reports among them: once per ingest,
    not once per report, and every run of it gets the same state."""
    from tests.conftest import anvild

    logged = tmp_path / "git-calls"
    shim = tmp_path / "bin"
    shim.mkdir()
    real = shutil.which("git")
    (shim / "git").write_text(f'#!/bin/sh\necho "$*" >> {logged}\nexec {real} "$@"\n')
    (shim / "git").chmod(0o755)
    for n in range(5):
        write(repo / "ci-out" / f"r{n}.xml", JUNIT.format(n=n))
    env = {"PATH": f"{shim}{os.pathsep}{os.environ['PATH']}"}
    proc = anvild("ingest", "ci-out", cwd=repo, env=env)
    assert proc.returncode == 0, proc.stderr
    statuses = [line for line in logged.read_text().splitlines() if " status " in line]
    assert len(statuses) == 1, statuses
    history = json.loads(anvild("history", "--json", cwd=repo).stdout)
    assert len(history) == 5
    assert {run["tree_dirty"] for run in history} == {True}
