"""`anvild doctor`: check what a working setup needs, one finding each, with a fix for a failure.

Checks only look: they never create a database, a directory or a config file, and the write
they try on an existing database is rolled back.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from anvild import config, control, lifecycle, settings
from anvild.display import hide_password
from anvild.errors import AnvildError, ConfigError
from anvild.interpreters import Capture
from anvild.store import backend, migrations
from anvild.store.models import SchemaMigration

if TYPE_CHECKING:
    from anvild.api import Target

INOTIFY_LIMITS = Path("/proc/sys/fs/inotify")
MIN_INOTIFY_WATCHES = 8192


@dataclass(frozen=True, slots=True)
class Check:
    """One finding: what was checked, whether it is fine, and how to fix it when it is not."""

    name: str
    ok: bool
    detail: str
    fix: str | None = None


def run_checks(config_path: Path, target: Target) -> list[Check]:
    """Every check for the config at config_path and the project and database of target."""
    config_check, config = check_config(config_path)
    return [
        config_check,
        *check_projects(config),
        *check_plugin(target.project_root),
        check_database(target.db_url),
        check_inotify(),
        check_daemon(),
        *check_socket(),
    ]


def check_config(path: Path) -> tuple[Check, settings.Config | None]:
    """The config file parses; a missing file is the default config."""
    try:
        config = settings.load(path)
    except ConfigError as exc:
        fix = f"correct it in {path}; config/anvild.toml in anvild's source documents every key"
        return Check("config", False, str(exc), fix), None
    if not path.exists():
        return Check("config", True, f"{path} does not exist: defaults, no projects"), config
    count = len(config.projects)
    detail = f"{path} ({count} watched project{'' if count == 1 else 's'})"
    return Check("config", True, detail), config


def check_projects(config: settings.Config | None) -> list[Check]:
    """Each watched project's root is a directory."""
    if config is None:
        return []  # the config check said why
    if not config.projects:
        return [Check("projects", True, "none watched (`anvild watch PATH` adds one)")]
    checks = []
    for project in config.projects:
        name = f"project {project.name}"
        if project.root.is_dir():
            checks.append(Check(name, True, f"{project.root} exists"))
        else:
            fix = f"restore the directory, or stop watching it: anvild unwatch {project.root}"
            checks.append(Check(name, False, f"{project.root} is not a directory", fix))
    return checks


def project_python(root: Path) -> tuple[Path, str]:
    """The python that runs the project's tests: the first interpreter found for it
    (anvild.interpreters), else anvild's own."""
    from anvild.interpreters import find

    found = find(root)
    if found:
        return found[0].python, found[0].found_as
    return Path(sys.executable), "anvild's own; no interpreter found for the project"


def check_plugin(root: Path) -> list[Check]:
    """For each interpreter that may run the project's tests (anvild.interpreters): would a
    session there write its record? The first is "pytest plugin", the others name theirs."""
    from anvild.interpreters import Interpreter, find, probe

    found = find(root) or [
        Interpreter(Path(sys.executable), "anvild's own; no interpreter found for the project")
    ]
    checks = []
    for n, interpreter in enumerate(found):
        name = "pytest plugin" if n == 0 else f"pytest plugin ({interpreter.found_as})"
        checks.append(_capture_check(name, probe(interpreter, root), root))
    return checks


def _capture_check(name: str, capture: Capture, root: Path) -> Check:
    python, which = capture.interpreter.python, capture.interpreter.found_as
    # where the check's name says already which interpreter it is, its line does not again
    where = str(python) if name.endswith(f"({which})") else f"{python} ({which})"
    if capture.error is not None:
        return Check(name, False, f"{capture.error}: {where}", capture.fix)
    if not capture.pytest:
        return Check(name, False, f"pytest is not importable by {where}", capture.fix)
    if not capture.plugin:
        detail = f"anvild's pytest plugin is not installed for {where}: runs there are not recorded"
        return Check(name, False, detail, capture.fix)
    if capture.disabled:
        detail = f"anvild's pytest plugin is off in {where}: ANVILD_DISABLE is set"
        return Check(name, False, detail, capture.fix)
    if capture.problem is not None:
        return Check(name, False, f"{capture.problem} in {where}", capture.fix)
    return Check(name, True, f"active in {where}: a session there writes its record")


def check_database(url: str) -> Check:
    """The database can be written, or created where it will be; nothing is created here."""
    path = backend.sqlite_path(url)
    if path is None:
        return _probe(url, hide_password(url))
    path = path.absolute()
    if path.exists():
        problem = _sqlite_file_problem(path)
        return problem or _probe(url, str(path))
    # Created at the first run, with any missing directories, under the nearest existing one.
    existing = next(p for p in path.parents if p.exists())
    if not existing.is_dir():
        detail = f"{path}: {existing} is a file, not a directory"
        return Check("database", False, detail, "choose another path with --db or `database`")
    if not os.access(existing, os.W_OK | os.X_OK):
        detail = f"{path}: cannot be created, {existing} is not writable"
        return Check("database", False, detail, f"chmod u+rwx {existing}")
    return Check("database", True, f"{path}: no database yet (created at first run)")


