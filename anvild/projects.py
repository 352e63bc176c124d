"""`anvild watch`, `unwatch` and `projects`: edit the config, tell the daemon, start it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from anvild import control, lifecycle, protocol, settings
from anvild.config import daemon_pid
from anvild.display import counted
from anvild.errors import DaemonNotRunning, UsageError
from anvild.settings import ProjectConfig


def mark(project: ProjectConfig) -> None:
    """Leave the marker the project's pytest sessions find (anvild_pytest.plugin.WATCHED): its
    report globs, in its private `.anvil/`. A root that cannot take it (read-only, gone) stays
    unmarked; `anvild doctor` tells."""
    import json
    import os
    import tempfile

    from anvild.store.backend import prepare_sqlite_dir
    from anvild_pytest.plugin import WATCHED

    marker = project.root / WATCHED
    try:
        prepare_sqlite_dir(marker)
        text = json.dumps({"name": project.name, "reports": list(project.watched_reports)})
        if marker.exists() and marker.read_text(encoding="utf-8") == text:
            return
        fd, temporary = tempfile.mkstemp(dir=marker.parent, prefix=".watched-")
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(temporary, marker)
    except OSError:
        return


def unmark(root: Path) -> None:
    """Remove the project's marker: its sessions record nothing any more."""
    from anvild_pytest.plugin import WATCHED

    (root / WATCHED).unlink(missing_ok=True)


def _apply(config_path: Path, start: bool) -> str:
    """Make the running daemon read the config again, or start one."""
    if daemon_pid() is not None:
        try:
            control.ask(protocol.Reload(), timeout=90)
            return "the daemon reloaded its config"
        except DaemonNotRunning:
            pass
    if not start:
        return "the daemon is not running (`anvild start` starts it)"
    pid = lifecycle.start(config_path)
    return f"anvild started (pid {pid})"


def watch(
    config_path: Path, path: Path, reports: tuple[str, ...], space: str | None, start: bool = True
) -> str:
    """Register the project at path (its extra report globs added to the defaults)."""
    root = path.expanduser().resolve()
    if not root.is_dir():
        raise UsageError("no such directory", str(root))
    for glob in reports:
        if settings.glob_problem(glob):
            raise UsageError(f"--report takes a path or glob inside the project, got {glob!r}")
    with settings.editing(config_path):
        config = settings.load(config_path)
        known = config.project(root)
        base = known or ProjectConfig(root=root, name=root.name)
        globs = tuple(dict.fromkeys((*base.reports, *reports)))
        project = replace(base, reports=globs, space=space or base.space)
        settings.save_project(config, project, config_path)
    mark(project)
    done = _apply(config_path, start)
    return f"watching {root} ({counted(len(globs), 'report glob')}); {done}"


def enclosing(config_path: Path, path: Path) -> Path | None:
    """The watched project that path lies inside (not at), if any: a nested project would
    take the inner reports from it."""
    root = path.expanduser().resolve()
    config = settings.load(config_path)
    return next((r for r in config.watched_roots() if r != root and root.is_relative_to(r)), None)


def unwatch(config_path: Path, path: Path) -> str:
    """Remove the project at path from the config (its history stays)."""
    root = path.expanduser().resolve()
    with settings.editing(config_path):
        config = settings.load(config_path)
        if config.project(root) is None:
            raise UsageError("not a watched project", str(root))
        settings.remove_project(config, root, config_path)
    unmark(root)
    done = _apply(config_path, start=False)
    return f"stopped watching {root}; {done}"


def listing(config_path: Path) -> list[dict[str, Any]]:
    """The watched projects as rows."""
    config = settings.load(config_path)
    return [
        {
            "name": p.name,
            "root": str(p.root),
            "space": p.space,
            "database": config.database_for(p),
            "reports": list(p.reports),
        }
        for p in config.projects
    ]
