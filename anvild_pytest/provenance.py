"""The git state of a work tree and where a run started (terminal, IDE, CI): standard library
only, read by the pytest plugin at each session start and by anvild at ingest."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_CI_VARS = ("CI", "GITHUB_ACTIONS", "GITLAB_CI", "JENKINS_URL", "CIRCLECI", "BUILDKITE")


@dataclass(frozen=True)
class GitState:
    """The commit, branch and working-tree state of a git work tree."""

    commit: str | None = None
    branch: str | None = None
    dirty: bool | None = None
    diff_hash: str | None = None


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


# Written by pytest, its report plugins and anvild, never by the user: never "dirty". pytest
# ignores its cache dir in git itself, but only when it creates the directory; a report plugin
# writing `.pytest_cache/report.json` first (a fresh clone) leaves it unignored.
GENERATED = (":(exclude,glob,top)**/.pytest_cache/**", ":(exclude,glob).anvil/**")
# Untracked files above this size are known by size and modification time, not read: the state
# is read at every pytest session start, and a data file or a build output left untracked
# must not make that slow. The whole read is bounded the same way.
CONTENT_LIMIT = 1 << 20
CONTENT_BUDGET = 16 << 20


def excludes(reports: Iterable[str]) -> list[str]:
    """git pathspecs: the whole work tree but what tools write (globs: from the project root)."""
    return [":/", *GENERATED, *(f":(exclude,glob){glob}" for glob in reports)]


def git_state(root: Path, reports: Iterable[str] = ()) -> GitState:
    """Read the git state of root in one `git status` call (plus a diff when dirty).

    reports: the project's report globs (from its root); those files, pytest's cache and
    `.anvil/` are left out of the dirty flag and the diff hash.
    """
    pathspecs = excludes(reports)
    status = _git(
        root, "status", "--porcelain=v2", "--branch", "--untracked-files=all", "-z", "--",
        *pathspecs,
    )  # fmt: skip
    if status is None:
        return GitState()
    commit = branch = None
    changed = False
    untracked: list[str] = []
    entries = iter(os.fsdecode(status).split("\0"))
    for entry in entries:
        if entry.startswith("# branch.oid "):
            oid = entry.split(" ", 2)[2]
            commit = None if oid == "(initial)" else oid
        elif entry.startswith("# branch.head "):
            head = entry.split(" ", 2)[2]
            branch = None if head == "(detached)" else head
        elif entry.startswith("? "):
            untracked.append(entry[2:])
        elif entry and not entry.startswith("#"):
            changed = True
            if entry.startswith("2 "):
                next(entries, None)  # a rename: its original path follows
    if not changed and not untracked:
        return GitState(commit, branch, False, None)
    # Same hash <=> same uncommitted edits: the diff against HEAD plus untracked files' content.
    digest = hashlib.sha256()
    if changed:
        digest.update(_git(root, "diff", "HEAD", "--binary", "--", *pathspecs) or b"")
    if untracked:
        top = _git(root, "rev-parse", "--show-toplevel")
        base = Path(os.fsdecode(top).rstrip("\n")) if top else root
        _hash_untracked(digest, base, sorted(untracked))
    return GitState(commit, branch, True, digest.hexdigest()[:16])


def _hash_untracked(digest: Any, base: Path, paths: list[str]) -> None:
    """Add each untracked file's name and content (or size and mtime, past the limits)."""
    budget = CONTENT_BUDGET
    for name in paths:
        digest.update(b"? " + os.fsencode(name) + b"\0")
        path = base / name
        try:
            info = path.lstat()
            if stat.S_ISLNK(info.st_mode):
                digest.update(b"link " + os.fsencode(os.readlink(path)))
            elif stat.S_ISREG(info.st_mode) and info.st_size <= min(CONTENT_LIMIT, budget):
                budget -= info.st_size
                digest.update(hashlib.sha256(path.read_bytes()).digest())
            else:
                digest.update(f"{info.st_size} {info.st_mtime_ns}".encode())
        except OSError:
            digest.update(b"unreadable")
        digest.update(b"\0")


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


def hostname() -> str:
    """The machine's name (os.uname's, as socket.gethostname's on POSIX, without socket)."""
    if hasattr(os, "uname"):
        return os.uname().nodename
    import socket

    return socket.gethostname()
