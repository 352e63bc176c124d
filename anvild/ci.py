"""CI facts from the environment a report is ingested in: which run and job, where, which code.

Each provider is read from the variables it documents (GitHub Actions, GitLab CI, Jenkins,
CircleCI, Buildkite). The run is named ``ci-<run id>-<job id>``:

- the name is stable for one job, so a job that ingests its report twice stores it once (the
  report's content hash decides that, before any name is chosen);
- a re-run is a new run with a new name: GitLab, Jenkins, CircleCI and Buildkite give a retried
  job a new job or build id; GitHub keeps the run id and the job name (it has no numeric job id
  in the environment), so its name gains ``-<attempt>`` from the second attempt on;
- a job that stores several reports (or matrix legs sharing one GitHub job name) names the
  later ones ``<name>.2``, ``<name>.3``, ...: the first free name, chosen by the store. A dot,
  not a dash, so ``ci-1-test.2`` (the job's second report) never reads as ``ci-1-test-2`` (its
  second attempt).
"""

from __future__ import annotations

import platform
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote

# Characters kept in a name part; anything else (spaces, slashes of Jenkins folders) is a dash.
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
_OS_NAMES = {"darwin": "macOS", "linux": "Linux", "windows": "Windows"}


@dataclass(frozen=True, slots=True)
class CIMetadata:
    """What a CI provider says about the job a report comes from."""

    provider: str
    run_id: str | None = None
    job_id: str | None = None
    job: str | None = None
    url: str | None = None
    commit: str | None = None
    branch: str | None = None
    runner_os: str | None = None
    python_version: str | None = None
    attempt: int | None = None  # GitHub's run attempt; other providers give retries new ids

    def execution_id(self) -> str | None:
        """``ci-<run id>-<job id>`` (GitHub: ``-<attempt>`` after the first attempt)."""
        if not self.run_id:
            return None
        parts = [self.run_id, self.job_id]
        if self.attempt is not None and self.attempt > 1:
            parts.append(str(self.attempt))
        return "-".join(["ci", *(_safe(part) for part in parts if part)])

    def metadata(self) -> dict[str, Any]:
        """The metadata stored with the run: CI facts, and the provenance the CI knows better.

        The commit and branch replace what the local git work tree says; a CI checkout is the
        commit, so the tree is clean (files the job writes, reports included, are not edits).
        """
        facts: dict[str, Any] = {
            "provider": self.provider,
            "run_id": self.run_id,
            "job_id": self.job_id,
            "job": self.job,
            "ci_url": self.url,
            "platform": self.runner_os,
            "python_version": self.python_version,
            "attempt": self.attempt,
            "origin": "ci",
        }
        if self.commit:
            facts.update(git_commit=self.commit, tree_dirty=False)
        if self.branch:
            facts["git_branch"] = self.branch
        return {key: value for key, value in facts.items() if value is not None}


def _safe(part: str) -> str:
    return _UNSAFE.sub("-", part).strip("-") or "_"


def _first(env: Mapping[str, str], *names: str) -> str | None:
    """The first of names set to a non-blank value."""
    for name in names:
        value = env.get(name, "").strip()
        if value:
            return value
    return None


def _int(text: str | None) -> int | None:
    return int(text) if text and text.isdigit() else None


def _strip_prefix(branch: str | None, *prefixes: str) -> str | None:
    for prefix in prefixes:
        if branch and branch.startswith(prefix):
            return branch[len(prefix) :]
    return branch


def _github(env: Mapping[str, str]) -> CIMetadata:
    run_id = _first(env, "GITHUB_RUN_ID")
    attempt = _int(_first(env, "GITHUB_RUN_ATTEMPT"))
    server, repo = _first(env, "GITHUB_SERVER_URL"), _first(env, "GITHUB_REPOSITORY")
    url = None
    if server and repo and run_id:
        # the repository and run id as path segments: quoted, so a name never becomes markup
        # or another scheme in a link
        path = f"{quote(repo, safe='/')}/actions/runs/{quote(run_id, safe='')}"
        url = f"{server.rstrip('/')}/{path}"
        if attempt and attempt > 1:
            url += f"/attempts/{attempt}"
    return CIMetadata(
        provider="github",
        run_id=run_id,
        job_id=_first(env, "GITHUB_JOB"),
        job=_first(env, "GITHUB_JOB"),
        url=url,
        commit=_first(env, "GITHUB_SHA"),
        # On a pull request GITHUB_REF_NAME is "<number>/merge"; GITHUB_HEAD_REF is the branch.
        branch=_first(env, "GITHUB_HEAD_REF", "GITHUB_REF_NAME"),
        runner_os=_first(env, "RUNNER_OS"),
        attempt=attempt,
    )


