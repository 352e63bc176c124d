"""Where a run came from: git state of the project, the host, the origin (terminal, IDE, CI)."""

from __future__ import annotations

import os
import platform
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from anvild.records import ParsedRun
from anvild.settings import DEFAULT_REPORTS
from anvild_pytest import provenance as plugin_side
from anvild_pytest.provenance import GitState, detect_origin

__all__ = ["GitState", "Provenance", "collect", "detect_origin", "git_state"]


def git_state(root: Path, reports: Iterable[str] = DEFAULT_REPORTS) -> GitState:
    """The git state of root, a project's report files (the default globs unless given), its
    pytest cache and `.anvil/` left out (anvild_pytest.provenance, which the plugin shares)."""
    return plugin_side.git_state(root, reports)


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


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def collect(
    root: Path,
    run: ParsedRun,
    space: str,
    origin: str | None = None,
    reports: Iterable[str] = DEFAULT_REPORTS,
    read_git: Callable[[], GitState] | None = None,
) -> Provenance:
    """Provenance of a run: what the report says first, then what the machine says now
    (read_git: the work tree's state as the caller read it, else read here)."""
    meta = run.metadata
    env = run.environment
    if _text(meta.get("git_commit")):
        git = GitState()
    else:
        git = read_git() if read_git is not None else git_state(root, reports)
    dirty = meta.get("tree_dirty")
    return Provenance(
        git_commit=_text(meta.get("git_commit")) or git.commit,
        git_branch=_text(meta.get("git_branch")) or git.branch,
        tree_dirty=dirty if isinstance(dirty, bool) else git.dirty,
        diff_hash=_text(meta.get("diff_hash")) or git.diff_hash,
        hostname=_text(meta.get("hostname")) or plugin_side.hostname(),
        os=_text(env.get("Platform")) or platform.platform(terse=True),
        python_version=_text(env.get("Python")) or platform.python_version(),
        origin=_text(meta.get("origin"))
        or origin
        or ("ci" if space == "ci" else detect_origin(os.environ)),
    )
