"""CI metadata from each provider's environment, and `anvild ingest --space ci` run for real."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from anvild.ci import CIMetadata, detect

# Variables of the CI this suite may itself run in: removed so each test sets its own.
_CI_PREFIXES = ("GITHUB_", "RUNNER_", "CI_", "GITLAB", "JENKINS", "CIRCLE", "BUILDKITE")
_CI_NAMES = {"CI", "BUILD_ID", "BUILD_NUMBER", "BUILD_URL", "JOB_NAME", "BRANCH_NAME"}
_CI_NAMES |= {"GIT_COMMIT", "GIT_BRANCH", "GIT_LOCAL_BRANCH", "PYTHON_VERSION"}


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any CI provider's variables, plus extra."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(_CI_PREFIXES) and key not in _CI_NAMES
    }
    return {**env, **extra}


def anvild(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "anvild", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


GITHUB = {
    "GITHUB_ACTIONS": "true",
    "GITHUB_RUN_ID": "21589120797",
    "GITHUB_RUN_ATTEMPT": "1",
    "GITHUB_JOB": "tests",
    "GITHUB_SERVER_URL": "https://github.com",
    "GITHUB_REPOSITORY": "acme/forge",
    "GITHUB_SHA": "4f2c0de1a5b6c7d8e9f00112233445566778899a",
    "GITHUB_REF_NAME": "main",
    "GITHUB_HEAD_REF": "",
    "RUNNER_OS": "Linux",
}

PROVIDERS = {
    "github": (
        GITHUB,
        CIMetadata(
            provider="github",
            run_id="21589120797",
            job_id="tests",
            job="tests",
            url="https://github.com/acme/forge/actions/runs/21589120797",
            commit="4f2c0de1a5b6c7d8e9f00112233445566778899a",
            branch="main",
            runner_os="Linux",
            python_version="3.12.1",
            attempt=1,
        ),
        "ci-21589120797-tests",
    ),
    "gitlab": (
        {
            "CI": "true",
            "GITLAB_CI": "true",
            "CI_PIPELINE_ID": "1187",
            "CI_PIPELINE_URL": "https://gitlab.com/acme/forge/-/pipelines/1187",
            "CI_JOB_ID": "62204520085",
            "CI_JOB_NAME": "test: [3.12]",
            "CI_JOB_URL": "https://gitlab.com/acme/forge/-/jobs/62204520085",
            "CI_COMMIT_SHA": "c0ffee",
            "CI_COMMIT_REF_NAME": "feature/login",
            "CI_RUNNER_EXECUTABLE_ARCH": "linux/amd64",
        },
        CIMetadata(
            provider="gitlab",
            run_id="1187",
            job_id="62204520085",
            job="test: [3.12]",
            url="https://gitlab.com/acme/forge/-/jobs/62204520085",
            commit="c0ffee",
            branch="feature/login",
            runner_os="linux",
            python_version="3.12.1",
        ),
        "ci-1187-62204520085",
    ),
    "jenkins": (
        {
            "JENKINS_URL": "https://jenkins.acme.test/",
            "BUILD_ID": "42",
            "BUILD_NUMBER": "42",
            "JOB_NAME": "forge/unit tests",
            "BUILD_URL": "https://jenkins.acme.test/job/forge/job/unit%20tests/42/",
            "GIT_COMMIT": "deadbeef",
            "GIT_BRANCH": "origin/release/1.2",
        },
        CIMetadata(
            provider="jenkins",
            run_id="42",
            job_id="forge/unit tests",
            job="forge/unit tests",
            url="https://jenkins.acme.test/job/forge/job/unit%20tests/42/",
            commit="deadbeef",
            branch="release/1.2",
            runner_os="Linux",
            python_version="3.12.1",
        ),
        "ci-42-forge-unit-tests",
    ),
    "circleci": (
        {
            "CI": "true",
            "CIRCLECI": "true",
            "CIRCLE_WORKFLOW_ID": "6fd8f0a2-93a4-4b71-8c7e-5b2d1c0e9f11",
            "CIRCLE_BUILD_NUM": "3071",
            "CIRCLE_JOB": "test",
            "CIRCLE_BUILD_URL": "https://circleci.com/gh/acme/forge/3071",
            "CIRCLE_SHA1": "abc123",
            "CIRCLE_BRANCH": "main",
        },
        CIMetadata(
            provider="circleci",
            run_id="6fd8f0a2-93a4-4b71-8c7e-5b2d1c0e9f11",
            job_id="3071",
            job="test",
            url="https://circleci.com/gh/acme/forge/3071",
            commit="abc123",
            branch="main",
            runner_os="Linux",
            python_version="3.12.1",
        ),
        "ci-6fd8f0a2-93a4-4b71-8c7e-5b2d1c0e9f11-3071",
    ),
    "buildkite": (
        {
            "CI": "true",
            "BUILDKITE": "true",
            "BUILDKITE_BUILD_ID": "0190f6b1-aaaa-bbbb-cccc-000000000001",
            "BUILDKITE_BUILD_NUMBER": "77",
            "BUILDKITE_JOB_ID": "0190f6b1-aaaa-bbbb-cccc-000000000002",
            "BUILDKITE_LABEL": ":pytest: tests",
            "BUILDKITE_BUILD_URL": "https://buildkite.com/acme/forge/builds/77",
            "BUILDKITE_COMMIT": "feedface",
            "BUILDKITE_BRANCH": "main",
            "BUILDKITE_AGENT_META_DATA_OS": "linux",
        },
        CIMetadata(
            provider="buildkite",
            run_id="0190f6b1-aaaa-bbbb-cccc-000000000001",
            job_id="0190f6b1-aaaa-bbbb-cccc-000000000002",
            job=":pytest: tests",
            url="https://buildkite.com/acme/forge/builds/77#0190f6b1-aaaa-bbbb-cccc-000000000002",
            commit="feedface",
            branch="main",
            runner_os="linux",
            python_version="3.12.1",
        ),
        "ci-0190f6b1-aaaa-bbbb-cccc-000000000001-0190f6b1-aaaa-bbbb-cccc-000000000002",
    ),
}


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_each_provider_is_read_from_its_environment(provider: str) -> None:
    env, expected, execution_id = PROVIDERS[provider]
    found = detect(env, python_version="3.12.1", system="Linux")
    assert found == expected
    assert found.execution_id() == execution_id


def test_outside_ci_there_is_nothing() -> None:
    assert detect({}) is None
    assert detect({"HOME": "/home/me", "TERM": "xterm", "GITHUB_ACTIONS": "false"}) is None


def test_fallbacks_and_numbers() -> None:
    # a Buildkite build without an id; a Jenkins-in-GitHub agent is GitHub's
    bk = detect({"BUILDKITE": "true", "BUILDKITE_BUILD_NUMBER": "77", "BUILDKITE_COMMIT": "HEAD"})
    assert bk is not None and bk.run_id == "77" and bk.commit is None
    assert bk.execution_id() == "ci-77"
    both = detect({**GITHUB, "JENKINS_URL": "https://j/"})
    assert both is not None and both.provider == "github"
    # CircleCI without workflows: the build number is the run, the job its name
    legacy = detect({"CIRCLECI": "true", "CIRCLE_BUILD_NUM": "9", "CIRCLE_JOB": "build"})
    assert legacy is not None and legacy.execution_id() == "ci-9-build"
    # GitLab merge request pipelines name the source branch
    mr = detect(
        {
            "GITLAB_CI": "true",
            "CI_PIPELINE_ID": "1",
            "CI_COMMIT_REF_NAME": "refs/merge-requests/5/head",
            "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME": "fix",
        }
    )
    assert mr is not None and mr.branch == "fix" and mr.execution_id() == "ci-1"
    # no run id: no CI name (the store names the run ci-YYYYMMDD-HHMMSS)
    assert CIMetadata("github").execution_id() is None


def test_runner_os_and_python_version_defaults() -> None:
    found = detect({"CIRCLECI": "true", "CIRCLE_BUILD_NUM": "1"}, system="Darwin")
    assert found is not None and found.runner_os == "macOS"
    assert found.python_version == ".".join(map(str, sys.version_info[:3]))
    pinned = detect({"CIRCLECI": "true", "PYTHON_VERSION": "3.13.0"}, python_version="3.11.0")
    assert pinned is not None and pinned.python_version == "3.13.0"


def test_github_rerun_and_pull_request() -> None:
    env = {**GITHUB, "GITHUB_RUN_ATTEMPT": "2"}
    rerun = detect(env)
    assert rerun is not None
    assert rerun.execution_id() == "ci-21589120797-tests-2"
    assert rerun.url == "https://github.com/acme/forge/actions/runs/21589120797/attempts/2"
    pr = detect({**GITHUB, "GITHUB_REF_NAME": "17/merge", "GITHUB_HEAD_REF": "fix-login"})
    assert pr is not None and pr.branch == "fix-login"


def test_metadata_is_what_the_seed_stores_plus_provenance() -> None:
    found = detect(GITHUB, python_version="3.11.7")
    assert found is not None
    assert found.metadata() == {
        "provider": "github",
        "run_id": "21589120797",
        "job_id": "tests",
        "job": "tests",
        "ci_url": "https://github.com/acme/forge/actions/runs/21589120797",
        "platform": "Linux",
        "python_version": "3.11.7",
        "attempt": 1,
        "origin": "ci",
        "git_commit": GITHUB["GITHUB_SHA"],
        "git_branch": "main",
        "tree_dirty": False,
    }
    # without a commit from the CI, the local work tree is read as usual
    assert "tree_dirty" not in CIMetadata("jenkins", run_id="1").metadata()


# --- the real command ---


@pytest.fixture
def project(tmp_path: Path, sample_reports: dict) -> Path:
    root = tmp_path / "proj"
    root.mkdir()
    for kind in ("json", "junit", "reportlog"):
        shutil.copy(sample_reports[kind], root / sample_reports[kind].name)
    return root


def executions(project: Path) -> list[dict]:
    with sqlite3.connect(project / ".anvil" / "history.db") as conn:
        conn.row_factory = sqlite3.Row
        rows = conn.execute("SELECT * FROM execution ORDER BY id").fetchall()
    return [dict(row) for row in rows]


def test_ingest_in_github_actions_names_the_runs_and_stores_the_job(project: Path) -> None:
    env = clean_env(**GITHUB)
    proc = anvild("ingest", "--space", "ci", "junit.xml", "report.json", cwd=project, env=env)
    assert proc.returncode == 0, proc.stderr
    assert [line.split()[:3] for line in proc.stdout.splitlines()] == [
        ["stored", "ci-21589120797-tests", "(ci):"],
        ["stored", "ci-21589120797-tests.2", "(ci):"],
    ]
    rows = executions(project)
    for row in rows:
        assert row["space"] == "ci" and row["origin"] == "ci"
        assert row["git_commit"] == GITHUB["GITHUB_SHA"] and row["git_branch"] == "main"
        assert row["tree_dirty"] == 0
        assert row["ci_url"] == "https://github.com/acme/forge/actions/runs/21589120797"
        meta = json.loads(row["metadata"])
        assert meta["platform"] == "Linux" and meta["provider"] == "github"
        assert meta["python_version"] == ".".join(map(str, sys.version_info[:3]))
        assert meta["job"] == "tests" and meta["run_id"] == "21589120797"
    history = json.loads(anvild("history", "--json", cwd=project, env=env).stdout)
    assert {run["execution_id"] for run in history} == {
        "ci-21589120797-tests",
        "ci-21589120797-tests.2",
    }

    # the job ingests again (a retried step): nothing new, exit 0
    again = anvild("ingest", "--space", "ci", "junit.xml", "report.json", cwd=project, env=env)
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines() == [
        f"already stored as ci-21589120797-tests: {project / 'junit.xml'}",
        f"already stored as ci-21589120797-tests.2: {project / 'report.json'}",
    ]
    # a later step of the same job stores another report: the next free name
    later = anvild("ingest", "--space", "ci", "reportlog.jsonl", cwd=project, env=env)
    assert later.stdout.startswith("stored ci-21589120797-tests.3 (ci):"), later.stderr
    # the re-run of the job is a new run with its own name
    rerun_env = clean_env(**{**GITHUB, "GITHUB_RUN_ATTEMPT": "2"})
    rerun_report = project / "rerun.json"
    data = json.loads((project / "report.json").read_text())
    data["created"] += 60
    rerun_report.write_text(json.dumps(data))
    rerun = anvild("ingest", "--space", "ci", "rerun.json", cwd=project, env=rerun_env)
    assert rerun.stdout.startswith("stored ci-21589120797-tests-2 (ci):"), rerun.stderr
    assert executions(project)[-1]["ci_url"].endswith("/actions/runs/21589120797/attempts/2")
    assert len(executions(project)) == 4


def test_ci_facts_win_over_the_local_work_tree(project: Path) -> None:
    git = shutil.which("git")
    if git is None:
        pytest.skip("git is not installed")
    env = clean_env(
        GIT_AUTHOR_NAME="t",
        GIT_AUTHOR_EMAIL="t@e",
        GIT_COMMITTER_NAME="t",
        GIT_COMMITTER_EMAIL="t@e",
    )
    for args in (
        ["init", "-q", "-b", "local-branch"],
        ["commit", "-q", "--allow-empty", "-m", "x"],
    ):
        subprocess.run([git, *args], cwd=project, check=True, env=env, capture_output=True)
    # untracked reports make the local tree dirty; a CI checkout is the commit all the same
    proc = anvild("ingest", "--space", "ci", "junit.xml", cwd=project, env={**env, **GITHUB})
    assert proc.returncode == 0, proc.stderr
    local = anvild("ingest", "report.json", cwd=project, env=env)
    assert local.stdout.startswith("stored local-"), local.stderr
    ci_row, local_row = executions(project)
    assert (ci_row["git_commit"], ci_row["git_branch"], ci_row["tree_dirty"]) == (
        GITHUB["GITHUB_SHA"],
        "main",
        0,
    )
    assert local_row["git_branch"] == "local-branch" and local_row["tree_dirty"] == 1
    assert local_row["git_commit"] != GITHUB["GITHUB_SHA"]


def test_execution_id_option_and_local_space_and_meta(project: Path) -> None:
    env = clean_env(**GITHUB)
    named = anvild(
        "ingest", "--space", "ci", "--execution-id", "nightly-7", "junit.xml", cwd=project, env=env
    )
    assert named.stdout.startswith("stored nightly-7 (ci):"), named.stderr
    # --meta overrides the CI's facts, provenance included
    meta = anvild(
        "ingest",
        "--space",
        "ci",
        "report.json",
        "--meta",
        "platform=ubuntu-latest",
        "--meta",
        "git_branch=release",
        cwd=project,
        env=env,
    )
    assert meta.stdout.startswith("stored ci-21589120797-tests (ci):"), meta.stderr
    # a local run in a CI job is a local run: no CI name
    local = anvild("ingest", "reportlog.jsonl", cwd=project, env=env)
    assert local.stdout.startswith("stored local-"), local.stderr
    rows = executions(project)
    assert json.loads(rows[1]["metadata"])["platform"] == "ubuntu-latest"
    assert rows[1]["git_branch"] == "release"
    assert rows[2]["space"] == "local" and rows[2]["ci_url"] is None


def test_ci_space_outside_ci_names_runs_by_time(project: Path) -> None:
    proc = anvild("ingest", "--space", "ci", "junit.xml", cwd=project, env=clean_env())
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("stored ci-2"), proc.stdout  # ci-YYYYMMDD-HHMMSS


def test_a_name_taken_meanwhile_by_another_owner_is_skipped(
    tmp_path: Path, sample_reports: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    from anvild.ingest import IngestOptions, ReportSource, prepare
    from anvild.store import write
    from anvild.store.owner import Owner

    db_url = str(tmp_path / "history.db")
    data = Path(sample_reports["junit"]).read_bytes()
    other = json.loads(Path(sample_reports["json"]).read_text())
    options = IngestOptions(tmp_path, "ci", execution_base="ci-5-test")
    first = prepare(ReportSource("a/junit.xml", data, True), options)
    second = prepare(ReportSource("b/report.json", json.dumps(other).encode(), True), options)
    real = write._free_name
    calls: list[str] = []

    def stale(runs: Any, base: str) -> str:
        # the first look-up answers as if another owner had not committed yet
        calls.append(base)
        return base if len(calls) == 1 else real(runs, base)

    with Owner(db_url, tmp_path / "state").open(5.0) as owner:
        stored = owner.run(lambda db: write.store_run(db, first))
        assert stored.execution_id == "ci-5-test"
        monkeypatch.setattr(write, "_free_name", stale)
        taken = owner.run(lambda db: write.store_run(db, second))
        again = owner.run(lambda db: write.store_run(db, first))
    assert taken.execution_id == "ci-5-test.2" and not taken.already_stored
    assert again.already_stored and again.execution_id == "ci-5-test"
    assert len(calls) == 2  # the stale name, then a fresh look-up; a known report needs none
