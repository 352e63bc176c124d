"""Where a run came from: git state of the project, the host, the origin (terminal, IDE, CI)."""

from __future__ import annotations

import hashlib
import os
import platform
import socket
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from anvild.records import ParsedRun

_CI_VARS = ("CI", "GITHUB_ACTIONS", "GITLAB_CI", "JENKINS_URL", "CIRCLECI", "BUILDKITE")


@dataclass(frozen=True, slots=True)
class GitState:
    """The commit, branch and working-tree state of a git work tree."""

    commit: str | None = None
    branch: str | None = None
    dirty: bool | None = None
    diff_hash: str | None = None


@dataclass(frozen=True, slots=True)
class Provenance:
    """The facts stored with a run besides its results."""

    git_commit: str | None
    git_branch: str | None
    tree_dirty: bool | None
    diff_hash: str | None
    hostname: str
    os: str
    python_version: str | None
    origin: str


def _git(root: Path, *args: str) -> bytes | None:
    try:
        proc = subprocess.run(
            ["git", "-C", str(root), *args],
            capture_output=True,
            timeout=10,
            env={**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"},
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout if proc.returncode == 0 else None


def git_state(root: Path) -> GitState:
    """Read the git state of root in one `git status` call (plus a diff when dirty)."""
    status = _git(root, "status", "--porcelain=v2", "--branch", "--untracked-files=all")
    if status is None:
        return GitState()
    commit = branch = None
    changes = []
    for line in status.decode("utf-8", "replace").splitlines():
        if line.startswith("# branch.oid "):
            oid = line.split(" ", 2)[2]
            commit = None if oid == "(initial)" else oid
        elif line.startswith("# branch.head "):
            head = line.split(" ", 2)[2]
            branch = None if head == "(detached)" else head
        elif not line.startswith("#"):
            changes.append(line)
    if not changes:
        return GitState(commit, branch, False, None)
    # Same hash <=> same uncommitted edits: the diff against HEAD plus untracked files' names.
    digest = hashlib.sha256()
    digest.update(_git(root, "diff", "HEAD", "--binary") or b"")
    for line in sorted(changes):
        if line.startswith("? "):
            digest.update(line.encode())
    return GitState(commit, branch, True, digest.hexdigest()[:16])


def detect_origin(environ: Mapping[str, str]) -> str:
    """terminal | vscode | pycharm | ci | other, from the environment a run started in."""
    if any(environ.get(var) for var in _CI_VARS):
        return "ci"
    if environ.get("TERM_PROGRAM") == "vscode" or "VSCODE_PID" in environ:
        return "vscode"
    if "PYCHARM_HOSTED" in environ:
        return "pycharm"
    if environ.get("TERM"):
        return "terminal"
    return "other"


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def collect(root: Path, run: ParsedRun, space: str, origin: str | None = None) -> Provenance:
    """Provenance of a run: what the report says first, then what the machine says now."""
    meta = run.metadata
    env = run.environment
    git = GitState() if _text(meta.get("git_commit")) else git_state(root)
    dirty = meta.get("tree_dirty")
    return Provenance(
        git_commit=_text(meta.get("git_commit")) or git.commit,
        git_branch=_text(meta.get("git_branch")) or git.branch,
        tree_dirty=dirty if isinstance(dirty, bool) else git.dirty,
        diff_hash=_text(meta.get("diff_hash")) or git.diff_hash,
        hostname=_text(meta.get("hostname")) or socket.gethostname(),
        os=_text(env.get("Platform")) or platform.platform(terse=True),
        python_version=_text(env.get("Python")) or platform.python_version(),
        origin=_text(meta.get("origin"))
        or origin
        or ("ci" if space == "ci" else detect_origin(os.environ)),
    )
