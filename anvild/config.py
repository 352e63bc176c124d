"""Where things live: XDG paths, the project a command is about, the database it uses."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import platformdirs

from anvild.errors import UsageError

APP = "anvild"


def config_dir() -> Path:
    """$XDG_CONFIG_HOME/anvild."""
    return platformdirs.user_config_path(APP)


def config_file(override: str | None = None) -> Path:
    """The config file: --config / ANVILD_CONFIG, else $XDG_CONFIG_HOME/anvild/config.toml."""
    # absolute: the daemon it is handed to runs in `/`
    return Path(override).expanduser().absolute() if override else config_dir() / "config.toml"


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


def pidfile_path() -> Path:
    """$XDG_STATE_HOME/anvild/anvild.pid."""
    return state_dir() / "anvild.pid"


def daemon_pid(path: Path | None = None) -> int | None:
    """The pid of the running daemon per its pidfile, or None when no process holds it (a
    command asks before it loads the control protocol)."""
    path = path or pidfile_path()
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.read(fd, 32).decode().strip()
            return int(text) if text.isdigit() else None
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None  # a stale file: its process is gone
    finally:
        os.close(fd)


READ_AHEAD_MB = 64.0


def read_ahead() -> int:
    """Bytes of ready reports the daemon holds in memory ahead of its worker (env
    ANVILD_READ_AHEAD_MB, default 64); past them a report's bytes wait in the spool on disk."""
    value = os.environ.get("ANVILD_READ_AHEAD_MB", "")
    try:
        mb = max(0.0, float(value)) if value else READ_AHEAD_MB
    except ValueError:
        raise UsageError(f"ANVILD_READ_AHEAD_MB must be a number of MB, got {value!r}") from None
    return int(mb * 1024 * 1024)


def _git_toplevel(start: Path) -> Path | None:
    import subprocess  # outside a project only: not loaded by every command

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


def find_project(start: Path, watched: tuple[Path, ...] = ()) -> tuple[Path, str]:
    """The project around start and how it was found: the nearest ancestor that is watched
    ("watched") or holds `.anvil/` (".anvil"), else the git work tree ("git"), else start
    itself ("cwd")."""
    start = start.resolve()
    watched_set = {w.resolve() for w in watched}
    for candidate in (start, *start.parents):
        if candidate in watched_set:
            return candidate, "watched"
        if (candidate / ".anvil").is_dir():
            return candidate, ".anvil"
    top = _git_toplevel(start)
    return (top, "git") if top is not None else (start, "cwd")


def find_project_root(start: Path, watched: tuple[Path, ...] = ()) -> Path:
    """The nearest ancestor that is watched or holds `.anvil/`, else the git root, else start."""
    return find_project(start, watched)[0]


def database_url(db_option: str | None, project_root: Path, cwd: Path | None = None) -> str:
    """--db / ANVILD_DB when given (a relative path is relative to cwd), else the project's
    `.anvil/history.db`; in its one spelling (canonical_database)."""
    if db_option:
        return canonical_database(db_option, cwd or Path.cwd())
    return canonical_database(str(project_root / ".anvil" / "history.db"), project_root)


def canonical_database(url: str, base: Path) -> str:
    """The one spelling of a database: an SQLite file as its absolute path with symlinks
    resolved (a relative one is relative to base), whether written as a path or sqlite:///;
    a server URL as given. Two spellings of one file are one database, with one owner."""
    path = sqlite_path(url)
    if path is None:
        return url
    return str((base / path.expanduser()).resolve())


def missing_directory(url: str) -> Path | None:
    """The directory an SQLite database would be made in when it does not exist, else None;
    a project's `.anvil/` is anvild's own, made when needed."""
    path = sqlite_path(url)
    if path is None or path.parent.is_dir():
        return None
    if path.parent.name == ".anvil" and path.parent.parent.is_dir():
        return None
    return path.parent


def sqlite_path(url: str) -> Path | None:
    """The file of an SQLite URL or plain path; None for other databases."""
    # sqlite:///relative.db and sqlite:////absolute/path.db, as SQLAlchemy and peewee read them
    if url.startswith("sqlite:///"):
        return Path(url[len("sqlite:///") :])
    if "://" in url:
        return None
    return Path(url)
