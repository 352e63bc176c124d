"""Where things live: XDG paths, the project a command is about, the database it uses."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import platformdirs

from anvild.errors import UsageError

APP = "anvild"


def config_dir() -> Path:
    """$XDG_CONFIG_HOME/anvild."""
    return platformdirs.user_config_path(APP)


def config_file(override: str | None = None) -> Path:
    """The config file: --config / ANVILD_CONFIG, else $XDG_CONFIG_HOME/anvild/config.toml."""
    return Path(override).expanduser() if override else config_dir() / "config.toml"


def state_dir() -> Path:
    """$XDG_STATE_HOME/anvild: logs, pidfile, pending reports, locks for database servers."""
    return platformdirs.user_state_path(APP)


def owner_timeout() -> float:
    """Seconds a command waits for another owner of the database (env ANVILD_OWNER_TIMEOUT)."""
    value = os.environ.get("ANVILD_OWNER_TIMEOUT", "")
    try:
        return max(0.0, float(value)) if value else 30.0
    except ValueError:
        raise UsageError(
            f"ANVILD_OWNER_TIMEOUT must be a number of seconds, got {value!r}"
        ) from None


def _git_toplevel(start: Path) -> Path | None:
    try:
        proc = subprocess.run(
            ["git", "-C", str(start), "rev-parse", "--show-toplevel"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return Path(proc.stdout.strip()) if proc.returncode == 0 and proc.stdout.strip() else None


def find_project_root(start: Path, watched: tuple[Path, ...] = ()) -> Path:
    """The nearest ancestor that is watched or holds `.anvil/`, else the git root, else start."""
    start = start.resolve()
    watched_set = {w.resolve() for w in watched}
    for candidate in (start, *start.parents):
        if candidate in watched_set or (candidate / ".anvil").is_dir():
            return candidate
    return _git_toplevel(start) or start


def database_url(db_option: str | None, project_root: Path) -> str:
    """--db / ANVILD_DB when given, else the project's `.anvil/history.db`."""
    if db_option:
        return db_option
    return str(project_root / ".anvil" / "history.db")


def sqlite_path(url: str) -> Path | None:
    """The file of an SQLite URL or plain path; None for other databases."""
    # sqlite:///relative.db and sqlite:////absolute/path.db, as SQLAlchemy and peewee read them
    if url.startswith("sqlite:///"):
        return Path(url[len("sqlite:///") :])
    if "://" in url:
        return None
    return Path(url)