def _sqlite_file_problem(path: Path) -> Check | None:
    if not path.is_file():
        detail = f"{path} is not a file"
        return Check("database", False, detail, "choose another path with --db or `database`")
    # SQLite writes its -wal and -shm files beside the database.
    if not os.access(path.parent, os.W_OK | os.X_OK):
        detail = f"{path}: its directory {path.parent} is not writable"
        return Check("database", False, detail, f"chmod u+rwx {path.parent}")
    if not os.access(path, os.R_OK | os.W_OK):
        return Check("database", False, f"{path} is not writable", f"chmod u+rw {path}")
    return None


class _RollBack(Exception):
    """Ends the probe transaction without keeping its write."""


def _probe(url: str, where: str) -> Check:
    """Connect, read the schema version, and try a write that is rolled back."""
    try:
        db = backend.connect(url)
    except AnvildError as exc:
        return Check("database", False, str(exc), _connect_fix(url))
    try:
        with db.bind_ctx([SchemaMigration]):
            version = migrations.current_version(db)
        if version > migrations.SCHEMA_VERSION:
            detail = (
                f"{where}: schema version {version} is newer than this anvild knows "
                f"({migrations.SCHEMA_VERSION})"
            )
            return Check("database", False, detail, "upgrade anvild: pip install -U anvild")
        # The write anvild needs next: create its tables, or change a row of them.
        table = SchemaMigration._meta.table_name
        probe = (
            f"UPDATE {table} SET name = name"
            if version
            else "CREATE TABLE anvild_doctor_probe (x INTEGER)"
        )
        try:
            with backend.write_transaction(db):
                db.execute_sql(probe)
                raise _RollBack
        except _RollBack:
            pass
    except Exception as exc:  # the driver's errors: read-only, locked, no privilege, ...
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return Check("database", False, f"{where}: cannot write: {first}", _write_fix(url))
    finally:
        db.close()
    state = f"schema version {version}" if version else "no tables yet (created at first run)"
    return Check("database", True, f"{where}: {state}, writable")


def _connect_fix(url: str) -> str:
    if backend.sqlite_path(url) is not None:
        return "check the file's permissions, and that it is an SQLite database"
    if urlparse(url).scheme not in ("postgres", "postgresql"):
        return "give --db, ANVILD_DB or `database` a path, sqlite:///path or postgresql://..."
    return "check that the server runs and the URL (--db, ANVILD_DB or `database`) is right"


def _write_fix(url: str) -> str:
    if backend.sqlite_path(url) is not None:
        return "check the file's permissions, and that no other program holds it locked"
    user = urlparse(url).username or "the database user"
    return f"let {user} create tables and write to them (GRANT on the database and its tables)"


def check_inotify(limits: Path = INOTIFY_LIMITS) -> Check:
    """On Linux, enough inotify watches for the watched directories."""
    if not sys.platform.startswith("linux"):
        return Check("inotify", True, f"skipped: not Linux ({sys.platform})")
    try:
        watches = int((limits / "max_user_watches").read_text())
        instances = int((limits / "max_user_instances").read_text())
    except (OSError, ValueError) as exc:
        detail = f"cannot read the limits in {limits}: {exc}"
        return Check("inotify", False, detail, "mount /proc, or set `polling = true` in the config")
    detail = f"max_user_watches {watches}, max_user_instances {instances}"
    if watches < MIN_INOTIFY_WATCHES:
        fix = (
            "sudo sysctl fs.inotify.max_user_watches=524288, and put that setting in "
            "/etc/sysctl.d/60-inotify.conf to keep it"
        )
        return Check("inotify", False, f"{detail} (below {MIN_INOTIFY_WATCHES})", fix)
    return Check("inotify", True, detail)


def check_daemon() -> Check:
    """Whether the daemon runs (information; not running is fine) and answers if it does."""
    pid = config.daemon_pid()
    if pid is None:
        return Check("daemon", True, "not running (`anvild start` starts it)")
    if control.running():
        return Check("daemon", True, f"running (pid {pid})")
    detail = f"pid {pid} holds {config.pidfile_path()} but does not answer on the socket"
    return Check("daemon", False, detail, f"anvild restart; its log is {lifecycle.log_path()}")


def check_socket() -> list[Check]:
    """The control socket's directory is 0700 and the socket 0600, both the user's own."""
    return [
        _private(control.socket_dir(), 0o700, "socket directory", stat.S_ISDIR),
        _private(control.socket_path(), 0o600, "socket", stat.S_ISSOCK),
    ]


def _private(path: Path, mode: int, name: str, is_kind: Callable[[int], bool]) -> Check:
    try:
        info = path.lstat()
    except FileNotFoundError:
        return Check(name, True, f"{path} does not exist yet (the daemon creates it)")
    except OSError as exc:
        return Check(name, False, f"{path}: {exc.strerror}", f"check the permissions of {path}")
    if not is_kind(info.st_mode):
        kind = "directory" if mode == 0o700 else "socket"
        detail = f"{path} is not a {kind}"
        return Check(name, False, detail, f"remove {path}; the daemon creates it at start")
    if info.st_uid != os.getuid():
        detail = f"{path} belongs to uid {info.st_uid}, not to you (uid {os.getuid()})"
        return Check(name, False, detail, f"sudo chown {os.getuid()} {path}")
    actual = stat.S_IMODE(info.st_mode)
    if actual != mode:
        detail = f"{path} has mode {actual:04o}, not {mode:04o}"
        return Check(name, False, detail, f"chmod {mode:o} {path}")
    return Check(name, True, f"{path} is private ({mode:04o})")