def _gitlab(env: Mapping[str, str]) -> CIMetadata:
    arch = _first(env, "CI_RUNNER_EXECUTABLE_ARCH")  # "linux/amd64"
    return CIMetadata(
        provider="gitlab",
        run_id=_first(env, "CI_PIPELINE_ID"),
        job_id=_first(env, "CI_JOB_ID"),
        job=_first(env, "CI_JOB_NAME"),
        url=_first(env, "CI_JOB_URL", "CI_PIPELINE_URL"),
        commit=_first(env, "CI_COMMIT_SHA"),
        branch=_first(env, "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME", "CI_COMMIT_REF_NAME"),
        runner_os=arch.partition("/")[0] if arch else None,
    )


def _jenkins(env: Mapping[str, str]) -> CIMetadata:
    job = _first(env, "JOB_NAME")
    branch = _first(env, "BRANCH_NAME", "GIT_LOCAL_BRANCH", "GIT_BRANCH")
    return CIMetadata(
        provider="jenkins",
        run_id=_first(env, "BUILD_ID", "BUILD_NUMBER"),
        job_id=job,  # a build number counts within its job: the job names it
        job=job,
        url=_first(env, "BUILD_URL"),
        commit=_first(env, "GIT_COMMIT"),
        branch=_strip_prefix(branch, "refs/heads/", "origin/"),
    )


def _circleci(env: Mapping[str, str]) -> CIMetadata:
    workflow, build = _first(env, "CIRCLE_WORKFLOW_ID"), _first(env, "CIRCLE_BUILD_NUM")
    return CIMetadata(
        provider="circleci",
        run_id=workflow or build,
        job_id=build if workflow else _first(env, "CIRCLE_JOB"),
        job=_first(env, "CIRCLE_JOB"),
        url=_first(env, "CIRCLE_BUILD_URL"),
        commit=_first(env, "CIRCLE_SHA1"),
        branch=_first(env, "CIRCLE_BRANCH"),
    )


def _buildkite(env: Mapping[str, str]) -> CIMetadata:
    job_id = _first(env, "BUILDKITE_JOB_ID")
    url = _first(env, "BUILDKITE_BUILD_URL")
    commit = _first(env, "BUILDKITE_COMMIT")
    return CIMetadata(
        provider="buildkite",
        run_id=_first(env, "BUILDKITE_BUILD_ID", "BUILDKITE_BUILD_NUMBER"),
        job_id=job_id,
        job=_first(env, "BUILDKITE_LABEL", "BUILDKITE_STEP_KEY"),
        url=f"{url}#{job_id}" if url and job_id else url,  # Buildkite's link to one job
        commit=None if commit == "HEAD" else commit,  # "HEAD": no commit resolved yet
        branch=_first(env, "BUILDKITE_BRANCH"),
        runner_os=_first(env, "BUILDKITE_AGENT_META_DATA_OS"),
    )


# Each provider's own flag, Jenkins last: its run variables (BUILD_ID, JOB_NAME) are generic
# names other tools set too.
PROVIDERS: tuple[
    tuple[Callable[[Mapping[str, str]], bool], Callable[[Mapping[str, str]], CIMetadata]], ...
] = (
    (lambda env: env.get("GITHUB_ACTIONS") == "true", _github),
    (lambda env: bool(env.get("GITLAB_CI")), _gitlab),
    (lambda env: env.get("BUILDKITE") == "true", _buildkite),
    (lambda env: env.get("CIRCLECI") == "true", _circleci),
    (lambda env: bool(env.get("JENKINS_URL") or env.get("JENKINS_HOME")), _jenkins),
)


def detect(
    env: Mapping[str, str],
    python_version: str | None = None,
    system: str | None = None,
) -> CIMetadata | None:
    """The CI job described by env, or None outside CI.

    The runner OS and Python version default to this machine's: `anvild ingest` runs in the
    job, beside the tests. ``PYTHON_VERSION`` (set by python Docker images and commonly by
    matrix jobs) wins over the interpreter running anvild.
    """
    found = next((read(env) for matches, read in PROVIDERS if matches(env)), None)
    if found is None:
        return None
    system = system or platform.system()
    return replace(
        found,
        runner_os=found.runner_os or _OS_NAMES.get(system.lower(), system),
        python_version=_first(env, "PYTHON_VERSION") or python_version or platform.python_version(),
    )
